/**
 * One Streamable HTTP client session as a member of a process's shared clients (relay/client-mux.ts): a
 * `RelayPeer` on one side, the MCP SDK's server transport (`StreamableHTTPServerTransport`, which speaks the HTTP
 * side: sessions, SSE, `Last-Event-ID`, DELETE) on the other. It does not speak MCP itself; it only decides which
 * HTTP stream each message of the process belongs on:
 *
 *   an answer                       the POST stream of its request (the transport finds it by id);
 *   a progress notification         the POST stream of the request that carried its progress token;
 *   a request of the process        the POST stream of the session's one request in flight (sampling, elicitation
 *                                   during a tool call); with none or several in flight, the GET stream;
 *   any other notification          the GET stream (list_changed, log messages, resource updates).
 *
 * Sends to the transport are chained, so the order the process wrote is the order the client sees, and the
 * relay's `done` waits for them. While stdin is full (`pause()`), messages from the client are held, at most
 * `maxHeld`; a request beyond that is answered with an error at once (a notification is dropped and counted).
 *
 * A client that stops reading: the SDK's transport queues each message for a stream without a bound (its web
 * stream does not push back). So the peer watches the session's HTTP responses (`watch`): while one of them cannot
 * take more (`writableNeedDrain`), what is sent to the client is counted, and past `maxStalledBytes` the stalled
 * responses are destroyed. The client reconnects with `Last-Event-ID` and resumes from the bounded event store, or
 * learns that it fell too far behind; the process and the session's other streams are never slowed by it.
 *
 * The end: when the relay lets go (the process ended, or it was taken over), the answers already given are sent
 * first, then the transport is closed (its streams end) and `onEnded` runs, so the session table forgets the id and
 * the client's next request gets a 404 and initializes again. When the client ends the session (DELETE) or the
 * transport closes, the peer leaves the mux.
 */
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { isObject, RELAY_ERROR_CODE } from '../relay/json-rpc.js';
import type { RelayPeer, RelayPeerClose, RelayPeerLink } from '../relay/relay-peer.js';

/** The JSON-RPC code a request gets when it cannot be passed on while the process's stdin is full. */
export const SERVER_BUSY = -32000;
export const DEFAULT_MAX_HELD = 256;
/** What may be sent toward a session while one of its responses is not taking more, before those are ended. */
export const DEFAULT_MAX_STALLED_BYTES = 4 * 1024 * 1024;

/** The part of an HTTP response the peer watches (node:http's ServerResponse). */
export interface WatchedResponse {
  readonly writableNeedDrain: boolean;
  once(event: 'close', listener: () => void): unknown;
  destroy(): void;
}

type Message = Record<string, unknown>;

export interface HttpSessionPeerOptions {
  label: string;
  maxHeld?: number;
  maxStalledBytes?: number;
  /** The relay let go of this session, or the client ended it: forget its id. Runs once. */
  onEnded: (close?: RelayPeerClose) => void;
  /** A note for the process log (a send that could not be delivered). */
  onNote?: (text: string) => void;
}

export class HttpSessionPeer implements RelayPeer {
  readonly label: string;
  private link: RelayPeerLink | null = null;
  private paused = false;
  private held: Message[] = [];
  private chain: Promise<void> = Promise.resolve();
  /** The client's requests not answered yet, in the order they came. */
  private readonly inFlight = new Set<RequestId>();
  /** progress token → the request that carried it. */
  private readonly tokens = new Map<string | number, RequestId>();
  private ended = false;
  /** Messages dropped: held over the bound, or undeliverable. */
  dropped = 0;
  /** The session's open HTTP responses (its POST streams, its GET stream). */
  private readonly responses = new Set<WatchedResponse>();
  /** Bytes sent toward the client since one of its responses stopped taking more. */
  private stalledBytes = 0;

  constructor(
    private readonly transport: Transport,
    private readonly opts: HttpSessionPeerOptions,
  ) {
    this.label = opts.label;
    transport.onmessage = (message) => this.fromClient(message as unknown as Message);
    transport.onclose = () => this.clientEnded();
  }

  // ── client → process ──────────────────────────────────────────────────────────────────────

  private fromClient(m: Message): void {
    if (this.ended) return;
    if (typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number')) {
      this.inFlight.add(m.id);
      const params = isObject(m.params) ? m.params : undefined;
      const token = isObject(params?._meta) ? params._meta.progressToken : undefined;
      if (typeof token === 'string' || typeof token === 'number') this.tokens.set(token, m.id);
    }
    if (this.paused || this.held.length > 0) return this.hold(m);
    this.link?.write(m as unknown as JSONRPCMessage);
  }

