/**
 * The HTTP API of BRIEF §2 on top of a Supervisor. Bodies are validated with zod (400 with the
 * field path), errors are `{ "error": { code, message, phase?, details? } }` envelopes.
 */
import type { ServerResponse } from 'node:http';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { BoxError, isBoxError, type Phase } from '../errors/box-error.js';
import { serverSchema } from '../config/schema.js';
import { SERVER_NAME_PATTERN, SERVER_NAME_RULE } from '../config/server-name.js';
import { isServerState, SERVER_STATES } from '../supervisor/server-states.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { MCP_BOX_VERSION } from '../version.js';
import type { EventLog, LoggedEvent } from './event-log.js';
import type { HttpServer, RouteContext } from './http-server.js';
import type { McpSessionTable } from '../mcp-http/mcp-sessions.js';
import { mountMcpRoutes } from './mcp-routes.js';
import type { Metrics } from './metrics.js';
import { openApiDocument, type RouteDoc } from './openapi.js';

const addServerBody = serverSchema.extend({ name: z.string().regex(SERVER_NAME_PATTERN, SERVER_NAME_RULE) });
const callToolBody = z.strictObject({
  arguments: z.record(z.string(), z.unknown()).optional(),
  timeoutMs: z.number().int().positive().max(3_600_000).optional(),
});

/**
 * Validates a request body. Its phase is `request` (what the client sent), except where the body is
 * a server definition (`POST /v1/servers`): a bad definition is a config error wherever it comes from.
 */
