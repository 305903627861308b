/**
 * The Streamable HTTP sessions of `serve`, by `Mcp-Session-Id`: each belongs to one scope (a server's name for
 * `/v1/servers/{name}/mcp`), and a session id is only ever valid in its own scope.
 *
 *   open(scope, transport, close)   reserves room for a new session (throws a BoxError when the scope is full);
 *                                   `bind(id)` files it under the id the transport generated at initialize
 *   find(scope, id)                 the session, or undefined (the caller answers 404): never a session of another
 *                                   scope; each find counts as activity
 *   forget(id)                      the session ended (DELETE, its process ended): its id answers 404 from now on
 *   sweep(now)                      ends sessions idle for longer than `idleMs` (a client that never sent DELETE)
 *   closeAll()                      ends every session (serve is shutting down)
 *
 * Session ids are 256 random bits (util/capability-url.ts), so an id cannot be guessed from another.
 */
import { BoxError } from '../errors/box-error.js';
import { DEFAULT_MCP_SESSION_IDLE_MS, DEFAULT_MCP_SESSIONS_PER_SERVER } from '../defaults.js';

export interface McpSession<T = unknown> {
  scope: string;
  /** The id, once the transport generated it (at initialize). */
  id: string | null;
  /** What the route keeps with the session (its transport). */
  value: T;
  lastSeen: number;
  close: () => Promise<void>;
}

export interface McpSessionLimits {
  perScope: number;
  idleMs: number;
}

export class McpSessionTable<T = unknown> {
  private readonly byId = new Map<string, McpSession<T>>();
  /** Every open session, bound to an id or not yet, by scope. */
  private readonly byScope = new Map<string, Set<McpSession<T>>>();
  private readonly limits: McpSessionLimits;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(limits: Partial<McpSessionLimits> = {}) {
    this.limits = {
      perScope: limits.perScope ?? DEFAULT_MCP_SESSIONS_PER_SERVER,
      idleMs: limits.idleMs ?? DEFAULT_MCP_SESSION_IDLE_MS,
    };
  }

  /** Room for one more session in `scope`; the session is counted from now on, until `forget`. */
  open(scope: string, value: T, close: () => Promise<void>): McpSession<T> {
    const set = this.byScope.get(scope) ?? new Set();
    if (set.size >= this.limits.perScope) {
      this.sweep();
      if (set.size >= this.limits.perScope)
        throw new BoxError(
          'CONFLICT',
          'request',
          `${set.size} MCP sessions are open ${`for "${scope}"`}, the most ` +
            'allowed: end one (DELETE with its Mcp-Session-Id) or wait for an idle one to expire',
        );
    }
    const session: McpSession<T> = { scope, id: null, value, lastSeen: Date.now(), close };
    set.add(session);
    this.byScope.set(scope, set);
    this.armSweeper();
    return session;
  }

  bind(session: McpSession<T>, id: string): void {
    // Once only, and not for a session already forgotten (swept before its initialize was answered).
    if (session.id !== null || this.byScope.get(session.scope)?.has(session) !== true) return;
    session.id = id;
    this.byId.set(id, session);
  }

  find(scope: string, id: string): McpSession<T> | undefined {
    const session = this.byId.get(id);
    if (session === undefined || session.scope !== scope) return undefined;
    session.lastSeen = Date.now();
    return session;
  }

  forget(session: McpSession<T>): void {
    if (session.id !== null && this.byId.get(session.id) === session) this.byId.delete(session.id);
    const set = this.byScope.get(session.scope);
    set?.delete(session);
    if (set?.size === 0) this.byScope.delete(session.scope);
  }

  /** Sessions of a scope (e.g. to tell each `/mcp` client that the lists changed). */
  inScope(scope: string): McpSession<T>[] {
    return [...(this.byScope.get(scope) ?? [])];
  }

  get size(): number {
    let n = 0;
    for (const set of this.byScope.values()) n += set.size;
    return n;
  }

  sweep(now = Date.now()): number {
    let ended = 0;
    for (const set of this.byScope.values())
      for (const s of set)
        if (now - s.lastSeen > this.limits.idleMs) {
          this.forget(s);
          void s.close().catch(() => undefined);
          ended++;
        }
    return ended;
  }

  async closeAll(): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    const all = [...this.byScope.values()].flatMap((set) => [...set]);
    for (const s of all) this.forget(s);
    await Promise.allSettled(all.map((s) => s.close()));
  }

  private armSweeper(): void {
    if (this.sweeper !== null) return;
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1_000, this.limits.idleMs / 4)));
    this.sweeper.unref();
  }
}
