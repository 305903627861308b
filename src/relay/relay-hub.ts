/**
 * All relays of a supervisor, by session and process, and the WebSocket route that reaches them:
 * `GET /v1/sessions/{session}/processes/{process}/ws` (subprotocol `mcp`). A client asks to take
 * over an attached process with the header `X-MCP-Box-Takeover: 1`.
 *
 *   register(session, processId, proc, hooks?): StdioRelay     a new relay (replacing one registered before)
 *   unregister(session, processId, relay, reason): void         closes it (4000) and forgets it
 *   get(session, processId): StdioRelay | undefined             the registered relay, e.g. for
 *                                                               `get(s, p)?.connectInProcess({ takeover: true })`
 *   mount(router: RelayUpgradeRouter): void                     adds the WebSocket route (the HTTP server
 *                                                               implements it)
 *
 * Nothing here imports from src/server/ or src/supervisor/: the route table is reached through
 * `RelayUpgradeRouter`, which the HTTP server satisfies.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { BoxError } from '../errors/box-error.js';
import { CLOSE_PROCESS_EXITED } from './close-codes.js';
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
  ): unknown;
}

export const RELAY_SUBPROTOCOL = 'mcp';

export function relayPath(session: string, processId: string): string {
  return `/v1/sessions/${encodeURIComponent(session)}/processes/${encodeURIComponent(processId)}/ws`;
}

export class RelayHub {
  private readonly relays = new Map<string, StdioRelay>();

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
    return relay;
  }

  unregister(session: string, processId: string, relay: StdioRelay, reason: string): void {
    relay.close(CLOSE_PROCESS_EXITED, reason.slice(0, 120));
    const key = keyOf(session, processId);
    if (this.relays.get(key) === relay) this.relays.delete(key);
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
        relay.attach(ws, { takeover: req.headers['x-mcp-box-takeover'] === '1' });
      },
    );
  }

  closeAll(reason: string): void {
    for (const relay of this.relays.values()) relay.close(undefined, reason);
    this.relays.clear();
  }
}

function keyOf(session: string, processId: string): string {
  return `${session}\u0000${processId}`;
}
