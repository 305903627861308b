/**
 * All relays of a supervisor, by session and process, and the WebSocket route that reaches them:
 * `GET /v1/sessions/{session}/processes/{process}/ws` (subprotocol `mcp`). A client asks to take
 * over an attached process with the header `X-MCP-Box-Takeover: 1`.
 */
import { BoxError } from '../errors/box-error.js';
import type { HttpServer } from '../server/http-server.js';
import { CLOSE_PROCESS_EXITED } from './close-codes.js';
import { StdioRelay, type RelayOptions, type RelayProcess, type RelayStats } from './stdio-relay.js';

export const RELAY_SUBPROTOCOL = 'mcp';

export function relayPath(session: string, processId: string): string {
  return `/v1/sessions/${encodeURIComponent(session)}/processes/${encodeURIComponent(processId)}/ws`;
}

export class RelayHub {
  private readonly relays = new Map<string, StdioRelay>();

  constructor(private readonly defaults: RelayOptions = {}) {}

  register(session: string, processId: string, proc: RelayProcess, hooks: Pick<RelayOptions, 'onNonJsonLine' | 'onEvent' | 'onStdoutClosed'> = {}): StdioRelay {
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

  get(session: string, processId: string): StdioRelay | undefined {
    return this.relays.get(keyOf(session, processId));
  }

  /** Totals over all relays (for metrics). */
  totals(): RelayStats {
    const sum: RelayStats = { messagesOut: 0, bytesOut: 0, messagesIn: 0, bytesIn: 0, nonJsonLines: 0, overLimitLines: 0, rejectedFrames: 0 };
    for (const r of this.relays.values()) for (const k of Object.keys(sum) as (keyof RelayStats)[]) sum[k] += r.stats[k];
    return sum;
  }

  mount(http: HttpServer): void {
    http.upgrade(
      '/v1/sessions/{session}/processes/{process}/ws',
      RELAY_SUBPROTOCOL,
      (_req, params) => {
        if (this.get(params.session ?? '', params.process ?? '') === undefined) {
          throw new BoxError('NOT_FOUND', 'relay_connect', `No running process ${JSON.stringify(params.process)} in session ${JSON.stringify(params.session)}`);
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
