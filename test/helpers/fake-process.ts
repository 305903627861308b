/**
 * An in-memory `ManagedProcess`: PassThrough stdin/stdout with a scripted MCP server on them
 * (fake-mcp-stdio.ts), a stderr ring, and an exit record shaped like the Docker runtime's.
 *
 * Like the Docker runtime, stdout ends only when the process ends (an engine's attach stream has
 * no per-stream EOF): a process that closes its stdout keeps it open but silent, and
 * `stdoutState()` says 'closed'. A signal ends the process with exit code 128 + n.
 *
 * A stop is the escalation with short graces: stdin EOF (a default script exits 0 on it:
 * `stoppedBy: 'eof'`), else after `eofGraceMs` SIGTERM (`stoppedBy: 'sigterm'`, 143).
 */
import { PassThrough } from 'node:stream';
import type {
  Identity,
  ManagedProcess,
  ManagedProcessSpec,
  PreludeOutcome,
  ProcessExit,
  StopOptions,
} from '../../src/runtime/types.js';
import {
  runFakeMcpServer,
  SIGNAL_NUMBERS,
  type FakeExit,
  type FakeServerScript,
  type FakeSignal,
} from './fake-mcp-stdio.js';

const STDERR_RING_BYTES = 64 * 1024;

export interface FakeProcessOptions {
  session: string;
  pid: number;
  /** 1-based start count of this process id. */
  attempt: number;
  script: FakeServerScript;
  /** Grace after stdin EOF before the stop sends SIGTERM. */
  eofGraceMs: number;
  /** Called once when the process has ended. */
  onEnded: (proc: FakeProcess) => void;
}

export class FakeProcess implements ManagedProcess {
  readonly id: string;
  readonly session: string;
  readonly identity: Identity;
  readonly pid: number;
  readonly startedAt: string;
  readonly stdin = new PassThrough();
  readonly stdout = new PassThrough();
  readonly exited: Promise<ProcessExit>;
  /** The command line it was started with. */
  readonly cmd: string[];
  readonly env: Record<string, string>;
  readonly attempt: number;
  prelude?: PreludeOutcome;
  private readonly spec: ManagedProcessSpec;
  private readonly opts: FakeProcessOptions;
  private readonly startedMs = Date.now();
  private stderr = '';
  private stdoutOpen = true;
  private exitRecord: ProcessExit | null = null;
  private resolveExit!: (exit: ProcessExit) => void;
  private stopStep: ProcessExit['stoppedBy'] = null;
  private stopScript: () => void = () => undefined;
  private readonly messages: string[] = [];
  private readonly requestWaiters: { method: string; n: number; resolve: () => void }[] = [];

  constructor(spec: ManagedProcessSpec, opts: FakeProcessOptions) {
    this.spec = spec;
    this.opts = opts;
    this.id = spec.id;
    this.session = opts.session;
    this.identity = spec.identity;
    this.pid = opts.pid;
    this.cmd = [...spec.cmd];
    this.env = { ...spec.env };
    this.attempt = opts.attempt;
    this.startedAt = new Date(this.startedMs).toISOString();
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    const stopScript = runFakeMcpServer(
      {
        stdin: this.stdin,
        stdout: this.stdout,
        stdoutOpen: () => this.stdoutOpen && this.running,
        attempt: opts.attempt,
        onMessage: (method) => this.onMessage(method),
        writeStderr: (t) => this.writeStderr(t),
        exit: (how) => this.exit(how),
        closeStdout: () => this.closeStdout(),
      },
      opts.script,
    );
    // A script that ended the process while it started has nothing left to stop later.
    if (this.running) this.stopScript = stopScript;
    else stopScript();
  }

  get running(): boolean {
    return this.exitRecord === null;
  }

  /** The exit record once ended, else null. */
  get ended(): ProcessExit | null {
    return this.exitRecord;
  }

  stderrTail(): string {
    return this.stderr;
  }

  stdoutState(): Promise<'open' | 'closed' | 'unknown'> {
    return Promise.resolve(!this.running ? 'unknown' : this.stdoutOpen ? 'open' : 'closed');
  }

  /** Resolves once the process has received its `n`-th message (request or notification) of `method`. */
  received(method: string, n = 1): Promise<void> {
    if (this.messages.filter((m) => m === method).length >= n) return Promise.resolve();
    return new Promise((resolve) => this.requestWaiters.push({ method, n, resolve }));
  }

  private onMessage(method: string): void {
    this.messages.push(method);
    const count = this.messages.filter((m) => m === method).length;
    for (const w of [...this.requestWaiters]) {
      if (w.method === method && count >= w.n) {
        this.requestWaiters.splice(this.requestWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** Writes to stderr: the ring and the spec's onStderr, as the runtime does. */
  writeStderr(text: string): void {
    if (!this.running) return;
    this.stderr = (this.stderr + text).slice(-STDERR_RING_BYTES);
    this.spec.onStderr?.(Buffer.from(text, 'utf8'));
  }

  /** Stops writing stdout for good, and keeps running. */
  closeStdout(): void {
    this.stdoutOpen = false;
  }

  /** Ends the process now (idempotent). */
  exit(how: FakeExit = {}): void {
    if (!this.running) return;
    if (how.stderr !== undefined) this.writeStderr(how.stderr);
    const signal: FakeSignal | null = how.signal ?? null;
    const exitCode = how.code !== undefined ? how.code : signal !== null ? 128 + SIGNAL_NUMBERS[signal] : 0;
    const reason = how.reason ?? (this.stopStep !== null ? 'stopped' : 'exited');
    const endedMs = Date.now();
    this.exitRecord = {
      exitCode,
      signal,
      reason,
      oomKilled: reason === 'oom',
      stoppedBy: reason === 'stopped' ? this.stopStep : null,
      stderrTail: this.stderr,
      startedAt: this.startedAt,
      endedAt: new Date(endedMs).toISOString(),
      durationMs: endedMs - this.startedMs,
    };
    this.stopScript();
    // Whatever is still written to stdin goes nowhere (no EPIPE), as with a dead exec.
    this.stdin.resume();
    if (!this.stdout.writableEnded) this.stdout.end();
    this.opts.onEnded(this);
    this.resolveExit(this.exitRecord);
  }

  kill(signal: 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP'): Promise<void> {
    this.exit({ signal });
    return Promise.resolve();
  }

  async stop(opts: StopOptions = {}): Promise<ProcessExit> {
    if (!this.running) return this.exited;
    this.stopStep ??= 'eof';
    if (!this.stdin.writableEnded) this.stdin.end();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<boolean>(
      (r) => (timer = setTimeout(() => r(false), opts.eofGraceMs ?? this.opts.eofGraceMs)),
    );
    const ended = await Promise.race([this.exited.then(() => true), grace]);
    clearTimeout(timer);
    if (!ended) {
      this.stopStep = 'sigterm';
      this.exit({ signal: 'SIGTERM' });
    }
    return this.exited;
  }
}
