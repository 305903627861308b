import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as yieldOnce } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { PHASES } from '../errors/box-error.js';
import { SERVER_STATES } from '../supervisor/server-states.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { McpSessionTable } from '../mcp-http/mcp-sessions.js';
import { mountApi, streamEvents } from './api-routes.js';
import { EventLog } from './event-log.js';
import { HttpServer } from './http-server.js';
import { Metrics } from './metrics.js';

describe('mountApi: the phase of a request error', () => {
  const TOKEN = 'unit-test-token-0123456789';
  let http: HttpServer | undefined;
  afterEach(async () => {
    await http?.close();
    http = undefined;
  });

  /** The API over a supervisor that must never be reached: every request below is refused before. */
  async function api(): Promise<
    (
      method: string,
      path: string,
      body?: string,
    ) => Promise<{ status: number; error: { code: string; phase?: string; message: string } }>
  > {
    const unreachable = (): never => {
      throw new Error('the supervisor was reached');
    };
    const supervisor = {
      list: () => [],
      add: unreachable,
      callTool: unreachable,
      logs: unreachable,
      tasks: { get: unreachable },
      // Subscribing to status changes (what /mcp does at mount) is not a request reaching it.
      on: () => undefined,
    } as unknown as Supervisor;
    http = new HttpServer({ host: '127.0.0.1', port: 0, token: TOKEN, maxPayload: 1024 * 1024 });
    mountApi(http, { supervisor, events: new EventLog(), metrics: new Metrics(), mcpSessions: new McpSessionTable() });
    await http.listen();
    const base = http.url;
    return async (method, path, body) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
      return {
        status: res.status,
        ...((await res.json()) as { error: { code: string; phase?: string; message: string } }),
      };
    };
  }

  it.each([
    { what: 'a body that is not JSON', method: 'POST', path: '/v1/servers/x/tools/t/call', body: '{"arguments":' },
    {
      what: 'a tool-call body against its schema',
      method: 'POST',
      path: '/v1/servers/x/tools/t/call',
      body: '{"timeoutMs":-1}',
    },
    { what: 'a bad ?state=', method: 'GET', path: '/v1/servers?state=sleeping' },
    { what: 'a bad ?after=', method: 'GET', path: '/v1/servers/x/logs?after=-1' },
    { what: 'a server definition that is not JSON', method: 'POST', path: '/v1/servers', body: 'nope' },
  ])('$what is INVALID_ARGUMENT in phase request, not config', async ({ method, path, body }) => {
    const send = await api();
    expect(await send(method, path, body)).toMatchObject({
      status: 400,
      error: { code: 'INVALID_ARGUMENT', phase: 'request' },
    });
  });

  it.each([
    { what: 'a definition against the schema', body: { name: 'x', command: '' } },
    { what: 'a server name against the rule', body: { name: 'a/b', command: 'node' } },
  ])('POST /v1/servers: $what stays a config error', async ({ body }) => {
    const send = await api();
    const answer = await send('POST', '/v1/servers', JSON.stringify(body));
    expect(answer).toMatchObject({ status: 400, error: { code: 'INVALID_ARGUMENT', phase: 'config' } });
  });

  it('the OpenAPI document lists the phases and the states from their one source', async () => {
    await api();
    const doc = (await (
      await fetch(`${http?.url}/v1/openapi.json`, { headers: { Authorization: `Bearer ${TOKEN}` } })
    ).json()) as {
      components: {
        schemas: { ErrorEnvelope: { properties: { error: { properties: { phase: { enum: string[] } } } } } };
      };
      paths: Record<string, { get?: { parameters?: { name: string; schema: { enum?: string[] } }[] } }>;
    };
    expect(doc.components.schemas.ErrorEnvelope.properties.error.properties.phase.enum).toEqual([...PHASES]);
    expect(doc.paths['/v1/servers']?.get?.parameters?.find((p) => p.name === 'state')?.schema.enum).toEqual([
      ...SERVER_STATES,
    ]);
  });
});

describe('streamEvents (GET /v1/events)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  /** A server streaming `events` to every request; `served` tells which responses have closed. */
  async function sseServer(
    events: EventLog,
    opts: { maxBufferedBytes?: number } = {},
  ): Promise<{ connect: (after?: number) => Promise<IncomingMessage>; served: { closed: boolean }[] }> {
    const served: { closed: boolean }[] = [];
    server = createServer((req, res) => {
      const entry = { closed: false };
      served.push(entry);
      res.on('close', () => (entry.closed = true));
      streamEvents(res, events, Number(req.headers['last-event-id'] ?? 0), opts);
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const connect = (after = 0): Promise<IncomingMessage> =>
      new Promise((resolve) =>
        get({ host: '127.0.0.1', port, path: '/', headers: { 'Last-Event-ID': String(after) } }, resolve).on(
          'error',
          () => undefined,
        ),
      );
    return { connect, served };
  }

  it('answers at once when there is nothing to catch up on', async () => {
    const events = new EventLog();
    events.append('status', { n: 1 });
    const { connect } = await sseServer(events);
    const res = await Promise.race([connect(1), new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
    expect(res?.statusCode).toBe(200);
    expect(res?.headers['content-type']).toMatch(/^text\/event-stream/);
  });

  it('drops a client that stops reading once it is too far behind; readers keep getting every event', async () => {
    const events = new EventLog(100_000);
    const { connect, served } = await sseServer(events, { maxBufferedBytes: 256 * 1024 });
    const stalled = await connect();
    stalled.on('error', () => undefined).pause(); // its connection is reset when it is dropped
    const reader = await connect();
    let received = 0;
    let text = '';
    reader.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      const frames = text.split('\n\n');
      text = frames.pop() ?? '';
      received += frames.length;
    });
    // Append (yielding so the sockets flush) until the stalled client is dropped: the kernel's
    // socket buffers take a few MiB first, then the bound applies.
    const pad = 'x'.repeat(16 * 1024);
    let sent = 0;
    while (served[0]?.closed !== true && sent < 4000) {
      events.append('status', { pad });
      sent++;
      await yieldOnce();
    }
    expect(served[0]?.closed).toBe(true);
    expect(sent).toBeLessThan(4000);
    expect(served[1]?.closed).toBe(false);
    expect(events.listenerCount('event')).toBe(1);
    for (let i = 0; i < 300 && received < sent; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received).toBe(sent);
  });
});
