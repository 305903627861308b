/**
 * All relays of a supervisor, by session and process, and the WebSocket routes that reach them
 * (subprotocol `mcp`):
 *   - `GET /v1/relay/{capability}`: no header needed. Each registered relay gets a capability of its own (256
 *     random bits), valid for that one process until it ends or `revoke` replaces it. It is the URL a client
 *     such as the Python SDK's `websocket_client(url)` (which sends no headers) connects to; it is never the API
 *     token, and log lines never carry it (util/capability-url.ts);
 *   - `GET /v1/sessions/{session}/processes/{process}/ws`: with the API token (`Authorization: Bearer`).
 * A client shares the process with the other clients (the supervisor's own among them; client-mux.ts) unless it
 * asks to hold it alone with `X-MCP-Box-Exclusive: 1` (or `?exclusive=1`). A client alone is refused while others
 * use the process, unless it takes over with `X-MCP-Box-Takeover: 1` (or `?takeover=1`).
 *
 *   register(session, processId, proc, hooks?): StdioRelay     a new relay with a new capability (replacing one
 *                                                               registered before, whose capability ends with it)
 *   unregister(session, processId, relay, reason): void         closes it (4000), its capability ends
 *   get(session, processId): StdioRelay | undefined             the registered relay, e.g. for
 *                                                               `get(s, p)?.connectInProcess({ takeover: true })`
 *   capability(session, processId): string | undefined          its current capability
 *   revoke(session, processId): string | undefined              a new capability; the old one is refused from now
 *                                                               on, and a client that came through it is closed (4003)
 *   mount(router: RelayUpgradeRouter): void                     adds the WebSocket routes (the HTTP server
 *                                                               implements it)
 *
 * Nothing here imports from src/server/ or src/supervisor/: the route table is reached through
 * `RelayUpgradeRouter`, which the HTTP server satisfies.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { BoxError } from '../errors/box-error.js';
import { newCapability } from '../util/capability-url.js';
import { CLOSE_CAPABILITY_REVOKED, CLOSE_PROCESS_EXITED } from './close-codes.js';
import { emptyRelayStats, StdioRelay, type RelayOptions, type RelayProcess, type RelayStats } from './stdio-relay.js';

/** The part of an HTTP server the hub needs: a WebSocket route with a check before the handshake. */
export interface RelayUpgradeRouter {
  /**
   * `path` has `{name}` parameters; `check` runs before the handshake (a thrown BoxError refuses the
   * upgrade with its HTTP status); `handler` gets the open socket.
   */
  upgrade(
    path: string,
    protocol: string,
    check: (req: IncomingMessage, params: Record<string, string>) => void,
    handler: (ws: WebSocket, req: IncomingMessage, params: Record<string, string>) => void,
    /** public: no API token (the route checks its own credential). */
    opts?: { public?: boolean },
  ): unknown;
}

export const RELAY_SUBPROTOCOL = 'mcp';

export class RelayHub {
  private readonly relays = new Map<string, StdioRelay>();
  /** capability → relay key, and back. */
  private readonly byCapability = new Map<string, string>();
  private readonly capabilities = new Map<string, string>();

  constructor(private readonly defaults: RelayOptions = {}) {}

  register(
    session: string,
    processId: string,
    proc: RelayProcess,
    hooks: Pick<RelayOptions, 'onNonJsonLine' | 'onEvent' | 'onStdoutClosed'> = {},
  ): StdioRelay {
    const key = keyOf(session, processId);
    this.relays.get(key)?.close(CLOSE_PROCESS_EXITED, 'replaced by a new process');
    const relay = new StdioRelay(proc, { ...this.defaults, ...hooks });
    this.relays.set(key, relay);
    this.mint(key);
    return relay;
  }

  unregister(session: string, processId: string, relay: StdioRelay, reason: string): void {
    relay.close(CLOSE_PROCESS_EXITED, reason.slice(0, 120));
    const key = keyOf(session, processId);
    if (this.relays.get(key) !== relay) return;
    this.relays.delete(key);
    this.forget(key);
  }

  capability(session: string, processId: string): string | undefined {
    return this.capabilities.get(keyOf(session, processId));
  }

