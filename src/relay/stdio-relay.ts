/**
 * Relays one managed process's stdio to one WebSocket client at a time.
 *
 * stdout → client: framed by line, one JSON-RPC message per text frame, bytes untouched; lines
 * that are not JSON are not forwarded but counted and reported (`onNonJsonLine`); a line over the
 * limit closes the client with 1009 and a reason (never a silent drop). stdout is always read by
 * the relay, so a process never blocks for lack of a client: while nobody is attached, whole lines
 * are kept (bounded; when the bound is reached stdout is paused rather than anything dropped) and
 * delivered first on the next attach.
 *
 * client → stdin: each text frame must be one JSON-RPC message; it is parsed and re-serialised to
 * one line (no framing injection) and written with drain; a bad frame gets a JSON-RPC error back
 * and never reaches stdin.
 *
 * Backpressure both ways; heartbeat pings; one client at a time (a second is refused with 4409
 * unless it asks to take over).
 *
 * A process that closes its stdout but keeps running: a container engine's attach stream has no
 * per-stream EOF (stdout "ends" only when the process does), so the relay watches for it. While a
 * client request is waiting and stdout has been quiet for `stdoutProbeAfterMs`, it asks the
 * process whether it still holds its stdout (`stdoutState`; then again with a doubling interval,
 * capped). When it does not, every request in flight gets a JSON-RPC error (data: phase `runtime`,
 * code `STDOUT_CLOSED`), the client is closed with 4002, and `onStdoutClosed` tells the owner.
 */
import type { Readable, Writable } from 'node:stream';
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

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
const DEFAULT_DETACHED_BUFFER_BYTES = 32 * 1024 * 1024;
const SEND_HIGH_WATER = 8 * 1024 * 1024;
const SEND_LOW_WATER = 1024 * 1024;
const DEFAULT_STDOUT_PROBE_AFTER_MS = 2000;
const MAX_STDOUT_PROBE_INTERVAL_MS = 30_000;
const EXIT_RECORD_WAIT_MS = 3000;
export const NON_JSON_PREVIEW_BYTES = 4096;
export const STDOUT_CLOSED_REASON = 'the process closed its stdout but is still running';
/** JSON-RPC error code of the answers the relay gives in the process's place (internal error). */
export const RELAY_ERROR_CODE = -32603;

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

export type AttachResult = { attached: true } | { attached: false; code: number; reason: string };

export class StdioRelay {
  readonly stats: RelayStats = { messagesOut: 0, bytesOut: 0, messagesIn: 0, bytesIn: 0, nonJsonLines: 0, overLimitLines: 0, rejectedFrames: 0 };
  private readonly framer: LineFramer;
  private readonly detachedLimit: number;
  private readonly heartbeatMs: number;
  private readonly opts: RelayOptions;
  private client: WebSocket | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inFlightBytes = 0;
  private stdoutPausedBy = new Set<'send' | 'detached'>();
  private heartbeat: NodeJS.Timeout | null = null;
  private waitingForDrain = false;
  private closed = false;
  private closedWith: { code: number; reason: string } | null = null;
  /** Requests of the attached client not answered yet, by JSON-encoded id. */
  private readonly inFlight = new Map<string, string | number>();
  private inFlightSince = 0;
  private lastStdoutAt = Date.now();
  private lastProbeAt = 0;
  private readonly probeAfterMs: number;
  private probeIntervalMs: number;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing = false;
  private exit: RelayProcessExit | null = null;

