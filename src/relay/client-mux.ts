/**
 * Many clients, one process: a `RelayPeer` that a `StdioRelay` holds as its one peer, and that shares the process
 * among member peers (WebSocket clients, the supervisor's own in-process client), each of which keeps the relay's
 * peer contract (relay-peer.ts) as if it had the process to itself.
 *
 *   member → process  each request gets an id of the mux's own (numbers, unique over all members), restored exactly
 *                     (string or number) on its answer; a progress token is replaced the same way, and
 *                     `notifications/cancelled` names the mux's id. `initialize` reaches the process once: later
 *                     members get its answer (each member's own capabilities are kept in `capabilities`), and
 *                     `notifications/initialized` goes through once. `resources/subscribe` is counted per URI
 *                     (the process sees the first subscribe and the last unsubscribe), and `logging/setLevel` sends
 *                     the most verbose level any member asked for.
 *   process → member  an answer to the member that asked; a progress notification to the member whose token it
 *                     carries; every other notification (`list_changed`, log messages, resource updates) to all.
 *                     A request of the process (sampling, elicitation, `roots/list`) goes to the one member with
 *                     requests in flight; when none or several have, the process gets a JSON-RPC error saying
 *                     why — never silence.
 *
 * A member that leaves takes its requests with it: their answers are dropped, its subscriptions are given back;
 * when the last one leaves, the mux leaves the relay (which then holds the output for the next client).
 * When the relay ends the mux (the process ended, or an exclusive client took over), every member is ended with
 * the same close, and requests in flight are answered by the relay through `answer`, each to its member.
 */
import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { isObject, RELAY_ERROR_CODE } from './json-rpc.js';
import type { AttachResult, RelayPeer, RelayPeerClose, RelayPeerLink } from './relay-peer.js';

type Id = string | number;
type Message = Record<string, unknown>;

/** The mux reads and writes messages as plain objects; the relay's contract types them. */
const wire = (m: Message): JSONRPCMessage => m as unknown as JSONRPCMessage;

/** The JSON-RPC error code the process gets for a request of its own that no member can be picked to answer. */
export const NO_CLIENT_FOR_REQUEST = -32001;

/** Syslog severities of MCP's logging/setLevel, most verbose first. */
const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

interface Member {
  peer: RelayPeer;
  n: number;
  /** What it said it can do in its initialize (its own, not the first member's). */
  capabilities: unknown;
  subscriptions: Map<string, number>;
  logLevel: string | null;
}

interface Pending {
  member: Member;
  id: Id;
  method: string;
  progressToken?: string;
}

export class ClientMux implements RelayPeer {
  readonly label = 'shared clients';
  private link: RelayPeerLink | null = null;
  private readonly members = new Map<RelayPeer, Member>();
  private nextMember = 1;
  private nextId = 1;
  private nextToken = 1;
  /** By the mux's id: whose request it is. */
  private readonly pending = new Map<number, Pending>();
  /** By the mux's progress token. */
  private readonly progress = new Map<string, { member: Member; token: Id }>();
  /** Requests of the process, by their id (as JSON), and the member that was given each. */
  private readonly asked = new Map<string, Member>();
  private init:
    | { state: 'none' }
    | { state: 'pending'; waiting: { member: Member; id: Id; version: unknown }[] }
    | { state: 'done'; result: unknown } = { state: 'none' };
  private initializedSent = false;
  private readonly subscriptions = new Map<string, number>();
  private sentLogLevel: string | null = null;
  private paused = false;
  private ended: RelayPeerClose | null = null;

  /** How many members share the process now. */
  get size(): number {
    return this.members.size;
  }

  /** A member's capabilities from its own initialize (undefined before it sent one). */
  capabilities(peer: RelayPeer): unknown {
    return this.members.get(peer)?.capabilities;
  }

