/**
 * Relays one managed process's stdio to one peer at a time: a WebSocket client, or a client in
 * this process (the supervisor's own). The peer contract is in relay-peer.ts.
 *
 * API:
 *   attach(ws, { takeover?, via? }): AttachResult      a WebSocket client (wrapped in a WsPeer)
 *   disconnectVia(via, code, reason): number           closes the clients let in through `via` (a revoked capability)
 * With `{ shared: true }` a peer shares the process with the other shared peers through a ClientMux (client-mux.ts),
 * which the relay holds as its one peer; everything below holds for the mux as for any peer.
 *   connectInProcess({ takeover? }): InProcessTransport an SDK Transport; attaches on connect()/start()
 *   attachPeer(peer, { takeover? }): AttachResult      any RelayPeer
 *   close(code?, reason?)                               ends relaying for good
 *
 * stdout → peer: framed by line, one JSON-RPC message per line, parsed once here (the parsed value
 * goes to a peer that takes values, the bytes untouched to a WebSocket); lines that are not JSON
 * are not forwarded but counted and reported (`onNonJsonLine`); a line over the limit closes the
 * peer with 1009 and a reason (never a silent drop). stdout is always read by the relay, so a
 * process never blocks for lack of a peer: while nobody is attached, whole lines are kept (bounded;
 * when the bound is reached stdout is paused rather than anything dropped) and delivered first on
 * the next attach. Held lines are kept as bytes only (parsed values would multiply the buffer's
 * memory) and parsed again for a peer that takes values.
 *
 * peer → stdin: the relay is the only writer of stdin. Each message a peer hands over is
 * serialised once to one line (`JSON.stringify`: no newline inside, no framing injection) and
 * written; when stdin is full the peer is paused until it drains. A WebSocket frame that is not one
 * JSON-RPC message gets a JSON-RPC error back and never reaches stdin.
 *
 * Backpressure both ways; heartbeat pings (WebSocket); one peer at a time (a second is refused with
 * 4409 unless it asks to take over; the one taken over gets 4001 and its requests in flight an error).
 *
 * A process that closes its stdout but keeps running: a container engine's attach stream has no
 * per-stream EOF (stdout "ends" only when the process does), so the relay watches for it. While a
 * peer's request is waiting and stdout has been quiet for `stdoutProbeAfterMs`, it asks the
 * process whether it still holds its stdout (`stdoutState`; then again with a doubling interval,
 * capped). When it does not, every request in flight gets a JSON-RPC error (data: phase `runtime`,
 * code `STDOUT_CLOSED`), the peer is closed with 4002, and `onStdoutClosed` tells the owner.
 */
import {
  DEFAULT_RELAY_DETACHED_BUFFER_BYTES,
  DEFAULT_RELAY_HEARTBEAT_MS,
  DEFAULT_RELAY_MAX_LINE_BYTES,
} from '../defaults.js';
import type { Readable, Writable } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { WebSocket } from 'ws';
import { LineFramer } from './line-framer.js';
import {
  CLOSE_ALREADY_ATTACHED,
  CLOSE_GOING_AWAY,
  CLOSE_PROCESS_EXITED,
  CLOSE_STDOUT_CLOSED,
  CLOSE_TAKEN_OVER,
  CLOSE_TOO_BIG,
} from './close-codes.js';
import { ClientMux } from './client-mux.js';
import { InProcessTransport } from './in-process-peer.js';
import { isObject, parseJsonMessage, RELAY_ERROR_CODE } from './json-rpc.js';
import type { AttachResult, RelayAnswer, RelayPeer, RelayPeerClose, RelayPeerLink } from './relay-peer.js';
import { WsPeer } from './ws-peer.js';

export type { AttachResult } from './relay-peer.js';
export { RELAY_ERROR_CODE } from './json-rpc.js';

const SEND_HIGH_WATER = 8 * 1024 * 1024;
const SEND_LOW_WATER = 1024 * 1024;
const DEFAULT_STDOUT_PROBE_AFTER_MS = 2000;
const MAX_STDOUT_PROBE_INTERVAL_MS = 30_000;
const EXIT_RECORD_WAIT_MS = 3000;
export const NON_JSON_PREVIEW_BYTES = 4096;
export const STDOUT_CLOSED_REASON = 'the process closed its stdout but is still running';

