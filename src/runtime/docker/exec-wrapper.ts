/**
 * Every command mcp-box runs in a session goes through a tiny `sh` wrapper that
 *   1. prints its PID as the first stderr line (`mcp-box:pid=<n>`; stripped before anyone sees
 *      stderr) — the Engine API only knows host PIDs, and Docker has no exec-kill endpoint, so
 *      signals are delivered from inside by PID / process group (an exec is a session leader);
 *   2. applies the per-uid limits with prlimit (RLIMIT_NPROC counts per uid, so a fork bomb of
 *      one identity cannot take the pids of another);
 *   3. `exec`s the command, so the PID stays the command's own.
 * Secrets never appear here: the environment travels in the exec's Env field, not argv.
 */
import { DEFAULT_NOFILE_PER_IDENTITY, DEFAULT_NPROC_PER_IDENTITY } from '../identity.js';

export const PID_MARKER = 'mcp-box:pid=';

export interface WrapOptions {
  /** Apply per-identity rlimits (omitted for housekeeping commands). */
  limits?: ExecLimits;
  /** Run this first, in the same exec (see ProcessPrelude); the command then starts in `cwd`. */
  prelude?: { script: string; stdinBytes: number; exclusive: boolean; cwd: string };
}

/** The line the wrapper prints when its prelude is done and the command is about to run. */
export const EXEC_MARKER = 'mcp-box:exec';

/** Per-identity rlimits. `fsize` (bytes) caps any one file the command writes (RLIMIT_FSIZE). */
export interface ExecLimits {
  nproc?: number;
  nofile?: number;
  fsize?: number;
}

export function wrapCommand(cmd: string[], opts: WrapOptions = {}): string[] {
  if (cmd.length === 0 || cmd[0] === '') throw new RangeError('command must not be empty');
  let script = `printf '${PID_MARKER}%s\\n' "$$" >&2; `;
  const args: string[] = [];
  if (opts.prelude !== undefined) {
    const { stdinBytes, exclusive } = opts.prelude;
    if (!Number.isInteger(stdinBytes) || stdinBytes < 0) throw new RangeError(`invalid prelude stdin ${stdinBytes}`);
    // `kill -1` spares only the shell that sends it: first, before this shell has any children of its own.
    if (exclusive) script += 'kill -s KILL -- -1 2>/dev/null || true; ';
    // The prelude reads exactly its bytes (head -c never reads past them); what follows is the command's stdin.
    // Its output goes to stderr, read up to the marker by PreludeReader.
    script +=
      `p=$1; d=$2; shift 2; head -c ${stdinBytes} | ( eval "$p" ) >&2; s=$?; ` +
      `[ "$s" -eq 0 ] || exit "$s"; cd "$d" || exit 1; printf '${EXEC_MARKER}\\n' >&2; `;
    args.push(opts.prelude.script, opts.prelude.cwd);
  }
  script += 'exec ';
  if (opts.limits !== undefined) {
    const nproc = opts.limits.nproc ?? DEFAULT_NPROC_PER_IDENTITY;
    const nofile = opts.limits.nofile ?? DEFAULT_NOFILE_PER_IDENTITY;
    if (!Number.isInteger(nproc) || nproc < 1 || !Number.isInteger(nofile) || nofile < 16) {
      throw new RangeError(`invalid limits nproc=${nproc} nofile=${nofile}`);
    }
    const fsize = opts.limits.fsize;
    if (fsize !== undefined && (!Number.isInteger(fsize) || fsize < 1))
      throw new RangeError(`invalid limits fsize=${fsize}`);
    const fsizeFlag = fsize === undefined ? '' : `--fsize=${fsize}:${fsize} `;
    script += `prlimit --nproc=${nproc}:${nproc} --nofile=${nofile}:${nofile} --core=0:0 ${fsizeFlag}-- `;
  }
  script += '"$@"';
  return ['/bin/sh', '-c', script, 'mcp-box', ...args, ...cmd];
}

/**
 * Watches the start of stderr for the PID line. Everything after it (or everything, when the first
 * line is not the marker) is passed on unchanged.
 */
export class PidLineReader {
  pid: number | null = null;
  private head: Buffer | null = Buffer.alloc(0);
  private readonly waiters: ((pid: number | null) => void)[] = [];

  constructor(private readonly pass: (chunk: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.head === null) {
      this.pass(chunk);
      return;
    }
    const buffered = Buffer.concat([this.head, chunk]);
    const newline = buffered.indexOf(0x0a);
    if (newline === -1 && buffered.length < 64) {
      this.head = buffered;
      return;
    }
    this.head = null;
    const line = newline === -1 ? '' : buffered.subarray(0, newline).toString('latin1');
    if (line.startsWith(PID_MARKER) && /^\d+$/.test(line.slice(PID_MARKER.length))) {
      this.pid = Number(line.slice(PID_MARKER.length));
      const rest = buffered.subarray(newline + 1);
      if (rest.length > 0) this.pass(rest);
    } else {
      this.pass(buffered);
    }
    this.settle();
  }

  /** The stream ended: whatever was held is passed on. */
  end(): void {
    if (this.head !== null && this.head.length > 0) this.pass(this.head);
    this.head = null;
    this.settle();
  }

  /** Resolves with the PID once known, or null when the stream ended without it. */
  waitForPid(): Promise<number | null> {
    if (this.head === null) return Promise.resolve(this.pid);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private settle(): void {
    for (const waiter of this.waiters.splice(0)) waiter(this.pid);
  }
}

/** What a prelude may print before its output is cut (its own lines: a hostile folder's names among them). */
const PRELUDE_OUTPUT_BYTES = 64 * 1024;

/**
 * After the PID line, the prelude's output up to the wrapper's EXEC_MARKER; what follows is the command's own
 * stderr and is passed on. `done` resolves with the prelude's lines when the marker came (`ran: true`) or when
 * the stream ended without it.
 */
export class PreludeReader {
  private buffered = Buffer.alloc(0);
  private readonly lines: string[] = [];
  private kept = 0;
  private finished = false;
  private resolveDone!: (result: { ran: boolean; output: string[] }) => void;
  readonly done = new Promise<{ ran: boolean; output: string[] }>((resolve) => (this.resolveDone = resolve));

  constructor(private readonly pass: (chunk: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.finished) {
      this.pass(chunk);
      return;
    }
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (let nl = this.buffered.indexOf(0x0a); nl !== -1; nl = this.buffered.indexOf(0x0a)) {
      const line = this.buffered.subarray(0, nl).toString('utf8');
      this.buffered = this.buffered.subarray(nl + 1);
      if (line === EXEC_MARKER) {
        this.finish(true);
        if (this.buffered.length > 0) this.pass(this.buffered);
        this.buffered = Buffer.alloc(0);
        return;
      }
      this.keep(line);
    }
    // A line with no end in sight: kept as it is, so the buffer stays bounded.
    if (this.buffered.length > PRELUDE_OUTPUT_BYTES) {
      this.keep(this.buffered.toString('utf8'));
      this.buffered = Buffer.alloc(0);
    }
  }

  end(): void {
    if (this.finished) return;
    if (this.buffered.length > 0) this.keep(this.buffered.toString('utf8'));
    this.finish(false);
  }

  private keep(line: string): void {
    if (this.kept + line.length > PRELUDE_OUTPUT_BYTES) return;
    this.kept += line.length;
    this.lines.push(line);
  }

  private finish(ran: boolean): void {
    this.finished = true;
    this.resolveDone({ ran, output: this.lines });
  }
}