  /** Adds a member; it gets its own link. A mux the relay has let go of refuses with the relay's close. */
  join(peer: RelayPeer): AttachResult {
    if (this.ended !== null) {
      peer.detach(this.ended);
      return { attached: false, code: this.ended.code, reason: this.ended.reason };
    }
    const member: Member = {
      peer,
      n: this.nextMember++,
      capabilities: undefined,
      subscriptions: new Map(),
      logLevel: null,
    };
    this.members.set(peer, member);
    peer.attached({
      write: (message) => {
        if (this.members.get(peer) === member)
          for (const m of Array.isArray(message) ? message : [message]) this.fromMember(member, m as Message);
      },
      rejected: () => this.link?.rejected(),
      left: () => {
        this.leave(member);
        // As the relay does for a peer that left: let go of it, without a close.
        peer.detach();
      },
      event: (message) => this.link?.event(message),
    });
    if (this.paused) peer.pause();
    this.link?.event(`${peer.label} joined (${this.members.size} sharing the process)`);
    return { attached: true };
  }

  /** Ends one member (a revoked capability): its requests in flight get `close.answer`, then it is detached. */
  expel(peer: RelayPeer, close: RelayPeerClose): boolean {
    const member = this.members.get(peer);
    if (member === undefined) return false;
    if (close.answer !== undefined) {
      const { message, data } = close.answer;
      for (const p of this.pending.values())
        if (p.member === member)
          peer.answer(wire({ jsonrpc: '2.0', id: p.id, error: { code: RELAY_ERROR_CODE, message, data } }));
    }
    this.leave(member);
    peer.detach(close);
    return true;
  }

  // ── RelayPeer: the relay's side ─────────────────────────────────────────────────────────────

  attached(link: RelayPeerLink): void {
    this.link = link;
  }

  deliver(_bytes: () => Buffer, message: () => unknown, done: () => void): void {
    const value = message();
    const messages = (Array.isArray(value) ? value : [value]).filter(isObject);
    let waiting = 1;
    const one = (): void => {
      if (--waiting === 0) done();
    };
    const send = (member: Member, m: Message): void => {
      waiting++;
      // Serialised only for a member that sends bytes (a WebSocket); the supervisor's own client takes `m`.
      member.peer.deliver(
        () => Buffer.from(JSON.stringify(m), 'utf8'),
        () => m,
        one,
      );
    };
    for (const m of messages) this.fromProcess(m, send);
    one();
  }

  answer(message: JSONRPCMessage): void {
    const m = message as Message;
    if (typeof m.id === 'number') this.settle(m.id, m, (member, out) => member.peer.answer(wire(out)));
  }

  pause(): void {
    this.paused = true;
    for (const m of this.members.values()) m.peer.pause();
  }

  resume(): void {
    this.paused = false;
    for (const m of this.members.values()) m.peer.resume();
  }

  detach(close?: RelayPeerClose): void {
    this.ended = close ?? { code: 1000, reason: 'the relay let go of its shared clients' };
    this.link = null;
    const members = [...this.members.values()];
    this.members.clear();
    this.pending.clear();
    this.progress.clear();
    this.asked.clear();
    for (const m of members) m.peer.detach(close);
  }

  // ── member → process ──────────────────────────────────────────────────────────────────────

  private fromMember(member: Member, m: Message): void {
    const link = this.link;
    if (link === null) return;
    const method = typeof m.method === 'string' ? m.method : undefined;
    const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined;
    if (method === undefined) {
      // An answer to a request of the process: only from the member that was asked.
      const key = JSON.stringify(m.id);
      if (this.asked.get(key) !== member) return link.rejected();
      this.asked.delete(key);
      return link.write(wire(m));
    }
    if (id === undefined) return this.notificationFromMember(member, method, m, link);
    const reply = (result: unknown): void => member.peer.answer(wire({ jsonrpc: '2.0', id, result }));
    const params = isObject(m.params) ? m.params : {};
    if (method === 'initialize') {
      member.capabilities = params.capabilities;
      if (this.init.state === 'done') return reply(answeredVersion(this.init.result, params.protocolVersion));
      if (this.init.state === 'pending')
        return void this.init.waiting.push({ member, id, version: params.protocolVersion });
      this.init = { state: 'pending', waiting: [] };
    }
    if (method === 'resources/subscribe' || method === 'resources/unsubscribe') {
      const uri = typeof params.uri === 'string' ? params.uri : '';
      if (!this.countSubscription(member, uri, method === 'resources/subscribe' ? 1 : -1)) return reply({});
    }
    if (method === 'logging/setLevel') {
      member.logLevel = typeof params.level === 'string' ? params.level : null;
      const level = this.mostVerboseLevel();
      if (level === this.sentLogLevel) return reply({});
      this.sentLogLevel = level;
      return this.forward(member, id, method, { ...m, params: { ...params, level } }, link);
    }
    this.forward(member, id, method, m, link);
  }

