/** HTTP that cannot be knocked over: malformed paths, oversized bodies and slow clients against a real `serve`. */
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempFolder, type TempFolder } from '../helpers/folders.js';
import { type ServeProcess, startServeProcess, stopAllServes } from '../helpers/serve-process.js';
import { rawHttp, sendThrough } from '../helpers/raw-http.js';

const HEADERS_TIMEOUT_MS = 1000;
const MiB = 1024 * 1024;

const raw = rawHttp;

function send(
  agent: Agent,
  port: number,
  opts: { method: string; path: string; token: string; body?: Buffer },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return sendThrough(agent, port, {
    method: opts.method,
    path: opts.path,
    headers: { Authorization: `Bearer ${opts.token}` },
    ...(opts.body === undefined ? {} : { body: opts.body }),
  });
}

describe('serve: HTTP hardening', () => {
  let folder: TempFolder;
  let serve: ServeProcess;
  let token: string;
  let port: number;
  const request_ = (path: string, headers: Record<string, string>): string =>
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
  const upgrade = (path: string, headers: Record<string, string>): string =>
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n` +
    `${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
  const alive = async (): Promise<void> => {
    expect((await raw(port, request_('/healthz', {}))).status).toBe(200);
    expect(serve.child.exitCode).toBeNull();
  };

  beforeAll(async () => {
    folder = tempFolder('mcp-box-hardening-');
    const configPath = `${folder.path}/mcp-box.json`;
    writeFileSync(
      configPath,
      JSON.stringify({ mcpServers: {}, server: { port: 0, headersTimeoutMs: HEADERS_TIMEOUT_MS } }),
    );
    serve = await startServeProcess(configPath);
    token = readFileSync(`${folder.path}/.mcp-box/token`, 'utf8').trim();
    port = Number(new URL(serve.url).port);
  }, 60_000);
  afterAll(async () => {
    await stopAllServes();
    folder.cleanup();
  });

  it(
    'a relay path with a malformed percent-escape is a 400 envelope with a token, 401 without, ' +
      'and serve keeps serving',
    async () => {
      const relay = '/v1/sessions/%E0%A4%A/processes/x/ws';
      const withToken = await raw(port, upgrade(relay, { Authorization: `Bearer ${token}` }));
      expect(withToken.status).toBe(400);
      expect(JSON.parse(withToken.body)).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
      await alive();
      expect((await raw(port, upgrade(relay, {}))).status).toBe(401);
      expect((await raw(port, request_(relay, {}))).status).toBe(401);
      await alive();
    },
  );

  it('a plain route with a malformed percent-escape is a 400 with a token, 401 without', async () => {
    expect((await raw(port, request_('/v1/servers/%E0%A4%A', { Authorization: `Bearer ${token}` }))).status).toBe(400);
    expect((await raw(port, request_('/v1/servers/%E0%A4%A', {}))).status).toBe(401);
    await alive();
  });

  it(
    'a 20 MiB tool call body gets a 413 envelope and Connection: close; the next request ' +
      'through the same agent succeeds',
    async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const body = Buffer.from(JSON.stringify({ arguments: { pad: 'x'.repeat(20 * MiB) } }));
        const big = await send(agent, port, { method: 'POST', path: '/v1/servers/none/tools/t/call', token, body });
        expect(big.status).toBe(413);
        expect(big.headers.connection).toBe('close');
        expect(JSON.parse(big.body)).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
        const next = await send(agent, port, { method: 'GET', path: '/v1/servers', token });
        expect(next.status).toBe(200);
        // Under the default limit (the relay's 16 MiB line plus a margin) a 2 MiB call body is read: the answer is
        // about the server.
        const within = await send(agent, port, {
          method: 'POST',
          path: '/v1/servers/none/tools/t/call',
          token,
          body: Buffer.from(JSON.stringify({ arguments: { pad: 'x'.repeat(2 * MiB) } })),
        });
        expect(JSON.parse(within.body)).toMatchObject({ error: { code: 'NOT_FOUND' } });
      } finally {
        agent.destroy();
      }
    },
  );

  it('closes a connection that sends half a request line and nothing more, within the headers timeout', async () => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const started = performance.now();
    socket.write('GET /heal');
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('serve did not close the slow connection within 5 s')), 5000);
      socket.once('close', () => resolve(clearTimeout(timer)));
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
    await alive();
  });
});
