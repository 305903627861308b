/**
 * A long-lived process in a session: hijacked stdin, demultiplexed stdout (with backpressure),
 * stderr always drained into a ring, in-container PID, and an exit record with the reason.
 */
import { PassThrough, Writable } from 'node:stream';
import { BoxError } from '../../errors/box-error.js';
import { ByteRing } from '../../util/byte-ring.js';
import { delay } from '../../util/abort.js';
import { once } from '../../util/once.js';
import { demultiplex } from './demux.js';
import { runOneShotExec } from './one-shot-exec.js';
import { startExec, type StartedExec } from './exec-stream.js';
import { PidLineReader, PreludeReader, wrapCommand } from './exec-wrapper.js';
import type { ExecContext } from './exec-context.js';
import {
  PRELUDE_STOP_EXIT,
  type ExitReason,
  type Identity,
  type ManagedProcess,
  type ManagedProcessSpec,
  type PreludeOutcome,
  type ProcessExit,
  type StopOptions,
} from '../types.js';

const DEFAULT_STDERR_RING_BYTES = 64 * 1024;
const PID_WAIT_MS = 15_000;
const DEFAULT_EOF_GRACE_MS = 2000;
const DEFAULT_TERM_GRACE_MS = 3000;
const KILL_WAIT_MS = 10_000;
const STDOUT_HIGH_WATER = 1024 * 1024;
const CONTAINER_DEATH_SETTLE_MS = 1500;
const STDOUT_PROBE_TIMEOUT_MS = 10_000;
/**
 * Prints open / closed / unknown: whether any process of the exec's session (`$1` is its leader:
 * an exec is its own session) still has an fd 1. `unknown` when /proc cannot be read or the leader
 * is gone or a zombie (its exit record is on the way and says more).
 */
const STDOUT_PROBE_SCRIPT =
  'ls "/proc/$1/fd" >/dev/null 2>&1 || { echo unknown; exit 0; }; ' +
  'for p in $(ps -o pid= -s "$1"); do [ -e "/proc/$p/fd/1" ] && { echo open; exit 0; }; done; ' +
  'case "$(ps -o stat= -p "$1")" in Z*|"") echo unknown;; *) echo closed;; esac';

const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  6: 'SIGABRT',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  13: 'SIGPIPE',
  15: 'SIGTERM',
  24: 'SIGXCPU',
  25: 'SIGXFSZ',
};

/** Session hooks a process needs to classify its exit. */
export interface ProcessHost {
  /** True once the session container is known to be gone; waits up to `settleMs` for it to be. */
  isContainerDead(settleMs?: number): Promise<boolean>;
  /** The container's OOM-kill counter now (cgroup), or null when unreadable. */
  readOomKills(): Promise<number | null>;
  /** The last counter value the session knows without asking (no exec). */
  lastKnownOomKills(): number | null;
  /** Whether the engine reported an `oom` event for the container at or after `sinceMs`. */
  oomEventSince(sinceMs: number): boolean;
  forget(process: DockerManagedProcess): void;
}

export class DockerManagedProcess implements ManagedProcess {
  readonly id: string;
  readonly session: string;
  readonly identity: Identity;
  readonly startedAt: string;
  readonly stdout: PassThrough;
  readonly stdin: Writable;
  readonly exited: Promise<ProcessExit>;
  pid = 0;
  execId = '';
  prelude?: PreludeOutcome;

  private readonly ctx: ExecContext;
  private readonly host: ProcessHost;
  private readonly stderrRing: ByteRing;
  private readonly startedMs = Date.now();
  private readonly oomBaseline: number | null;
  private resolveExit!: (exit: ProcessExit) => void;
  private finishing = false;
  private isRunning = true;
  private stopStep: 'eof' | 'sigterm' | 'sigkill' | null = null;
  private forcedReason: ExitReason | null = null;
  private exec!: StartedExec;