  private forward(member: Member, id: Id, method: string, m: Message, link: RelayPeerLink): void {
    const own = this.nextId++;
    const entry: Pending = { member, id, method };
    let out: Message = { ...m, id: own };
    const params = isObject(m.params) ? m.params : undefined;
    const meta = params !== undefined && isObject(params._meta) ? params._meta : undefined;
    const token = meta?.progressToken;
    if (typeof token === 'string' || typeof token === 'number') {
      const mine = `mbx-${this.nextToken++}`;
      this.progress.set(mine, { member, token });
      entry.progressToken = mine;
      out = { ...out, params: { ...params, _meta: { ...meta, progressToken: mine } } };
    }
    this.pending.set(own, entry);
    link.write(wire(out));
  }

  private notificationFromMember(member: Member, method: string, m: Message, link: RelayPeerLink): void {
    if (method === 'notifications/initialized') {
      if (this.initializedSent) return;
      this.initializedSent = true;
    }
    if (method === 'notifications/cancelled') {
      const params = isObject(m.params) ? m.params : {};
      const own = this.ownIdOf(member, params.requestId);
      if (own === undefined) return; // not one of its requests in flight: nothing to cancel
      return link.write(wire({ ...m, params: { ...params, requestId: own } }));
    }
    link.write(wire(m));
  }

  private ownIdOf(member: Member, id: unknown): number | undefined {
    for (const [own, p] of this.pending) if (p.member === member && p.id === id) return own;
    return undefined;
  }

  /** Counts a (un)subscribe; true when the process must see it (the first subscribe, the last unsubscribe). */
  private countSubscription(member: Member, uri: string, delta: 1 | -1): boolean {
    const mine = member.subscriptions.get(uri) ?? 0;
    if (delta === -1 && mine === 0) return false;
    member.subscriptions.set(uri, mine + delta);
    if (mine + delta === 0) member.subscriptions.delete(uri);
    const all = (this.subscriptions.get(uri) ?? 0) + delta;
    if (all === 0) this.subscriptions.delete(uri);
    else this.subscriptions.set(uri, all);
    return (delta === 1 && all === 1) || (delta === -1 && all === 0);
  }

  private mostVerboseLevel(): string | null {
    let best: number | null = null;
    for (const m of this.members.values()) {
      const i = m.logLevel === null ? -1 : LOG_LEVELS.indexOf(m.logLevel);
      if (i >= 0 && (best === null || i < best)) best = i;
    }
    return best === null ? null : (LOG_LEVELS[best] ?? null);
  }

  // ── process → member ──────────────────────────────────────────────────────────────────────

  private fromProcess(m: Message, send: (member: Member, m: Message) => void): void {
    const method = typeof m.method === 'string' ? m.method : undefined;
    if (method === undefined) return this.answerFromProcess(m, send);
    if (m.id !== undefined && m.id !== null) return this.requestFromProcess(method, m, send);
    const params = isObject(m.params) ? m.params : {};
    if (method === 'notifications/progress' && typeof params.progressToken === 'string') {
      const owner = this.progress.get(params.progressToken);
      if (owner !== undefined) send(owner.member, { ...m, params: { ...params, progressToken: owner.token } });
      return;
    }
    for (const member of this.members.values()) send(member, m);
  }

  private answerFromProcess(m: Message, send: (member: Member, m: Message) => void): void {
    // Not a number: not an id of ours (the process answered something nobody asked through the mux).
    if (typeof m.id === 'number') this.settle(m.id, m, send);
  }

  /**
   * The answer for one of the mux's ids (from the process, or the relay's in its place): to the member that asked,
   * with its own id, and for initialize to every member waiting on it too. An initialize is settled even when the
   * member that sent it has left, so that those waiting are answered.
   */
  private settle(own: number, m: Message, send: (member: Member, m: Message) => void): void {
    const target = this.pending.get(own);
    if (target === undefined) return; // its member left, or no request of ours
    this.pending.delete(own);
    if (target.progressToken !== undefined) this.progress.delete(target.progressToken);
    if (target.method === 'initialize') {
      const waiting = this.init.state === 'pending' ? this.init.waiting : [];
      // A failed initialize is not kept: the next member's initialize goes to the process again.
      this.init = m.result !== undefined ? { state: 'done', result: m.result } : { state: 'none' };
      for (const w of waiting)
        if (this.isMember(w.member))
          send(
            w.member,
            m.result === undefined
              ? { ...m, id: w.id }
              : { ...m, id: w.id, result: answeredVersion(m.result, w.version) },
          );
    }
    if (this.isMember(target.member)) send(target.member, { ...m, id: target.id });
  }