function parseBody<S extends z.ZodType>(
  schema: S,
  body: unknown,
  phase: Extract<Phase, 'request' | 'config'> = 'request',
): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(body)',
    message: i.message,
  }));
  throw new BoxError(
    'INVALID_ARGUMENT',
    phase,
    `Invalid request body: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    { details: { problems } },
  );
}

function intParam(ctx: RouteContext, name: string, fallback: number, max: number): number {
  const raw = ctx.query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new BoxError('INVALID_ARGUMENT', 'request', `Query parameter ${name} must be a non-negative integer`);
  return Math.min(n, max);
}

export interface ApiDeps {
  supervisor: Supervisor;
  events: EventLog;
  metrics: Metrics;
  /** The Streamable HTTP sessions of /v1/servers/{name}/mcp and /mcp. */
  mcpSessions: McpSessionTable<StreamableHTTPServerTransport>;
  /** What /mcp reports: a collision of names, a server left out of a list (each once). */
  onWarning?: (text: string) => void;
}

const SUMMARIES: Record<string, string> = {
  'GET /healthz': 'Liveness: the process answers (no token needed)',
  'GET /readyz': 'Readiness: engine reachable and every session up (503 with reasons otherwise)',
  'GET /metrics': 'Prometheus metrics',
  'GET /v1/openapi.json': 'This document',
  'GET /v1/servers': 'Server records, optionally filtered with ?state=',
  'POST /v1/servers': 'Add a server at run time',
  'GET /v1/servers/{name}': 'One server record: state, phase, failure record, relay, tools count',
  'DELETE /v1/servers/{name}': 'Stop a server and delete its workspace',
  'POST /v1/servers/{name}/restart': 'Restart with a fresh budget',
  'POST /v1/servers/{name}/relay/revoke':
    'A new relay capability (relay.url): the old URL is refused, a client connected through it is closed (4003)',
  'POST /v1/servers/{name}/stop': 'Stop (workspace and dependencies kept)',
  'POST /v1/servers/{name}/start': 'Start a stopped or failed server',
  'GET /v1/servers/{name}/logs': 'Log lines after ?after=<seq>, at most ?limit=',
  'GET /v1/servers/{name}/history': 'State transitions with phase and cause',
  'GET /v1/servers/{name}/tools': 'tools/list',
  'POST /v1/servers/{name}/tools/{tool}/call': 'tools/call with an optional timeout',
  'GET /v1/tasks/{id}': 'A long task (install): state, progress, elapsed, output lines',
  'GET /v1/tasks/{id}/tail': 'The last ?lines= output lines of a task',
  'POST /v1/tasks/{id}/cancel': 'Cancel a working task (409 when finished)',
  'GET /v1/events': 'Server-Sent Events (status, task) with ids; resume with Last-Event-ID',
  'POST /v1/servers/{name}/mcp':
    'MCP Streamable HTTP to one server: initialize (no Mcp-Session-Id) starts a session; requests answer as SSE',
  'GET /v1/servers/{name}/mcp': "MCP Streamable HTTP: the session's SSE stream (resume with Last-Event-ID)",
  'DELETE /v1/servers/{name}/mcp': 'MCP Streamable HTTP: end the session',
  'POST /mcp': 'MCP Streamable HTTP to every ready server at once: tools, prompts and resources named server__name',
  'GET /mcp': "MCP Streamable HTTP (all servers): the session's SSE stream, where list_changed arrives",
  'DELETE /mcp': 'MCP Streamable HTTP (all servers): end the session',
};

export function mountApi(http: HttpServer, deps: ApiDeps): void {
  const docs: RouteDoc[] = [];
  const documented: Pick<HttpServer, 'route'> = {
    route(method, path, handler, opts = {}) {
      const body = BODIES[`${method} ${path}`];
      const query = QUERIES[`${method} ${path}`];
      docs.push({
        method,
        path,
        summary: SUMMARIES[`${method} ${path}`] ?? '',
        ...(body === undefined ? {} : { body }),
        ...(query === undefined ? {} : { query }),
        ...(opts.public === true ? { public: true } : {}),
        ...(PRODUCES[`${method} ${path}`] === undefined ? {} : { produces: PRODUCES[`${method} ${path}`] as string }),
      });
      http.route(method, path, handler, opts);
      return http;
    },
  };
  mountRoutes(documented, deps);
  http.route('GET', '/v1/openapi.json', () =>
    openApiDocument([
      ...docs,
      { method: 'GET', path: '/v1/openapi.json', summary: SUMMARIES['GET /v1/openapi.json'] ?? '' },
    ]),
  );
}

const BODIES: Record<string, z.ZodType> = {
  'POST /v1/servers': addServerBody,
  'POST /v1/servers/{name}/tools/{tool}/call': callToolBody,
};
const QUERIES: Record<string, RouteDoc['query']> = {
  'GET /v1/servers': [{ name: 'state', schema: { type: 'string', enum: [...SERVER_STATES] } }],
};
const PRODUCES: Record<string, string> = {
  'GET /metrics': 'text/plain',
  'GET /v1/events': 'text/event-stream',
  'GET /v1/servers/{name}/mcp': 'text/event-stream',
  'GET /mcp': 'text/event-stream',
};

function mountRoutes(http: Pick<HttpServer, 'route'>, deps: ApiDeps): void {
  const { supervisor, events, metrics } = deps;
  http.route('GET', '/healthz', () => ({ live: true, version: MCP_BOX_VERSION }), { public: true });

  http.route('GET', '/readyz', async ({ res }) => {
    const reasons: string[] = [];
    try {
      await supervisor.runtime.ping({ signal: AbortSignal.timeout(3000) });
    } catch (err) {
      reasons.push(`engine: ${isBoxError(err) ? err.message : String(err)}`);
    }
    for (const session of supervisor.runtime.sessions())
      if (!session.alive) reasons.push(`session ${session.info.name} is down`);
    const body = {
      ready: reasons.length === 0,
      reasons,
      sessions: supervisor.runtime.sessions().map((s) => ({ name: s.info.name, alive: s.alive })),
    };
    res.writeHead(reasons.length === 0 ? 200 : 503, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  });

  http.route('GET', '/metrics', ({ res }) => {
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(metrics.render(supervisor));
  });

  http.route('GET', '/v1/servers', ({ query }) => {
    const state = query.get('state');
    if (state !== null && !isServerState(state))
      throw new BoxError('INVALID_ARGUMENT', 'request', `state must be one of ${SERVER_STATES.join(', ')}`);
    return { servers: supervisor.list().filter((s) => state === null || s.state === state) };
  });

  http.route('POST', '/v1/servers', ({ body, res }) => {
    const { name, ...def } = parseBody(addServerBody, body, 'config');
    // Tenant input: no folder inferred from its command line, only an explicit box.hostPath.
    const status = supervisor.add(name, def, { inferFolder: false });
    res.statusCode = 201;
    return status;
  });

  http.route('GET', '/v1/servers/{name}', ({ params }) => {
    const { client: _client, ...view } = supervisor.get(params.name ?? '');
    return view;
  });

  http.route('DELETE', '/v1/servers/{name}', async ({ params }) => {
    await supervisor.remove(params.name ?? '');
    return { removed: params.name };
  });

  http.route('POST', '/v1/servers/{name}/restart', ({ params }) => supervisor.restart(params.name ?? ''));
  http.route('POST', '/v1/servers/{name}/stop', ({ params }) => supervisor.stop(params.name ?? ''));
  http.route('POST', '/v1/servers/{name}/start', ({ params }) => supervisor.start(params.name ?? ''));
  http.route('POST', '/v1/servers/{name}/relay/revoke', ({ params }) => supervisor.revokeRelay(params.name ?? ''));

  http.route('GET', '/v1/servers/{name}/logs', (ctx) =>
    supervisor.logs(
      ctx.params.name ?? '',
      intParam(ctx, 'after', 0, Number.MAX_SAFE_INTEGER),
      intParam(ctx, 'limit', 200, 5000),
    ),
  );

  http.route('GET', '/v1/servers/{name}/history', ({ params }) => ({ history: supervisor.history(params.name ?? '') }));

  http.route('GET', '/v1/servers/{name}/tools', async ({ params }) => ({
    tools: await supervisor.listTools(params.name ?? ''),
  }));

  http.route('POST', '/v1/servers/{name}/tools/{tool}/call', async ({ params, body }) => {
    const input = parseBody(callToolBody, body);
    const started = performance.now();
    try {
      const result = await supervisor.callTool(
        params.name ?? '',
        params.tool ?? '',
        input.arguments ?? {},
        input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs },
      );
      metrics.onToolCall((performance.now() - started) / 1000, null);
      return result;
    } catch (err) {
      metrics.onToolCall((performance.now() - started) / 1000, isBoxError(err) ? err.code : 'ERROR');
      throw err;
    }
  });

  http.route('GET', '/v1/tasks/{id}', ({ params }) => supervisor.tasks.get(params.id ?? ''));
  http.route('GET', '/v1/tasks/{id}/tail', (ctx) => ({
    lines: supervisor.tasks.tail(ctx.params.id ?? '', intParam(ctx, 'lines', 50, 2000)),
  }));
  http.route('POST', '/v1/tasks/{id}/cancel', ({ params }) => supervisor.tasks.cancel(params.id ?? ''));

  http.route('GET', '/v1/events', ({ req, res, query }) => {
    const lastId = Number(req.headers['last-event-id'] ?? query.get('after') ?? 0) || 0;
    streamEvents(res, events, lastId);
  });

  mountMcpRoutes(http, {
    supervisor,
    sessions: deps.mcpSessions,
    ...(deps.onWarning === undefined ? {} : { onWarning: deps.onWarning }),
  });
}

/** Bytes an SSE client may leave unsent in serve's memory (what its socket would not take), beyond
 * its backlog, before it is dropped. Without a bound, a client that stops reading holds every later
 * event in serve's memory for as long as its connection stays open. A dropped client reconnects
 * with Last-Event-ID and gets what it missed from the log (or a `gap` event). */
export const SSE_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

const sseFrame = (e: LoggedEvent): string => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;

/** Streams the events after id `after` to `res` until the client goes or falls too far behind. */
export function streamEvents(
  res: ServerResponse,
  events: EventLog,
  after: number,
  opts: { maxBufferedBytes?: number } = {},
): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders(); // else a client with nothing to catch up on waits for the next event to see them
  const backlog = events.since(after);
  if (backlog.gap) {
    const gap = { message: 'some events were dropped from the buffer before this reconnect' };
    res.write(`event: gap\ndata: ${JSON.stringify(gap)}\n\n`);
  }
  for (const e of backlog.events) res.write(sseFrame(e));
  const limit = res.writableLength + (opts.maxBufferedBytes ?? SSE_MAX_BUFFERED_BYTES);
  const send = (text: string): void => {
    if (res.destroyed) return;
    if (res.writableLength > limit) res.destroy();
    else res.write(text);
  };
  const write = (e: LoggedEvent): void => send(sseFrame(e));
  events.on('event', write);
  const keepAlive = setInterval(() => send(': keep-alive\n\n'), 15_000);
  keepAlive.unref();
  res.on('close', () => {
    clearInterval(keepAlive);
    events.off('event', write);
  });
}