  private hold(m: Message): void {
    if (this.held.length < (this.opts.maxHeld ?? DEFAULT_MAX_HELD)) return void this.held.push(m);
    this.dropped++;
    if (typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number'))
      this.toClient({
        jsonrpc: '2.0',
        id: m.id,
        error: { code: SERVER_BUSY, message: 'mcp-box: the server is not reading its input; try again later' },
      });
  }

  // ── process → client (RelayPeer) ──────────────────────────────────────────────────────────

  attached(link: RelayPeerLink): void {
    this.link = link;
  }

  deliver(_bytes: () => Buffer, message: () => unknown, done: () => void): void {
    const value = message();
    for (const m of Array.isArray(value) ? value : [value]) if (isObject(m)) this.toClient(m);
    void this.chain.then(done);
  }

  answer(message: JSONRPCMessage): void {
    this.toClient(message as unknown as Message);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    while (!this.paused && this.held.length > 0 && this.link !== null) {
      const m = this.held.shift() as Message;
      this.link.write(m as unknown as JSONRPCMessage);
    }
  }

  detach(close?: RelayPeerClose): void {
    if (this.ended) return;
    this.ended = true;
    this.link = null;
    // Requests held by backpressure never reached the relay: they get the answer it gave the others.
    const held = this.held;
    this.held = [];
    const answer = close?.answer ?? { message: close?.reason ?? 'the session ended', data: undefined };
    for (const m of held)
      if (typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number'))
        this.toClient({
          jsonrpc: '2.0',
          id: m.id,
          error: {
            code: RELAY_ERROR_CODE,
            message: answer.message,
            ...(answer.data === undefined ? {} : { data: answer.data }),
          },
        });
    // What the relay answered went into the chain first; the streams end after it.
    void this.chain.then(async () => {
      await this.transport.close().catch(() => undefined);
      this.opts.onEnded(close);
    });
  }

  /** A response of this session, watched until it closes (see "A client that stops reading" above). */
  watch(res: WatchedResponse): void {
    this.responses.add(res);
    res.once('close', () => this.responses.delete(res));
  }

  private chargeStalled(m: Message): void {
    let stalled = false;
    for (const res of this.responses) if (res.writableNeedDrain) stalled = true;
    if (!stalled) {
      this.stalledBytes = 0;
      return;
    }
    this.stalledBytes += Buffer.byteLength(JSON.stringify(m));
    if (this.stalledBytes <= (this.opts.maxStalledBytes ?? DEFAULT_MAX_STALLED_BYTES)) return;
    this.opts.onNote?.(
      `${this.label} stopped reading: ${this.stalledBytes} bytes waited for it; ` +
        'its stalled streams were closed (it may resume them with Last-Event-ID)',
    );
    this.stalledBytes = 0;
    for (const res of [...this.responses]) if (res.writableNeedDrain) res.destroy();
  }

  private toClient(m: Message): void {
    this.chargeStalled(m);
    const options = this.routeOf(m);
    // Promise.resolve().then: a send that throws at once (not the SDK's) still only rejects this link of the chain.
    this.chain = this.chain.then(() =>
      Promise.resolve()
        .then(() => this.transport.send(m as unknown as JSONRPCMessage, options))
        .catch((err: unknown) => {
          // The client went away from that stream and cannot resume it: nothing can carry this message now.
          this.dropped++;
          this.opts.onNote?.(`a message for ${this.label} was not delivered: ${(err as Error).message}`);
        }),
    );
  }

  private routeOf(m: Message): TransportSendOptions | undefined {
    const id = m.id;
    if (typeof m.method !== 'string') {
      // An answer: the transport routes it by its id. It settles the request.
      if (typeof id === 'string' || typeof id === 'number') {
        this.inFlight.delete(id);
        for (const [token, request] of this.tokens) if (request === id) this.tokens.delete(token);
      }
      return undefined;
    }
    const params = isObject(m.params) ? m.params : {};
    if (m.method === 'notifications/progress') {
      const token = params.progressToken;
      const request = typeof token === 'string' || typeof token === 'number' ? this.tokens.get(token) : undefined;
      return request !== undefined && this.inFlight.has(request) ? { relatedRequestId: request } : undefined;
    }
    if (id !== undefined && id !== null && this.inFlight.size === 1) {
      const [only] = this.inFlight;
      return { relatedRequestId: only as RequestId };
    }
    return undefined;
  }

  /** The transport closed: the client's DELETE, or our own close after the relay let go. */
  private clientEnded(): void {
    if (this.ended) return;
    this.ended = true;
    const link = this.link;
    this.link = null;
    link?.left();
    this.opts.onEnded();
  }
}
