import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ApiClient } from './api-client.js';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('ApiClient: serve not answering', () => {
  it(
    'connection refused is SERVE_UNREACHABLE ("serve is not ' + 'running at <url>", how to start it), never the engine',
    async () => {
      const url = `http://127.0.0.1:${await closedPort()}`;
      const err = await new ApiClient(url, 'unit-test-token').request('GET', '/v1/servers').catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'SERVE_UNREACHABLE',
        phase: 'request',
        details: { url, errno: 'ECONNREFUSED' },
      });
      expect((err as Error).message).toContain(`mcp-box serve is not running at ${url} (connection refused)`);
      expect((err as Error).message).toContain('mcp-box serve --config FILE');
      expect((err as Error).message).not.toMatch(/engine/i);
    },
  );

  it('an error envelope without a phase is a request error with the HTTP status', async () => {
    const { createServer: createHttp } = await import('node:http');
    const server = createHttp((_req, res) => {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'bad token' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      const err = await new ApiClient(`http://127.0.0.1:${port}`, 'nope')
        .request('GET', '/v1/servers')
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'UNAUTHORIZED',
        phase: 'request',
        message: 'bad token',
        details: { status: 401 },
      });
    } finally {
      server.close();
    }
  });
});