  revoke(session: string, processId: string): string | undefined {
    const key = keyOf(session, processId);
    const relay = this.relays.get(key);
    const old = this.capabilities.get(key);
    if (relay === undefined || old === undefined) return undefined;
    const fresh = this.mint(key);
    relay.disconnectVia(old, CLOSE_CAPABILITY_REVOKED, 'the relay capability this client used was revoked');
    return fresh;
  }

  private mint(key: string): string {
    this.forget(key);
    const capability = newCapability();
    this.capabilities.set(key, capability);
    this.byCapability.set(capability, key);
    return capability;
  }

  private forget(key: string): void {
    const old = this.capabilities.get(key);
    if (old !== undefined) this.byCapability.delete(old);
    this.capabilities.delete(key);
  }

  /** The relay registered for this process, if it is running. */
  get(session: string, processId: string): StdioRelay | undefined {
    return this.relays.get(keyOf(session, processId));
  }

  /** Totals over all relays (for metrics). */
  totals(): RelayStats {
    const sum = emptyRelayStats();
    for (const r of this.relays.values())
      for (const k of Object.keys(sum) as (keyof RelayStats)[]) sum[k] += r.stats[k];
    return sum;
  }

  mount(router: RelayUpgradeRouter): void {
    router.upgrade(
      '/v1/sessions/{session}/processes/{process}/ws',
      RELAY_SUBPROTOCOL,
      (_req, params) => {
        if (this.get(params.session ?? '', params.process ?? '') === undefined) {
          throw new BoxError(
            'NOT_FOUND',
            'relay_connect',
            `No running process ${JSON.stringify(params.process)} in session ${JSON.stringify(params.session)}`,
          );
        }
      },
      (ws, req, params) => {
        const relay = this.get(params.session ?? '', params.process ?? '');
        if (relay === undefined) return ws.close(CLOSE_PROCESS_EXITED, 'the process is not running');
        relay.attach(ws, { takeover: wantsTakeover(req), shared: !wantsExclusive(req) });
      },
    );
    router.upgrade(
      '/v1/relay/{capability}',
      RELAY_SUBPROTOCOL,
      (_req, params) => {
        // Never echo the capability: a refusal may be logged by whoever made the request.
        if (this.byCapability.get(params.capability ?? '') === undefined) {
          throw new BoxError(
            'NOT_FOUND',
            'relay_connect',
            'No relay has this capability: it was revoked, or its process ended. ' +
              'The server record (GET /v1/servers/{name}) has the current relay URL',
          );
        }
      },
      (ws, req, params) => {
        const capability = params.capability ?? '';
        const key = this.byCapability.get(capability);
        const relay = key === undefined ? undefined : this.relays.get(key);
        if (relay === undefined) return ws.close(CLOSE_PROCESS_EXITED, 'the process is not running');
        relay.attach(ws, { takeover: wantsTakeover(req), shared: !wantsExclusive(req), via: capability });
      },
      { public: true },
    );
  }

  closeAll(reason: string): void {
    for (const relay of this.relays.values()) relay.close(undefined, reason);
    this.relays.clear();
    this.capabilities.clear();
    this.byCapability.clear();
  }
}

/** `X-MCP-Box-Takeover: 1`, or `?takeover=1` for clients that cannot send headers. */
function wantsTakeover(req: IncomingMessage): boolean {
  return flag(req, 'x-mcp-box-takeover', 'takeover');
}

/**
 * `X-MCP-Box-Exclusive: 1` or `?exclusive=1`: hold the process alone, as its only client (the bytes of each line as
 * the server wrote them, no id remapping). Without it a client shares the process (client-mux.ts).
 */
function wantsExclusive(req: IncomingMessage): boolean {
  return flag(req, 'x-mcp-box-exclusive', 'exclusive');
}

function flag(req: IncomingMessage, header: string, query: string): boolean {
  if (req.headers[header] === '1') return true;
  const search = (req.url ?? '').split('?')[1];
  return search !== undefined && new URLSearchParams(search).get(query) === '1';
}

function keyOf(session: string, processId: string): string {
  return `${session}\u0000${processId}`;
}