export interface RelayOptions {
  maxLineBytes?: number;
  detachedBufferBytes?: number;
  heartbeatMs?: number;
  /** A stdout line that is not JSON: its first NON_JSON_PREVIEW_BYTES as text, and its whole length. */
  onNonJsonLine?: (preview: string, bytes: number) => void;
  /** Lifecycle notes for the process log (attach, detach, refusal, over-limit). */
  onEvent?: (message: string) => void;
  /** Quiet stdout with a request waiting, after which the process is asked whether stdout is still open. */
  stdoutProbeAfterMs?: number;
  /** The process closed its stdout but is still running (the relay has closed). */
  onStdoutClosed?: () => void;
}

export interface RelayStats {
  messagesOut: number;
  bytesOut: number;
  messagesIn: number;
  bytesIn: number;
  nonJsonLines: number;
  overLimitLines: number;
  rejectedFrames: number;
}

/** What the relay needs of a process's end to answer for it (a ManagedProcess's exit record). */
export interface RelayProcessExit {
  reason: 'exited' | 'stopped' | 'oom' | 'container_died' | 'engine_lost';
  exitCode: number | null;
  signal: string | null;
}

export interface RelayProcess {
  readonly stdout: Readable;
  readonly stdin: Writable;
  /** Settles with the exit record: the relay's answers for requests in flight carry its phase and code. */
  readonly exited?: Promise<RelayProcessExit>;
  /** Whether the process (or anything of its session) still holds its stdout; 'unknown' when it cannot tell. */
  stdoutState?: () => Promise<'open' | 'closed' | 'unknown'>;
}

export interface AttachOptions {
  /** Replace the peer attached now (it is closed with 4001, its requests in flight answered). */
  takeover?: boolean;
  /**
   * Share the process with the other shared clients (client-mux.ts) instead of holding it alone. With `takeover`,
   * a client that holds it alone is replaced by the shared ones.
   */
  shared?: boolean;
}

/** Every counter at zero. */
export const emptyRelayStats = (): RelayStats => ({
  messagesOut: 0,
  bytesOut: 0,
  messagesIn: 0,
  bytesIn: 0,
  nonJsonLines: 0,
  overLimitLines: 0,
  rejectedFrames: 0,
});

export class StdioRelay {
  readonly stats: RelayStats = emptyRelayStats();
  private readonly framer: LineFramer;
  private readonly detachedLimit: number;
  private readonly heartbeatMs: number;
  private readonly opts: RelayOptions;
  private peer: RelayPeer | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inFlightBytes = 0;
  private stdoutPausedBy = new Set<'send' | 'detached'>();
  private waitingForDrain = false;
  /** The peer paused because stdin was full; resumed when it drains. */
  private pausedPeer: RelayPeer | null = null;
  private closed = false;
  private closedWith: { code: number; reason: string } | null = null;
  /** Requests of the attached peer not answered yet, by JSON-encoded id. */
  private readonly inFlight = new Map<string, string | number>();
  private inFlightSince = 0;
  private lastStdoutAt = Date.now();
  private lastProbeAt = 0;
  private readonly probeAfterMs: number;
  private probeIntervalMs: number;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private exit: RelayProcessExit | null = null;
  /** The WebSocket client attached through a capability, and which one. */
  private readonly viaPeers = new Map<RelayPeer, string>();

  constructor(
    private readonly proc: RelayProcess,
    opts: RelayOptions = {},
  ) {
    this.opts = opts;
    this.framer = new LineFramer(opts.maxLineBytes ?? DEFAULT_RELAY_MAX_LINE_BYTES);
    this.detachedLimit = opts.detachedBufferBytes ?? DEFAULT_RELAY_DETACHED_BUFFER_BYTES;
    this.heartbeatMs = opts.heartbeatMs ?? DEFAULT_RELAY_HEARTBEAT_MS;
    this.probeAfterMs = opts.stdoutProbeAfterMs ?? DEFAULT_STDOUT_PROBE_AFTER_MS;
    this.probeIntervalMs = this.probeAfterMs;
    proc.stdout.on('data', (chunk: Buffer) => this.onStdout(chunk));
    proc.stdout.once('end', () => void this.onOutputEnded());
    void proc.exited?.then((exit) => (this.exit = exit));
  }

