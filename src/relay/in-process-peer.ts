/**
 * An MCP SDK `Transport` straight into a `StdioRelay`, for a client in this process (the
 * supervisor's own): no TCP, no token, no second parse.
 *
 *   const transport = relay.connectInProcess({ takeover: true });
 *   await transport.connect();          // optional: attaches now, so a refusal is told apart from mcp_init
 *   await client.connect(transport);    // start() attaches if connect() was not called
 *   transport.closeInfo                 // { code, reason } once closed, as WsClientTransport's
 *
 * process → client: the relay parses each stdout line once; that value goes to `onmessage` as is
 * (each message of a batch on its own; a value that is not a JSON-RPC object goes to `onerror`).
 * Messages that arrive between connect() and start() are kept and delivered by start(); while they
 * wait, the relay counts them as not taken (stdout pauses when too much waits).
 *
 * client → process: `send()` checks the shape minimally (the client is our own) and hands the
 * message to the relay, which serialises it once (`JSON.stringify`, so no newline can occur inside
 * the line) and writes it to stdin. When stdin is full the transport is paused: messages sent then
 * are held in order, and their send() promises settle once stdin drains and they are written.
 *
 * Every guarantee of the relay holds as for a WebSocket client: requests in flight get a JSON-RPC
 * error with `data: { phase, code }` when the process ends, closes its stdout or another client
 * takes over (requests still held by backpressure get the same answer), lines held while nobody was
 * attached are delivered on attach, and an over-limit line closes the transport with 1009.
 *
 * Callbacks (`onmessage`, `onerror`, `onclose`) run from a microtask, in order, never from inside
 * the relay: an `onclose` handler may reconnect at once (`relay.connectInProcess(...).connect()`).
 *
 * Closing: `onclose` fires exactly once, whoever closes: the relay (detached, taken over, the
 * process ended; `closeInfo` has the relay's close code and reason), a refused attach, or
 * `close()`, which is idempotent (closeInfo { code: 1000, reason: 'client closed' }). After that,
 * send() rejects (PROCESS_NOT_RUNNING), and sends still held are rejected (RELAY_DROPPED).
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js';
import { BoxError } from '../errors/box-error.js';
import { CLOSE_ALREADY_ATTACHED, CLOSE_STDOUT_CLOSED } from './close-codes.js';
import { isObject, jsonRpcProblem, RELAY_ERROR_CODE, requestIdOf } from './json-rpc.js';
import type { AttachResult, RelayPeer, RelayPeerClose, RelayPeerLink } from './relay-peer.js';

/** The close code and reason of an in-process transport its owner closed. */
export const CLOSE_CLIENT_CLOSED: { readonly code: number; readonly reason: string } = {
  code: 1000,
  reason: 'client closed',
};

interface Held {
  message: JSONRPCMessage;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class InProcessTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  /** Why the transport closed (code and reason, as a WebSocket close), once it has. */
  closeInfo: { code: number; reason: string } | null = null;
  /** 'attached': send() hands messages to the relay. 'closed': the relay let go, or the owner closed. */
  private state: 'new' | 'attached' | 'closed' = 'new';
  /** Nothing more reaches the owner's callbacks (onclose has fired). */
  private silenced = false;
  private started = false;
  private link: RelayPeerLink | null = null;
  private paused = false;
  /** Sends waiting for stdin to drain, in order. */
  private held: Held[] = [];
  /** What came before start(): values to hand over, and the relay's `done` for each line. */
  private early: { values: unknown[]; done: () => void }[] = [];
  private readonly peer: RelayPeer;

  /** `attach` is the relay's `attachPeer`; use `StdioRelay.connectInProcess()`. */
  constructor(private readonly attach: (peer: RelayPeer) => AttachResult) {
    this.peer = {
      label: 'in-process client',
      attached: (link) => {
        this.link = link;
      },
      deliver: (_bytes, message, done) => {
        queueMicrotask(() => {
          const value = message();
          this.receive(Array.isArray(value) ? value : [value], done);
        });
      },
      answer: (message) => queueMicrotask(() => this.receive([message], () => undefined)),
      pause: () => {
        this.paused = true;
      },
      resume: () => {
        this.paused = false;
        this.flushHeld();
      },
      detach: (close) => this.onDetached(close),
    };
  }

