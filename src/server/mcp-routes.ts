/**
 * MCP's Streamable HTTP transport (revision 2025-11-25, and the earlier 2025 revisions it negotiates) on `serve`'s
 * port, behind the same token and Origin/Host rules as the rest of the API:
 *
 *   POST|GET|DELETE /v1/servers/{name}/mcp   one sandboxed server. Each client session joins the process's shared
 *                                            clients (relay/client-mux.ts) with the supervisor's own client and
 *                                            any WebSocket clients; the process sees one client.
 *   POST|GET|DELETE /mcp                     every ready server at once (mcp-http/aggregate-server.ts): names
 *                                            `server__name`, and `list_changed` to each session whenever a server
 *                                            becomes ready or stops being ready (restart, crash, stop, removal),
 *                                            and of one kind when a server says that list of its own changed.
 *
 * The SDK's `StreamableHTTPServerTransport` speaks the HTTP side (session ids, SSE for answers and the GET stream,
 * `Last-Event-ID` from a bounded event store per session, DELETE, 406 for a wrong `Accept`, protocol-version
 * header checks). What is ours: which session a request belongs to (`McpSessionTable`: a session id of another
 * server, an ended one, or one from before its process restarted answers 404, so the client initializes again),
 * that a session starts only with `initialize` and only while the server is ready, and how the session's messages
 * reach the process (mcp-http/http-session-peer.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { BoxError } from '../errors/box-error.js';
import { createAggregateServer, type AggregateBackend } from '../mcp-http/aggregate-server.js';
import { BoundedEventStore } from '../mcp-http/event-store.js';
import { HttpSessionPeer } from '../mcp-http/http-session-peer.js';
import type { McpSession, McpSessionTable } from '../mcp-http/mcp-sessions.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { ListKind } from '../supervisor/types.js';
import { newCapability } from '../util/capability-url.js';
import type { HttpServer, RouteContext } from './http-server.js';

type Sessions = McpSessionTable<StreamableHTTPServerTransport>;
type Connect = (
  transport: StreamableHTTPServerTransport,
  session: McpSession<StreamableHTTPServerTransport>,
) => void | Promise<void>;

/** JSON-RPC code of a request naming a session that does not exist (the SDK's own). */
const SESSION_NOT_FOUND = -32001;
/** The session scope of `/mcp`: no server name contains a slash, so it is never a server's scope. */
export const AGGREGATE_SCOPE = '/mcp';
/** How long changes of the lists are gathered before `/mcp` sessions hear one `list_changed` per kind. */
export const LIST_CHANGED_COALESCE_MS = 200;
/** Distinct warnings remembered (each is reported once); beyond this, the oldest is forgotten. */
const WARNINGS_REMEMBERED = 1000;

export interface McpRoutesDeps {
  supervisor: Supervisor;
  sessions: Sessions;
  /** A collision of names in `/mcp`, a server left out of its lists: one readable line, each reported once. */
  onWarning?: (text: string) => void;
}

export function mountMcpRoutes(http: Pick<HttpServer, 'route'>, deps: McpRoutesDeps): void {
  const { supervisor, sessions } = deps;
  const peers = new WeakMap<McpSession<StreamableHTTPServerTransport>, HttpSessionPeer>();
  const perServer = (ctx: RouteContext): Promise<void> => {
    const name = ctx.params.name ?? '';
    supervisor.get(name); // 404 for a server that does not exist, before anything else
    return handle(
      ctx,
      name,
      sessions,
      (transport, session) => void peers.set(session, joinProcess(supervisor, name, transport, session, sessions)),
      (session, res) => peers.get(session)?.watch(res),
    );
  };
  const aggregate = mountAggregate(supervisor, sessions, deps.onWarning);
  for (const method of ['POST', 'GET', 'DELETE']) {
    http.route(method, '/v1/servers/{name}/mcp', perServer, { jsonRpc: true });
    http.route(method, '/mcp', aggregate, { jsonRpc: true });
  }
}

/**
 * `/mcp`: each client session gets an SDK Server of its own over the supervisor's clients of the ready servers. A
 * change of which servers are ready is a change of every list: each initialized session hears `list_changed`.
 */