  /** stdout ends a moment before the exit record is known (a dying container): wait for it, briefly. */
  private async onOutputEnded(): Promise<void> {
    if (this.exit === null && this.proc.exited !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.proc.exited, new Promise((r) => (timer = setTimeout(r, EXIT_RECORD_WAIT_MS)))]);
      clearTimeout(timer);
    }
    this.close(CLOSE_PROCESS_EXITED, 'the process ended its output');
  }

  get attached(): boolean {
    return this.peer !== null;
  }

  /** How the process log names the attached peer ("client", "in-process client"), or null. */
  get attachedLabel(): string | null {
    return this.peer?.label ?? null;
  }

  /** Lines held for the next peer. */
  get bufferedLines(): number {
    return this.pending.length;
  }

  /**
   * Attaches a WebSocket client (as a WsPeer); a refused socket is closed with the result's code. `via` names how
   * it was let in (a capability), so that revoking that capability can disconnect it.
   */
  attach(ws: WebSocket, opts: AttachOptions & { via?: string } = {}): AttachResult {
    const peer = new WsPeer(ws, { heartbeatMs: this.heartbeatMs });
    const result = this.attachPeer(peer, opts);
    if (result.attached && opts.via !== undefined) this.viaPeers.set(peer, opts.via);
    return result;
  }

  /** Disconnects every client let in through `via` (still attached), answering what they have in flight. */
  disconnectVia(via: string, code: number, reason: string): number {
    const answer: RelayAnswer = {
      message: `mcp-box: ${reason}; no answer will reach this client`,
      data: { phase: 'runtime', code: 'RELAY_DROPPED' },
    };
    let closed = 0;
    for (const [peer, v] of [...this.viaPeers]) {
      if (v !== via) continue;
      this.viaPeers.delete(peer);
      if (this.peer === peer) {
        this.answerInFlight(answer);
        this.detach({ code, reason, answer });
        closed++;
      } else if (this.peer instanceof ClientMux && this.peer.expel(peer, { code, reason, answer })) {
        closed++;
      }
    }
    return closed;
  }

  /**
   * A Transport for an SDK Client in this process: `await client.connect(relay.connectInProcess())`.
   * It attaches on its connect() or start(), with `opts` (see InProcessTransport).
   */
  connectInProcess(opts: AttachOptions = {}): InProcessTransport {
    return new InProcessTransport((peer) => this.attachPeer(peer, opts));
  }

  /** Attaches any peer; a refused peer gets `detach({ code, reason })` and the result says why. */
  attachPeer(peer: RelayPeer, opts: AttachOptions = {}): AttachResult {
    if (opts.shared === true && !this.closed) return this.joinShared(peer, opts);
    if (this.closed) {
      const refusal =
        this.closedWith?.code === CLOSE_STDOUT_CLOSED
          ? this.closedWith
          : { code: CLOSE_PROCESS_EXITED, reason: 'the process is not running' };
      peer.detach(refusal);
      return { attached: false, ...refusal };
    }
    if (this.peer !== null) {
      if (opts.takeover !== true) {
        const reason = 'the process already has a client; reconnect with takeover to replace it';
        this.opts.onEvent?.(`refused a second ${peer.label} (no takeover)`);
        peer.detach({ code: CLOSE_ALREADY_ATTACHED, reason });
        return { attached: false, code: CLOSE_ALREADY_ATTACHED, reason };
      }
      this.opts.onEvent?.(`a new ${peer.label} took over the relay`);
      const answer: RelayAnswer = {
        message: 'mcp-box: another client took over this process; no answer will reach this client',
        data: { phase: 'runtime', code: 'RELAY_DROPPED' },
      };
      this.answerInFlight(answer);
      this.detach({ code: CLOSE_TAKEN_OVER, reason: 'another client took over this process', answer });
      // A close handler of the peer taken over may have closed the relay, or attached another peer.
      if (this.closed || this.peer !== null) return this.attachPeer(peer, opts);
    }
    this.peer = peer;
    peer.attached(this.linkFor(peer));
    this.opts.onEvent?.(
      `${peer.label} attached${this.pending.length > 0 ? `; delivering ${this.pending.length} buffered line(s)` : ''}`,
    );
    const backlog = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.stdoutPausedBy.delete('detached');
    for (const line of backlog) this.send(line, () => parseJsonMessage(line));
    this.updateFlow();
    return { attached: true };
  }

  /** Joins the shared clients: the mux attached now, or a new one (in place of a client alone, with takeover). */
  private joinShared(peer: RelayPeer, opts: AttachOptions): AttachResult {
    if (this.peer instanceof ClientMux) return this.peer.join(peer);
    if (this.peer !== null && opts.takeover !== true) return this.attachPeer(peer, { takeover: false });
    const mux = new ClientMux();
    const result = this.attachPeer(mux, { takeover: opts.takeover === true });
    if (!result.attached) {
      peer.detach({ code: result.code, reason: result.reason });
      return result;
    }
    return mux.join(peer);
  }

  /** Ends this process's relaying for good (the process exited or mcp-box is closing). */
  close(code = CLOSE_GOING_AWAY, reason = 'mcp-box is shutting down'): void {
    const end = this.endOfProcess(code);
    this.end(code, reason, {
      message: `mcp-box: ${end.what} before answering`,
      data: { phase: end.phase, code: end.code },
    });
  }

  /** Closes for good: exactly one answer per request, since nothing the peer still waits for can come any more. */
  private end(code: number, reason: string, answer: RelayAnswer): number {
    if (this.closed) return 0;
    this.closed = true;
    this.closedWith = { code, reason };
    const answered = this.answerInFlight(answer);
    this.detach({ code, reason, answer });
    return answered;
  }

  /** What the relay says in the process's place when it stops relaying. */
  private endOfProcess(code: number): { what: string; phase: string; code: string } {
    const exit = this.exit;
    if (exit === null)
      return code === CLOSE_GOING_AWAY
        ? { what: 'mcp-box is shutting down', phase: 'runtime', code: 'ABORTED' }
        : { what: 'the process ended', phase: 'runtime', code: 'PROCESS_EXITED' };
    switch (exit.reason) {
      case 'oom':
        return { what: 'the process was killed by the OOM killer', phase: 'runtime', code: 'OOM_KILLED' };
      case 'container_died':
        return { what: 'the session container died', phase: 'runtime', code: 'CONTAINER_DIED' };
      case 'engine_lost':
        return { what: 'the Docker engine stopped answering', phase: 'box_unavailable', code: 'ENGINE_UNREACHABLE' };
      default:
        return {
          what: `the process ended (${exit.signal ?? `exit ${exit.exitCode ?? '?'}`})`,
          phase: 'runtime',
          code: 'PROCESS_EXITED',
        };
    }
  }

  /** Answers every request of the attached peer still in flight with a JSON-RPC error carrying `data`. */
  private answerInFlight(answer: RelayAnswer): number {
    const ids = [...this.inFlight.values()];
    this.inFlight.clear();
    const peer = this.peer;
    if (peer !== null) {
      for (const id of ids)
        peer.answer({
          jsonrpc: '2.0',
          id,
          error: { code: RELAY_ERROR_CODE, message: answer.message, data: answer.data },
        });
    }
    return ids.length;
  }

  private detach(close?: RelayPeerClose): void {
    const peer = this.peer;
    if (peer === null) return;
    this.peer = null;
    this.viaPeers.clear();
    this.inFlightBytes = 0;
    // Requests of a peer that is gone wait for nobody.
    this.inFlight.clear();
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.stdoutPausedBy.delete('send');
    if (this.pausedPeer === peer) this.pausedPeer = null;
    peer.detach(close);
    this.opts.onEvent?.(`${peer.label} detached`);
    this.updateFlow();
  }

  /** The peer's way in; everything it does after it was detached is ignored. */
  private linkFor(peer: RelayPeer): RelayPeerLink {
    return {
      write: (message) => {
        if (this.peer === peer) this.toStdin(peer, message);
      },
      rejected: () => void this.stats.rejectedFrames++,
      left: () => {
        if (this.peer === peer) this.detach();
      },
      event: (message) => this.opts.onEvent?.(message),
    };
  }

  private onStdout(chunk: Buffer): void {
    this.lastStdoutAt = Date.now();
    this.probeIntervalMs = this.probeAfterMs;
    this.framer.push(
      chunk,
      (line) => this.onLine(line),
      (bytes) => {
        this.stats.overLimitLines++;
        const reason = `a stdout line exceeded ${this.framer.maxLineBytes} bytes (${bytes}+) and was refused`;
        this.opts.onEvent?.(reason);
        if (this.peer !== null) this.detach({ code: CLOSE_TOO_BIG, reason: reason.slice(0, 120) });
      },
    );
  }

  private onLine(line: Buffer): void {
    const message = parseJsonMessage(line);
    if (message === undefined) {
      this.stats.nonJsonLines++;
      // Only a preview becomes text: a tenant's 16 MiB garbage line must not become a 16 MiB string.
      this.opts.onNonJsonLine?.(line.toString('utf8', 0, Math.min(line.length, NON_JSON_PREVIEW_BYTES)), line.length);
      return;
    }
    for (const m of Array.isArray(message) ? message : [message]) {
      if (isObject(m) && m.method === undefined && (typeof m.id === 'string' || typeof m.id === 'number'))
        this.inFlight.delete(JSON.stringify(m.id));
    }
    if (this.peer === null) {
      this.pending.push(line);
      this.pendingBytes += line.length;
      if (this.pendingBytes >= this.detachedLimit) this.stdoutPausedBy.add('detached');
      this.updateFlow();
      return;
    }
    this.send(line, () => message);
  }

  private send(line: Buffer, message: () => unknown): void {
    const peer = this.peer;
    if (peer === null) {
      this.pending.push(line);
      this.pendingBytes += line.length;
      return;
    }
    this.stats.messagesOut++;
    this.stats.bytesOut += line.length;
    this.inFlightBytes += line.length;
    if (this.inFlightBytes > SEND_HIGH_WATER) {
      this.stdoutPausedBy.add('send');
      this.updateFlow();
    }
    let taken = false;
    peer.deliver(
      () => line,
      message,
      () => {
        if (taken || this.peer !== peer) return;
        taken = true;
        this.inFlightBytes -= line.length;
        if (this.inFlightBytes < SEND_LOW_WATER && this.stdoutPausedBy.delete('send')) this.updateFlow();
      },
    );
  }

  /** One message of the attached peer: serialised once to one line, tracked, written with drain. */
  private toStdin(peer: RelayPeer, message: JSONRPCMessage | JSONRPCMessage[]): void {
    const line = `${JSON.stringify(message)}\n`;
    this.track(message);
    this.stats.messagesIn++;
    this.stats.bytesIn += line.length;
    if (this.proc.stdin.write(line)) return;
    // Messages the peer already sent still arrive while it is paused; one drain listener resumes it.
    if (this.pausedPeer !== peer) {
      this.pausedPeer = peer;
      peer.pause();
    }
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.proc.stdin.once('drain', () => {
      this.waitingForDrain = false;
      const paused = this.pausedPeer;
      this.pausedPeer = null;
      paused?.resume();
    });
  }

  /** Notes the peer's requests (and cancellations), then makes sure a waiting request is watched. */
  private track(message: unknown): void {
    for (const m of Array.isArray(message) ? message : [message]) {
      if (!isObject(m) || typeof m.method !== 'string') continue;
      if (typeof m.id === 'string' || typeof m.id === 'number') {
        if (this.inFlight.size === 0) {
          this.inFlightSince = Date.now();
          this.probeIntervalMs = this.probeAfterMs;
        }
        this.inFlight.set(JSON.stringify(m.id), m.id);
      } else if (m.method === 'notifications/cancelled' && isObject(m.params)) {
        // A cancelled request may never be answered (MCP): nobody waits for it any more.
        const id = m.params.requestId;
        if (typeof id === 'string' || typeof id === 'number') this.inFlight.delete(JSON.stringify(id));
      }
    }
    this.armProbe();
  }

  private armProbe(): void {
    if (
      this.probeTimer !== null ||
      this.probing ||
      this.closed ||
      this.inFlight.size === 0 ||
      this.proc.stdoutState === undefined
    )
      return;
    const quietSince = Math.max(this.lastStdoutAt, this.inFlightSince, this.lastProbeAt);
    this.probeTimer = setTimeout(
      () => {
        this.probeTimer = null;
        void this.probeStdout();
      },
      Math.max(0, quietSince + this.probeIntervalMs - Date.now()),
    );
    this.probeTimer.unref();
  }

  private async probeStdout(): Promise<void> {
    if (this.closed || this.inFlight.size === 0 || this.proc.stdoutState === undefined) return;
    if (Date.now() - Math.max(this.lastStdoutAt, this.inFlightSince, this.lastProbeAt) < this.probeIntervalMs)
      return this.armProbe();
    this.probing = true;
    let state: 'open' | 'closed' | 'unknown';
    try {
      state = (await this.proc.stdoutState?.()) ?? 'unknown';
    } catch {
      state = 'unknown';
    } finally {
      this.probing = false;
    }
    this.lastProbeAt = Date.now();
    if (this.closed) return;
    if (state === 'closed') return this.onStdoutClosed();
    this.probeIntervalMs = Math.min(this.probeIntervalMs * 2, MAX_STDOUT_PROBE_INTERVAL_MS);
    this.armProbe();
  }

  /** Answers every request in flight in the process's place, then closes for good. */
  private onStdoutClosed(): void {
    const answered = this.end(CLOSE_STDOUT_CLOSED, STDOUT_CLOSED_REASON, {
      message: `mcp-box: ${STDOUT_CLOSED_REASON}; no answer can come`,
      data: { phase: 'runtime', code: 'STDOUT_CLOSED' },
    });
    this.opts.onEvent?.(`${STDOUT_CLOSED_REASON}; ${answered} request(s) in flight answered with an error`);
    this.opts.onStdoutClosed?.();
  }

  private updateFlow(): void {
    const shouldPause = this.stdoutPausedBy.size > 0;
    if (shouldPause && !this.proc.stdout.isPaused()) this.proc.stdout.pause();
    else if (!shouldPause && this.proc.stdout.isPaused()) this.proc.stdout.resume();
  }
}