  /** Attaches to the relay now; rejects (phase relay_connect) when the relay refuses. */
  async connect(): Promise<void> {
    if (this.state !== 'new') throw new Error('InProcessTransport already connected');
    const result = this.attach(this.peer);
    if (result.attached) {
      if (this.state === 'new') this.state = 'attached';
      return;
    }
    const code =
      result.code === CLOSE_ALREADY_ATTACHED
        ? 'CONFLICT'
        : result.code === CLOSE_STDOUT_CLOSED
          ? 'STDOUT_CLOSED'
          : 'PROCESS_NOT_RUNNING';
    throw new BoxError(code, 'relay_connect', `The relay refused the connection (${result.code}): ${result.reason}`, {
      details: { closeCode: result.code, reason: result.reason },
    });
  }

  /** The SDK calls start(): attaches unless connect() did, then delivers what came meanwhile. */
  async start(): Promise<void> {
    if (this.started) throw new Error('InProcessTransport already started');
    if (this.state === 'new') await this.connect();
    if (this.state === 'closed')
      throw new BoxError(
        'PROCESS_NOT_RUNNING',
        'relay_connect',
        `The relay connection is closed (${this.closeInfo?.code ?? '?'} ${this.closeInfo?.reason ?? ''})`,
      );
    this.started = true;
    const early = this.early;
    this.early = [];
    for (const { values, done } of early) this.receive(values, done);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const link = this.link;
    if (this.state !== 'attached' || link === null)
      throw new BoxError('PROCESS_NOT_RUNNING', 'relay_connect', 'The relay connection is not open');
    const problem = jsonRpcProblem(message);
    if (problem !== null) {
      link.rejected();
      throw new BoxError('INVALID_ARGUMENT', 'runtime', `Not a JSON-RPC message: ${problem}`);
    }
    if (this.paused || this.held.length > 0)
      return new Promise<void>((resolve, reject) => this.held.push({ message, resolve, reject }));
    link.write(message);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const link = this.link;
    const held = this.finish(CLOSE_CLIENT_CLOSED);
    link?.left();
    this.rejectHeld(held, CLOSE_CLIENT_CLOSED);
    this.fireClose();
  }

  private receive(values: unknown[], done: () => void): void {
    if (this.silenced) return done();
    if (!this.started) {
      this.early.push({ values, done });
      return;
    }
    for (const value of values) {
      if (this.silenced) break;
      if (isObject(value) && value.jsonrpc === '2.0') this.onmessage?.(value as JSONRPCMessage);
      else
        this.onerror?.(
          new Error(
            `the process sent a value that is not a JSON-RPC message: ${String(JSON.stringify(value)).slice(0, 200)}`,
          ),
        );
    }
    done();
  }

  private flushHeld(): void {
    while (!this.paused && this.held.length > 0 && this.state === 'attached' && this.link !== null) {
      const next = this.held.shift() as Held;
      try {
        this.link.write(next.message);
        next.resolve();
      } catch (err) {
        next.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** The relay let go: what it already handed over is delivered first (microtasks keep order), then onclose. */
  private onDetached(close: RelayPeerClose | undefined): void {
    if (this.state === 'closed' || close === undefined) return;
    const held = this.finish(close);
    const answer = close.answer;
    queueMicrotask(() => {
      if (answer !== undefined && this.started && !this.silenced) {
        // Requests never handed over get the answer the relay gave the ones in flight.
        const cancelled = new Set(held.map((h) => cancelledIdOf(h.message)).filter((id) => id !== undefined));
        for (const { message } of held) {
          const id = requestIdOf(message);
          if (id !== undefined && !cancelled.has(id))
            this.receive(
              [{ jsonrpc: '2.0', id, error: { code: RELAY_ERROR_CODE, message: answer.message, data: answer.data } }],
              () => undefined,
            );
        }
      }
      this.rejectHeld(held, close);
      this.fireClose();
    });
  }

  /** Closed from now on (a reentrant close() or detach does nothing more): returns the sends still held. */
  private finish(info: { code: number; reason: string }): Held[] {
    const held = this.held;
    this.state = 'closed';
    this.closeInfo = { code: info.code, reason: info.reason };
    this.link = null;
    this.held = [];
    return held;
  }

  private rejectHeld(held: Held[], info: { code: number; reason: string }): void {
    for (const h of held)
      h.reject(
        new BoxError(
          'RELAY_DROPPED',
          'runtime',
          `The relay connection closed (${info.code} ${info.reason}) before the message reached the process`,
          { details: { closeCode: info.code } },
        ),
      );
  }

  private fireClose(): void {
    if (this.silenced) return;
    this.silenced = true;
    const early = this.early;
    this.early = [];
    for (const { done } of early) done();
    this.onclose?.();
  }
}

function cancelledIdOf(message: unknown): string | number | undefined {
  if (!isObject(message) || message.method !== 'notifications/cancelled' || !isObject(message.params)) return undefined;
  const id = message.params.requestId;
  return typeof id === 'string' || typeof id === 'number' ? id : undefined;
}
