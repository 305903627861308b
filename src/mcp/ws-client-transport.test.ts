import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { linkedSignal } from '../util/abort.js';
import { WsClientTransport } from './ws-client-transport.js';

/** As many connects as a server retrying mcp_init makes on one lifecycle signal, and then some. */
const ROUNDS = 50;

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

describe('WsClientTransport and the caller signal', () => {
  /** Refuses every upgrade like the relay does for an unknown process (HTTP 404 with a JSON error). */
  const refusing = createServer();
  refusing.on('upgrade', (_req, socket) => {
    const body = JSON.stringify({ error: { message: 'no such process' } });
    socket.end(
      `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  /** Answers `initialize`, like a relay in front of a healthy MCP server. */
  const relay = createServer();
  new WebSocketServer({ server: relay }).on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as {
        id?: number;
        method?: string;
        params?: { protocolVersion?: string };
      };
      if (msg.method !== 'initialize') return;
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: msg.id,
          result: {
            protocolVersion: msg.params?.protocolVersion,
            capabilities: {},
            serverInfo: { name: 'fake-relay', version: '0' },
          },
        }),
      );
    });
  });
  let refusingUrl: string;
  let relayUrl: string;
  let closedUrl: string;

  beforeAll(async () => {
    refusingUrl = await listen(refusing);
    relayUrl = await listen(relay);
    const gone = createServer();
    closedUrl = await listen(gone);
    await new Promise((resolve) => gone.close(resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => refusing.close(resolve));
    await new Promise((resolve) => relay.close(resolve));
  });

  it('leaves no abort listener behind when connects fail (refused or unreachable)', async () => {
    const loop = new AbortController();
    for (let i = 0; i < ROUNDS; i++) {
      const transport = new WsClientTransport({
        url: i % 2 === 0 ? refusingUrl : closedUrl,
        token: 't',
        signal: loop.signal,
      });
      await expect(transport.connect()).rejects.toMatchObject({ phase: 'relay_connect' });
    }
    expect(abortListeners(loop.signal)).toBe(0);
  });

  it('leaves no abort listener behind when connects succeed', async () => {
    const loop = new AbortController();
    for (let i = 0; i < ROUNDS; i++) {
      const transport = new WsClientTransport({ url: relayUrl, token: 't', signal: loop.signal });
      await transport.connect();
      await transport.close();
    }
    expect(abortListeners(loop.signal)).toBe(0);
  });

  it('rejects at once for a signal that already aborted', async () => {
    const transport = new WsClientTransport({ url: relayUrl, token: 't', signal: AbortSignal.abort() });
    await expect(transport.connect()).rejects.toMatchObject({ code: 'ABORTED', phase: 'relay_connect' });
  });

  it(
    'connect + initialize per round on one lifecycle ' + 'signal: a linked signal per round keeps the count flat',
    async () => {
      // The SDK's Protocol.request adds an abort listener to the signal it is given and never removes
      // it; connectClient's rounds hand it a linked signal and release it when the round ends.
      const loop = new AbortController();
      for (let i = 0; i < ROUNDS; i++) {
        const transport = new WsClientTransport({ url: relayUrl, token: 't', takeover: true, signal: loop.signal });
        await transport.connect();
        const client = new Client({ name: 'test', version: '0' }, { capabilities: {} });
        const round = linkedSignal(loop.signal);
        try {
          await client.connect(transport, { timeout: 5000, signal: round.signal });
        } finally {
          round.release();
        }
        await client.close();
      }
      expect(abortListeners(loop.signal)).toBe(0);
    },
  );
});

describe('WsClientTransport: a refused upgrade says why', () => {
  /** Answers every upgrade with the status and JSON error envelope the relay's HTTP server uses. */
  const refusing = (status: number, code: string, message: string): Server => {
    const server = createServer();
    server.on('upgrade', (_req, socket) => {
      const body = JSON.stringify({ error: { code, message } });
      socket.end(
        `HTTP/1.1 ${status} Refused\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    return server;
  };
  const servers: Server[] = [];
  const urlOf = async (status: number, code: string, message: string): Promise<string> => {
    const server = refusing(status, code, message);
    servers.push(server);
    return listen(server);
  };
  afterAll(async () => {
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
  });

  it('a 401 is an authentication failure (RELAY_CONNECT_FAILED, details.auth), not NOT_FOUND', async () => {
    const transport = new WsClientTransport({
      url: await urlOf(401, 'UNAUTHORIZED', 'Wrong bearer token'),
      token: 'wrong',
    });
    const err = await transport.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      name: 'BoxError',
      code: 'RELAY_CONNECT_FAILED',
      phase: 'relay_connect',
      details: { status: 401, code: 'UNAUTHORIZED', auth: true },
    });
    expect((err as Error).message).toBe('The relay refused the token (HTTP 401): Wrong bearer token');
  });

  it('a 403 (origin or host refused) is an authentication failure too', async () => {
    const transport = new WsClientTransport({ url: await urlOf(403, 'FORBIDDEN', 'Host not allowed'), token: 't' });
    await expect(transport.connect()).rejects.toMatchObject({
      code: 'RELAY_CONNECT_FAILED',
      details: { status: 403, code: 'FORBIDDEN', auth: true },
    });
  });

  it('a 404 (no such process) stays NOT_FOUND; any other status is RELAY_CONNECT_FAILED', async () => {
    const missing = new WsClientTransport({ url: await urlOf(404, 'NOT_FOUND', 'No running process "p"'), token: 't' });
    await expect(missing.connect()).rejects.toMatchObject({
      code: 'NOT_FOUND',
      details: { status: 404, code: 'NOT_FOUND' },
    });
    const other = new WsClientTransport({ url: await urlOf(503, 'BOX_DISABLED', 'disabled'), token: 't' });
    const err = await other.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'RELAY_CONNECT_FAILED', details: { status: 503, code: 'BOX_DISABLED' } });
    expect((err as { details: Record<string, unknown> }).details.auth).toBeUndefined();
  });
});