function mountAggregate(
  supervisor: Supervisor,
  sessions: Sessions,
  onWarning: ((text: string) => void) | undefined,
): (ctx: RouteContext) => Promise<void> {
  // Weak: a session that never got as far as its onclose (a failed connect) holds nothing here.
  const servers = new WeakMap<McpSession<StreamableHTTPServerTransport>, Server>();
  const backend: AggregateBackend = {
    list: () => supervisor.list(),
    client: (name) => (supervisor.has(name) ? supervisor.get(name).client : undefined),
    callTool: (name, tool, args, opts) => supervisor.callTool(name, tool, args, opts),
  };
  const warned = new Set<string>();
  const warnOnce = (text: string): void => {
    if (warned.has(text)) return;
    warned.add(text);
    if (warned.size > WARNINGS_REMEMBERED) warned.delete(warned.values().next().value as string);
    onWarning?.(text);
  };
  // Changes are told together, at most once per LIST_CHANGED_COALESCE_MS: a server that sends list_changed in a
  // loop cannot flood every /mcp client (nor the memory of one that stopped reading).
  const pending = new Set<ListKind>();
  let flushTimer: NodeJS.Timeout | null = null;
  const tell = (kinds: ListKind[]): void => {
    for (const kind of kinds) pending.add(kind);
    if (flushTimer !== null) return;
    flushTimer = setTimeout(() => {
      flushTimer = null;
      const changed = [...pending];
      pending.clear();
      tellNow(changed);
    }, LIST_CHANGED_COALESCE_MS);
    flushTimer.unref();
  };
  const tellNow = (kinds: ListKind[]): void => {
    for (const session of sessions.inScope(AGGREGATE_SCOPE)) {
      const server = servers.get(session);
      if (session.id === null || server === undefined) continue;
      // A session whose stream is gone has nothing to tell: a failed send is not an error of the change.
      void Promise.allSettled(
        kinds.map((kind) =>
          kind === 'tools'
            ? server.sendToolListChanged()
            : kind === 'prompts'
              ? server.sendPromptListChanged()
              : server.sendResourceListChanged(),
        ),
      );
    }
  };
  supervisor.on('status', (e) => {
    if ((e.state === 'ready') !== (e.previous === 'ready')) tell(['tools', 'prompts', 'resources']);
  });
  // A server's own list_changed is a change of the aggregate list of that kind.
  supervisor.on('listChanged', (e) => tell([e.kind]));
  return (ctx) =>
    handle(ctx, AGGREGATE_SCOPE, sessions, (transport, session) => {
      const server = createAggregateServer(backend, { onWarning: warnOnce });
      servers.set(session, server);
      server.onclose = () => {
        servers.delete(session);
        sessions.forget(session);
      };
      return server.connect(transport);
    });
}

/** Each HTTP response of a session, before the transport writes to it (a per-server session watches them). */
type Watch = (session: McpSession<StreamableHTTPServerTransport>, res: RouteContext['res']) => void;

async function handle(
  ctx: RouteContext,
  scope: string,
  sessions: Sessions,
  connect: Connect,
  watch: Watch = () => undefined,
): Promise<void> {
  const { req, res, body } = ctx;
  const id = headerOf(req, 'mcp-session-id');
  if (id !== undefined) {
    const session = sessions.find(scope, id);
    if (session === undefined)
      return rpcError(
        ctx,
        404,
        SESSION_NOT_FOUND,
        'Session not found: it was ended (DELETE, idle, or its server restarted); send initialize for a new one',
      );
    watch(session, res);
    return session.value.handleRequest(req, res, body);
  }
  if (req.method !== 'POST' || !isInitializeRequest(body))
    return rpcError(
      ctx,
      400,
      -32000,
      'Bad Request: no Mcp-Session-Id header; a session starts with a POST of an initialize request',
    );
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: newCapability,
    eventStore: new BoundedEventStore(),
    onsessioninitialized: (sessionId) => sessions.bind(session, sessionId),
  });
  const session = sessions.open(scope, transport, () => transport.close());
  try {
    await connect(transport, session);
  } catch (err) {
    sessions.forget(session);
    await transport.close().catch(() => undefined);
    throw err;
  }
  watch(session, res);
  await transport.handleRequest(req, res, body);
  if (session.id === null) {
    // The transport refused the initialize (a wrong Accept header, a batch): no session came of it.
    sessions.forget(session);
    await transport.close().catch(() => undefined);
  }
}

/** The session joins the process's shared clients; only a ready server takes new sessions. */
function joinProcess(
  supervisor: Supervisor,
  name: string,
  transport: StreamableHTTPServerTransport,
  session: McpSession<StreamableHTTPServerTransport>,
  sessions: Sessions,
): HttpSessionPeer {
  const status = supervisor.get(name);
  const relay =
    status.state === 'ready' && status.session !== undefined ? supervisor.relays.get(status.session, name) : undefined;
  if (relay === undefined)
    throw new BoxError(
      'PROCESS_NOT_RUNNING',
      status.phase ?? 'runtime',
      `"${name}" is ${status.state}${status.phase === undefined ? '' : ` (phase ${status.phase})`}: ` +
        'an MCP session can start once it is ready',
      { details: { state: status.state, ...(status.error === undefined ? {} : { error: status.error.code }) } },
    );
  const peer = new HttpSessionPeer(transport, {
    label: 'HTTP client',
    onEnded: () => sessions.forget(session),
  });
  const attached = relay.attachPeer(peer, { shared: true });
  if (!attached.attached) throw new BoxError('RELAY_CONNECT_FAILED', 'relay_connect', attached.reason);
  return peer;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function rpcError(ctx: RouteContext, status: number, code: number, message: string): void {
  ctx.res.writeHead(status, { 'Content-Type': 'application/json' });
  ctx.res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
}
