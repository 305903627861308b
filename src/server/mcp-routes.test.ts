/**
 * The per-server MCP endpoint over real sockets (no Docker): the HTTP server, the SDK's transport, the session peer
 * and a relay over a fake process that floods notifications, against a client that opens its GET stream and then
 * stops reading. Without a bound, every notification of the flood would queue in serve's memory for that one
 * client.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  PromptListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { McpSessionTable } from '../mcp-http/mcp-sessions.js';
import { StdioRelay, type RelayProcess } from '../relay/stdio-relay.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { HttpServer } from './http-server.js';
import { mountMcpRoutes } from './mcp-routes.js';

const TOKEN = 'mcp-routes-test-token-0123456789abcdef';
const MiB = 1024 * 1024;
setFlagsFromString('--expose_gc');
/** A full GC, so what is measured is what is still held. */
const gc = runInNewContext('gc') as () => void;
const held = async (): Promise<number> => {
  // Buffers are freed by finalizers that run after a collection: collect, let them run, collect again.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A process that answers initialize and, on `tools/call` "flood", writes `count` log notifications of `size`. */
function floodingProcess(): RelayProcess & { written: () => number } {
  const stdout = new PassThrough();
  const stdin = new PassThrough();
  let written = 0;
  let buffered = '';
  stdin.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const m = JSON.parse(buffered.slice(0, nl)) as { id?: number; method: string; params?: { name?: string } };
      buffered = buffered.slice(nl + 1);
      if (m.method === 'initialize')
        stdout.write(
          `${JSON.stringify({
            jsonrpc: '2.0',
            id: m.id,
            result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'flood', version: '1' } },
          })}\n`,
        );
      if (m.method === 'tools/call') {
        const line = `${JSON.stringify({
          jsonrpc: '2.0',
          method: 'notifications/message',
          params: { level: 'info', data: 'x'.repeat(64 * 1024) },
        })}\n`;
        // Written as fast as the relay takes it: the relay's own backpressure is what paces it.
        const pump = (): void => {
          while (written < 48 * MiB) {
            written += line.length;
            if (!stdout.write(line)) return void stdout.once('drain', pump);
          }
          stdout.write(`${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [] } })}\n`);
        };
        pump();
      }
    }
  });
  return { stdout, stdin, stdoutState: () => Promise.resolve('open'), written: () => written };
}

async function startEndpoint(proc: RelayProcess, supervisorEvents = new EventEmitter()): Promise<HttpServer> {
  const relay = new StdioRelay(proc, {});
  closers.push(() => relay.close());
  const supervisor = Object.assign(supervisorEvents, {
    get: () => ({ name: 'flood', state: 'ready', session: 's' }),
    has: () => true,
    list: () => [],
    relays: { get: () => relay },
  }) as unknown as Supervisor;
  const http = new HttpServer({ host: '127.0.0.1', port: 0, token: TOKEN, maxPayload: 16 * MiB });
  const sessions = new McpSessionTable<StreamableHTTPServerTransport>();
  mountMcpRoutes(http, { supervisor, sessions });
  await http.listen();
  closers.push(() => http.close());
  closers.push(() => sessions.closeAll());
  return http;
}

async function post(http: HttpServer, body: unknown, session?: string): Promise<Response> {
  return fetch(`${http.url}/v1/servers/flood/mcp`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${TOKEN}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      ...(session === undefined ? {} : { 'Mcp-Session-Id': session, 'Mcp-Protocol-Version': '2025-11-25' }),
    },
    body: JSON.stringify(body),
  });
}

describe('/v1/servers/{name}/mcp: a client that stops reading its GET stream', () => {
  it('has that stream closed once 4 MiB wait for it, instead of holding the whole flood in memory', async () => {
    const proc = floodingProcess();
    const http = await startEndpoint(proc);
    const init = await post(http, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'stalled', version: '1' } },
    });
    const session = init.headers.get('mcp-session-id') ?? '';
    await init.text();
    await (await post(http, { jsonrpc: '2.0', method: 'notifications/initialized' }, session)).text();

    // The GET stream, on a raw socket that reads nothing after the request.
    const socket: Socket = connect(http.port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    closers.push(() => socket.destroy());
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      `GET /v1/servers/flood/mcp HTTP/1.1\r\nHost: 127.0.0.1:${http.port}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Accept: text/event-stream\r\nMcp-Session-Id: ${session}\r\nMcp-Protocol-Version: 2025-11-25\r\n\r\n`,
    );
    socket.pause();
    await new Promise((r) => setTimeout(r, 200));

    const before = await held();
    // The flood's notifications are not related to the call: they go to the GET stream. The call's own answer
    // still arrives on its POST stream.
    const call = await post(http, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'flood' } }, session);
    expect(await call.text()).toContain('"id":2');
    expect(proc.written()).toBeGreaterThanOrEqual(48 * MiB);
    const grown = (await held()) - before;
    const heldMiB = (grown / MiB).toFixed(1);
    process.stdout.write(`[measure] 48 MiB of notifications toward a GET stream nobody reads: ${heldMiB} MiB held\n`);
    // The stalled stream was ended (the client may resume it with Last-Event-ID from the bounded event store).
    socket.resume();
    const ended = await Promise.race([closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
    expect({ ended, grownMiB: Math.round(grown / MiB) }).toMatchObject({ ended: true });
    expect(grown).toBeLessThan(32 * MiB);
  }, 60_000);
});

describe('/mcp: list_changed', () => {
  it('gathers a burst of changes into one list_changed per kind, for every session', async () => {
    const events = new EventEmitter();
    const http = await startEndpoint(floodingProcess(), events);
    const connectAggregate = async () => {
      let streamOpen = false;
      const transport = new StreamableHTTPClientTransport(new URL(`${http.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
        fetch: async (url, init) => {
          const res = await fetch(url, init);
          if (init?.method === 'GET' && res.status === 200) streamOpen = true;
          return res;
        },
      });
      const client = new Client({ name: 'aggregate', version: '1' });
      const heard = { tools: 0, prompts: 0 };
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.tools++);
      client.setNotificationHandler(PromptListChangedNotificationSchema, () => void heard.prompts++);
      await client.connect(transport);
      closers.push(() => client.close());
      while (!streamOpen) await new Promise((r) => setTimeout(r, 10));
      return heard;
    };
    const a = await connectAggregate();
    const b = await connectAggregate();
    // A server that says its tools changed 500 times in a row.
    for (let i = 0; i < 500; i++) events.emit('listChanged', { name: 'flood', kind: 'tools' });
    events.emit('listChanged', { name: 'flood', kind: 'prompts' });
    await new Promise((r) => setTimeout(r, 1000));
    expect(a).toEqual({ tools: 1, prompts: 1 });
    expect(b).toEqual({ tools: 1, prompts: 1 });
  });
});