  private constructor(ctx: ExecContext, host: ProcessHost, spec: ManagedProcessSpec) {
    this.ctx = ctx;
    this.host = host;
    this.id = spec.id;
    this.session = ctx.sessionName;
    this.identity = spec.identity;
    this.startedAt = new Date(this.startedMs).toISOString();
    this.stderrRing = new ByteRing(spec.stderrRingBytes ?? DEFAULT_STDERR_RING_BYTES);
    this.stdout = new PassThrough({ highWaterMark: STDOUT_HIGH_WATER });
    this.oomBaseline = host.lastKnownOomKills();
    this.exited = new Promise<ProcessExit>((resolve) => (this.resolveExit = resolve));
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        const socket = this.exec.stream;
        if (socket.destroyed || !this.isRunning) {
          callback(new BoxError('PROCESS_NOT_RUNNING', 'runtime', `Process "${this.id}" is not running`));
          return;
        }
        if (socket.write(chunk)) callback();
        else socket.once('drain', () => callback());
      },
      final: (callback) => {
        // Half-close: the engine closes the process's stdin, the output side stays open.
        if (!this.exec.stream.destroyed) this.exec.stream.end();
        callback();
      },
    });
    this.stdin.on('error', () => undefined); // write errors are reported through callbacks
  }

  static async start(ctx: ExecContext, host: ProcessHost, spec: ManagedProcessSpec): Promise<DockerManagedProcess> {
    const proc = new DockerManagedProcess(ctx, host, spec);
    const { prelude } = spec;
    proc.exec = await startExec(ctx.container, {
      cmd: wrapCommand(spec.cmd, {
        ...(ctx.limits === undefined ? {} : { limits: ctx.limits }),
        ...(prelude === undefined
          ? {}
          : {
              prelude: {
                script: prelude.script,
                stdinBytes: prelude.stdin.length,
                exclusive: prelude.exclusive,
                cwd: spec.cwd ?? spec.identity.workspace,
              },
            }),
      }),
      user: ctx.user,
      env: { ...ctx.env, ...spec.env },
      // With a prelude the folder may not exist yet: the wrapper enters it once the prelude made it.
      ...(prelude !== undefined ? { cwd: '/' } : spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      attachStdin: true,
      phase: 'process_start',
      ...(ctx.onContainerGone === undefined ? {} : { onContainerGone: ctx.onContainerGone }),
      ...(spec.signal === undefined ? {} : { signal: spec.signal }),
    });
    proc.execId = proc.exec.id;
    const toStderr = (chunk: Buffer): void => {
      proc.stderrRing.write(chunk);
      spec.onStderr?.(chunk);
    };
    const preludeReader = prelude === undefined ? null : new PreludeReader(toStderr);
    const pidReader = new PidLineReader(preludeReader === null ? toStderr : (chunk) => preludeReader.push(chunk));
    const drained = demultiplex(proc.exec.stream, { stdout: proc.stdout, onStderr: (chunk) => pidReader.push(chunk) });
    void drained.then(() => {
      pidReader.end();
      preludeReader?.end();
      void proc.finish();
    });
    // The prelude's bytes go first: nothing else can write to the process before start() returns.
    if (prelude !== undefined) proc.exec.stream.write(prelude.stdin);
    const pid = await Promise.race([pidReader.waitForPid(), delay(PID_WAIT_MS).then(() => null)]);
    if (pid === null) {
      proc.exec.stream.destroy();
      const exit = await proc.finish();
      throw new BoxError(
        'PROCESS_START_FAILED',
        'process_start',
        `Process "${spec.id}" did not start: ${exit.stderrTail.trim() || 'no output'}`,
        {
          details: { exitCode: exit.exitCode },
        },
      );
    }
    proc.pid = pid;
    if (prelude !== undefined && preludeReader !== null)
      proc.prelude = await proc.awaitPrelude(preludeReader, prelude.timeoutMs, spec.signal);
    return proc;
  }

  /** Until the prelude is done: its outcome; a prelude past its deadline or cancelled is killed (and failed). */
  private async awaitPrelude(
    reader: PreludeReader,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<PreludeOutcome> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const cut = new Promise<'timeout' | 'aborted'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      onAbort = () => resolve('aborted');
      if (signal?.aborted === true) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const first = await Promise.race([reader.done, cut]);
      if (first === 'timeout' || first === 'aborted') {
        await this.ctx.kill(this.ctx.user, 'all', 'KILL').catch(() => undefined);
        // An engine that no longer ends the exec: settle anyway, nobody waits forever.
        if (!(await Promise.race([this.exited.then(() => true), delay(KILL_WAIT_MS).then(() => false)]))) {
          this.forcedReason ??= 'engine_lost';
          this.exec.stream.destroy();
          void this.finish();
        }
        const exit = await this.exited;
        const why = first === 'timeout' ? `did not finish within ${timeoutMs} ms` : 'was cancelled';
        const { output } = await reader.done;
        return {
          status: 'failed',
          output: [...output, `mcp-box: the prelude ${why}`],
          exitCode: exit.exitCode,
          durationMs: Date.now() - started,
        };
      }
      if (first.ran) return { status: 'ran', output: first.output, exitCode: null, durationMs: Date.now() - started };
      const exit = await this.exited;
      return {
        status: exit.exitCode === PRELUDE_STOP_EXIT ? 'stopped' : 'failed',
        output: first.output,
        exitCode: exit.exitCode,
        durationMs: Date.now() - started,
      };
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }

  get running(): boolean {
    return this.isRunning;
  }

  stderrTail(): string {
    return this.stderrRing.toString();
  }

  async kill(signal: 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP'): Promise<void> {
    if (!this.isRunning) return;
    await this.ctx.kill(this.ctx.user, { group: this.pid }, signal.slice(3) as 'TERM' | 'KILL' | 'INT' | 'HUP');
  }

  /**
   * Whether the process still holds its stdout, asked from inside the session as its own uid. The
   * attach stream has no per-stream EOF: stdout closed by a process that keeps running is only
   * visible in /proc. One short exec; the relay asks only while a request waits on a quiet stdout.
   */
  async stdoutState(): Promise<'open' | 'closed' | 'unknown'> {
    if (!this.isRunning || this.pid <= 0) return 'unknown';
    const probe = await runOneShotExec(
      { ...this.ctx, phase: 'runtime' },
      {
        cmd: ['/bin/sh', '-c', STDOUT_PROBE_SCRIPT, 'mcp-box', String(this.pid)],
        timeoutMs: STDOUT_PROBE_TIMEOUT_MS,
        cwd: '/',
      },
    ).catch(() => null);
    const answer = probe?.exitCode === 0 ? probe.stdout.trim() : '';
    if (!this.isRunning) return 'unknown';
    return answer === 'open' || answer === 'closed' ? answer : 'unknown';
  }

  /** The engine said this exec died (exec_die) or the container died: settle now. */
  notifyEnded(reason?: ExitReason): void {
    if (reason !== undefined) this.forcedReason ??= reason;
    void this.finish();
  }

  readonly stop = once(async (opts: StopOptions = {}): Promise<ProcessExit> => this.escalate(opts));

  private async escalate(opts: StopOptions): Promise<ProcessExit> {
    if (!this.isRunning) return this.exited;
    const ended = (ms: number): Promise<boolean> =>
      Promise.race([this.exited.then(() => true), delay(ms).then(() => false)]);
    this.stopStep = 'eof';
    if (!this.stdin.writableEnded) this.stdin.end();
    if (await ended(opts.eofGraceMs ?? DEFAULT_EOF_GRACE_MS)) return this.exited;
    this.stopStep = 'sigterm';
    await this.ctx.kill(this.ctx.user, { group: this.pid }, 'TERM').catch(() => undefined);
    if (await ended(opts.termGraceMs ?? DEFAULT_TERM_GRACE_MS)) return this.exited;
    this.stopStep = 'sigkill';
    // Everything of this uid: the process, its children and anything that escaped the group.
    await this.ctx.kill(this.ctx.user, 'all', 'KILL').catch(() => undefined);
    if (await ended(KILL_WAIT_MS)) return this.exited;
    // The engine never reported the end: settle anyway so nobody waits forever.
    this.forcedReason ??= 'engine_lost';
    this.exec.stream.destroy();
    return this.finish();
  }

  private async finish(): Promise<ProcessExit> {
    if (this.finishing) return this.exited;
    this.finishing = true;
    let exitCode: number | null = null;
    try {
      ({ exitCode } = await this.exec.waitExit({ timeoutMs: 5000 }));
    } catch {
      // An engine that does not answer cannot say the container died: the state is unknown.
      this.forcedReason ??= (await this.host
        .isContainerDead()
        .catch((e: unknown) => !(e instanceof BoxError && e.code === 'ENGINE_UNREACHABLE')))
        ? 'container_died'
        : 'engine_lost';
    }
    const killedBySignal = exitCode !== null && exitCode > 128 && exitCode < 160 ? exitCode - 128 : null;
    let reason: ExitReason = this.forcedReason ?? (this.stopStep !== null ? 'stopped' : 'exited');
    let oomKilled = false;
    if (reason !== 'stopped' && reason !== 'container_died' && (exitCode === null || killedBySignal !== null)) {
      // A killed container ends its execs' streams before the engine records the container's
      // exit: give the engine a moment before calling this an ordinary exit.
      if (await this.host.isContainerDead(CONTAINER_DEATH_SETTLE_MS).catch(() => false)) reason = 'container_died';
    }
    if (killedBySignal === 9 && this.stopStep !== 'sigkill' && reason !== 'container_died') {
      const now = await this.host.readOomKills().catch(() => null);
      oomKilled =
        (now !== null && this.oomBaseline !== null && now > this.oomBaseline) ||
        this.host.oomEventSince(this.startedMs - 1000);
      if (oomKilled) reason = 'oom';
    }
    this.isRunning = false;
    if (!this.exec.stream.destroyed) this.exec.stream.destroy();
    if (!this.stdout.writableEnded) this.stdout.end();
    const endedMs = Date.now();
    const exit: ProcessExit = {
      exitCode,
      signal: killedBySignal === null ? null : (SIGNAL_NAMES[killedBySignal] ?? `SIG${killedBySignal}`),
      reason,
      oomKilled,
      stoppedBy: reason === 'stopped' ? this.stopStep : null,
      stderrTail: this.stderrRing.toString(),
      startedAt: this.startedAt,
      endedAt: new Date(endedMs).toISOString(),
      durationMs: endedMs - this.startedMs,
    };
    this.host.forget(this);
    this.resolveExit(exit);
    return exit;
  }
}