  private isMember(member: Member): boolean {
    return this.members.get(member.peer) === member;
  }

  private requestFromProcess(method: string, m: Message, send: (member: Member, m: Message) => void): void {
    const busy = new Set<Member>();
    for (const p of this.pending.values()) if (this.isMember(p.member)) busy.add(p.member);
    if (busy.size === 1) {
      const [member] = busy as unknown as [Member];
      this.asked.set(JSON.stringify(m.id), member);
      return send(member, m);
    }
    const why =
      busy.size === 0
        ? `no client has a request in flight, so none can be asked "${method}"`
        : `${busy.size} clients have requests in flight, so it is not clear which one should answer "${method}"`;
    this.toProcess({
      jsonrpc: '2.0',
      id: m.id as Id,
      error: {
        code: NO_CLIENT_FOR_REQUEST,
        message: `mcp-box: ${this.members.size} clients share this server; ${why}`,
      },
    });
  }

  private toProcess(m: Message): void {
    this.link?.write(wire(m));
  }

  private leave(member: Member): void {
    if (this.members.get(member.peer) !== member) return;
    this.members.delete(member.peer);
    // Its requests go with it, but an initialize others may be waiting on (its answer is settled for them).
    for (const [own, p] of this.pending) if (p.member === member && p.method !== 'initialize') this.pending.delete(own);
    for (const [token, p] of this.progress) if (p.member === member) this.progress.delete(token);
    for (const [key, m] of this.asked) {
      if (m !== member) continue;
      this.asked.delete(key);
      // The process waits for an answer that will never come from it: say so.
      this.toProcess({
        jsonrpc: '2.0',
        id: JSON.parse(key) as Id,
        error: { code: NO_CLIENT_FOR_REQUEST, message: 'mcp-box: the client this request went to has left' },
      });
    }
    // Its subscriptions are given back; the process sees the last unsubscribe of each URI.
    for (const [uri, count] of member.subscriptions) {
      for (let i = 0; i < count; i++) {
        const all = (this.subscriptions.get(uri) ?? 1) - 1;
        if (all > 0) this.subscriptions.set(uri, all);
        else {
          this.subscriptions.delete(uri);
          this.toProcess({
            jsonrpc: '2.0',
            id: this.nextId++,
            method: 'resources/unsubscribe',
            params: { uri },
          });
        }
      }
    }
    member.subscriptions.clear();
    if (member.logLevel !== null) {
      member.logLevel = null;
      const level = this.mostVerboseLevel();
      if (level !== null && level !== this.sentLogLevel) {
        this.sentLogLevel = level;
        this.toProcess({
          jsonrpc: '2.0',
          id: this.nextId++,
          method: 'logging/setLevel',
          params: { level },
        });
      }
    }
    this.link?.event(`${member.peer.label} left (${this.members.size} sharing the process)`);
    // Nobody left: the relay holds the process's output for the next client, as for any peer that left.
    if (this.members.size === 0) this.link?.left();
  }
}

/**
 * The initialize answer for a later member: the process's, with the protocol version that member asked for when
 * that is an older revision than the process's: it may not speak the newer one, most messages are the same in both,
 * and a field that is new to it, it ignores. A member that asked for a newer or an unknown revision
 * gets the process's own, as a server answers.
 */
function answeredVersion(result: unknown, asked: unknown): unknown {
  if (!isObject(result) || typeof asked !== 'string' || typeof result.protocolVersion !== 'string') return result;
  const rank = (v: string): number => SUPPORTED_PROTOCOL_VERSIONS.indexOf(v);
  const theirs = rank(asked);
  const ours = rank(result.protocolVersion);
  return theirs !== -1 && ours !== -1 && theirs > ours ? { ...result, protocolVersion: asked } : result;
}