  constructor(
    private readonly proc: RelayProcess,
    opts: RelayOptions = {},
  ) {
    this.opts = opts;
    this.framer = new LineFramer(opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    this.detachedLimit = opts.detachedBufferBytes ?? DEFAULT_DETACHED_BUFFER_BYTES;
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
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
    return this.client !== null;
  }

  /** Lines held for the next client. */
  get bufferedLines(): number {
    return this.pending.length;
  }

  attach(ws: WebSocket, opts: { takeover?: boolean } = {}): AttachResult {
    if (this.closed) {
      const refusal = this.closedWith?.code === CLOSE_STDOUT_CLOSED ? this.closedWith : { code: CLOSE_PROCESS_EXITED, reason: 'the process is not running' };
      ws.close(refusal.code, refusal.reason);
      return { attached: false, ...refusal };
    }
    if (this.client !== null) {
      if (opts.takeover !== true) {
        const reason = 'the process already has a client; reconnect with takeover to replace it';
        this.opts.onEvent?.('refused a second client (no takeover)');
        ws.close(CLOSE_ALREADY_ATTACHED, reason);
        return { attached: false, code: CLOSE_ALREADY_ATTACHED, reason };
      }
      this.opts.onEvent?.('a new client took over the relay');
      this.answerInFlight('mcp-box: another client took over this process; no answer will reach this client', { phase: 'runtime', code: 'RELAY_DROPPED' });
      this.detach(CLOSE_TAKEN_OVER, 'another client took over this process');
    }
    this.client = ws;
    let alive = true;
    ws.on('pong', () => (alive = true));
    this.heartbeat = setInterval(() => {
      if (!alive) {
        this.opts.onEvent?.('client missed its heartbeat; closing');
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, this.heartbeatMs);
    this.heartbeat.unref();
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onClientFrame(ws, data, isBinary));
    ws.once('close', () => {
      if (this.client === ws) this.detach();
    });
    ws.on('error', () => undefined);
    this.opts.onEvent?.(`client attached${this.pending.length > 0 ? `; delivering ${this.pending.length} buffered line(s)` : ''}`);
    const backlog = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.stdoutPausedBy.delete('detached');
    for (const line of backlog) this.send(line);
    this.updateFlow();
    return { attached: true };
  }

  /** Ends this process's relaying for good (the process exited or mcp-box is closing). */
  close(code = CLOSE_GOING_AWAY, reason = 'mcp-box is shutting down'): void {
    if (this.closed) return;
    this.closed = true;
    this.closedWith = { code, reason };
    // Exactly one answer per request: nothing the client still waits for can come any more.
    const end = this.endOfProcess(code);
    this.answerInFlight(`mcp-box: ${end.what} before answering`, { phase: end.phase, code: end.code });
    this.detach(code, reason);
  }

  /** What the relay says in the process's place when it stops relaying. */
  private endOfProcess(code: number): { what: string; phase: string; code: string } {
    const exit = this.exit;
    if (exit === null) return code === CLOSE_GOING_AWAY ? { what: 'mcp-box is shutting down', phase: 'runtime', code: 'ABORTED' } : { what: 'the process ended', phase: 'runtime', code: 'PROCESS_EXITED' };
    switch (exit.reason) {
      case 'oom':
        return { what: 'the process was killed by the OOM killer', phase: 'runtime', code: 'OOM_KILLED' };
      case 'container_died':
        return { what: 'the session container died', phase: 'runtime', code: 'CONTAINER_DIED' };
      case 'engine_lost':
        return { what: 'the Docker engine stopped answering', phase: 'box_unavailable', code: 'ENGINE_UNREACHABLE' };
      default:
        return { what: `the process ended (${exit.signal ?? `exit ${exit.exitCode ?? '?'}`})`, phase: 'runtime', code: 'PROCESS_EXITED' };
    }
  }

  /** Answers every request of the attached client still in flight with a JSON-RPC error carrying `data`. */
  private answerInFlight(message: string, data: { phase: string; code: string }): number {
    const ids = [...this.inFlight.values()];
    this.inFlight.clear();
    const ws = this.client;
    if (ws !== null && ws.readyState === ws.OPEN) {
      for (const id of ids) ws.send(JSON.stringify({ jsonrpc: '2.0', id, error: { code: RELAY_ERROR_CODE, message, data } }));
    }
    return ids.length;
  }

  private detach(code?: number, reason?: string): void {
    const ws = this.client;
    if (ws === null) return;
    this.client = null;
    this.inFlightBytes = 0;
    // Requests of a client that is gone wait for nobody.
    this.inFlight.clear();
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.stdoutPausedBy.delete('send');
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    ws.removeAllListeners('message');
    if (code !== undefined && ws.readyState === ws.OPEN) ws.close(code, reason);
    this.opts.onEvent?.('client detached');
    this.updateFlow();
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
        if (this.client !== null) this.detach(CLOSE_TOO_BIG, reason.slice(0, 120));
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
      if (isObject(m) && m.method === undefined && (typeof m.id === 'string' || typeof m.id === 'number')) this.inFlight.delete(JSON.stringify(m.id));
    }
    if (this.client === null) {
      this.pending.push(line);
      this.pendingBytes += line.length;
      if (this.pendingBytes >= this.detachedLimit) this.stdoutPausedBy.add('detached');
      this.updateFlow();
      return;
    }
    this.send(line);
  }

  private send(line: Buffer): void {
    const ws = this.client;
    if (ws === null) {
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
    // A text frame carrying the line's bytes as they are (no decode/encode round trip).
    ws.send(line, { binary: false }, () => {
      if (this.client !== ws) return;
      this.inFlightBytes -= line.length;
      if (this.inFlightBytes < SEND_LOW_WATER && this.stdoutPausedBy.delete('send')) this.updateFlow();
    });
  }

  private onClientFrame(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    const reply = (id: unknown, code: number, message: string): void => {
      this.stats.rejectedFrames++;
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: id ?? null, error: { code, message } }));
    };
    if (isBinary) return reply(null, -32600, 'binary frames are not accepted: send one JSON-RPC message per text frame');
    let message: unknown;
    try {
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return reply(null, -32700, 'parse error: a frame must hold exactly one JSON-RPC message');
    }
    const problem = jsonRpcProblem(message);
    if (problem !== null) return reply(idOf(message), -32600, `invalid request: ${problem}`);
    this.track(message);
    const line = `${JSON.stringify(message)}\n`;
    this.stats.messagesIn++;
    this.stats.bytesIn += line.length;
    if (!this.proc.stdin.write(line) && !this.waitingForDrain) {
      // Frames already received still arrive while paused; one drain listener resumes them all.
      this.waitingForDrain = true;
      ws.pause();
      this.proc.stdin.once('drain', () => {
        this.waitingForDrain = false;
        ws.resume();
      });
    }
  }

  /** Notes the client's requests (and cancellations), then makes sure a waiting request is watched. */
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
    if (this.probeTimer !== null || this.probing || this.closed || this.inFlight.size === 0 || this.proc.stdoutState === undefined) return;
    const quietSince = Math.max(this.lastStdoutAt, this.inFlightSince, this.lastProbeAt);
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      void this.probeStdout();
    }, Math.max(0, quietSince + this.probeIntervalMs - Date.now()));
    this.probeTimer.unref();
  }

  private async probeStdout(): Promise<void> {
    if (this.closed || this.inFlight.size === 0 || this.proc.stdoutState === undefined) return;
    if (Date.now() - Math.max(this.lastStdoutAt, this.inFlightSince, this.lastProbeAt) < this.probeIntervalMs) return this.armProbe();
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
    const answered = this.answerInFlight(`mcp-box: ${STDOUT_CLOSED_REASON}; no answer can come`, { phase: 'runtime', code: 'STDOUT_CLOSED' });
    this.opts.onEvent?.(`${STDOUT_CLOSED_REASON}; ${answered} request(s) in flight answered with an error`);
    this.close(CLOSE_STDOUT_CLOSED, STDOUT_CLOSED_REASON);
    this.opts.onStdoutClosed?.();
  }

  private updateFlow(): void {
    const shouldPause = this.stdoutPausedBy.size > 0;
    if (shouldPause && !this.proc.stdout.isPaused()) this.proc.stdout.pause();
    else if (!shouldPause && this.proc.stdout.isPaused()) this.proc.stdout.resume();
  }
}

/** The parsed line when it is a JSON object or array (a message or a batch), else undefined. */
function parseJsonMessage(line: Buffer): unknown {
  let i = 0;
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  const first = line[i];
  if (first !== 0x7b && first !== 0x5b) return undefined; // '{' or '['
  try {
    return JSON.parse(line.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonRpcProblem(message: unknown): string | null {
  const one = (m: unknown): string | null => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'a message must be a JSON object';
    if ((m as { jsonrpc?: unknown }).jsonrpc !== '2.0') return 'jsonrpc must be "2.0"';
    const { method, id, result, error } = m as Record<string, unknown>;
    if (method === undefined && result === undefined && error === undefined) return 'neither a request, a notification nor a response';
    if (method !== undefined && typeof method !== 'string') return 'method must be a string';
    if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') return 'id must be a string or a number';
    return null;
  };
  if (Array.isArray(message)) {
    if (message.length === 0) return 'an empty batch';
    for (const m of message) {
      const p = one(m);
      if (p !== null) return p;
    }
    return null;
  }
  return one(message);
}

function idOf(message: unknown): unknown {
  return typeof message === 'object' && message !== null && !Array.isArray(message) ? (message as { id?: unknown }).id : null;
}
