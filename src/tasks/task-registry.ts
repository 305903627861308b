/**
 * Long operations (installs, image builds) as tasks the platform can poll: an id; states
 * `working → completed | failed | cancelled`; a progress message taken from the output, and a
 * heartbeat with the elapsed time when the operation is quiet; a bounded, redacted output ring with
 * a tail query; cancel (the operation's signal aborts; it kills only what it runs); finished tasks
 * kept for a TTL, and cancelling a finished task is an error.
 *
 * The registry knows nothing of what a task does: the caller of `start()` names the phase of the
 * task's errors and the codes of its failure and its cancel (an install: `dep_install`,
 * `INSTALL_FAILED`, `INSTALL_CANCELLED`). The registry's own answers are `NOT_FOUND` for an unknown
 * id (phase `request`), `CONFLICT` for cancelling a finished task, `INTERRUPTED` and `ABORTED`.
 *
 * Durable state hears of a task twice ('started', then the 'update' that finishes it), so a task
 * that was working when its process died is still known after a restart: `restore()` turns it into
 * `failed` with `INTERRUPTED`, since nothing is running it any more.
 *
 * Updates driven by output are throttled per task (`updateIntervalMs`): an install printing
 * thousands of chunks would otherwise flood every listener (serve's event ring among them). The
 * first is emitted at once, later ones at most once per interval, on the trailing edge so the latest
 * state always goes out. Everything else (start, an explicit progress message, the heartbeat, the
 * end) is emitted at once, taking along a pending throttled update; nothing follows the final one.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { BoxError, isBoxError, type ErrorCode, type Phase } from '../errors/box-error.js';
import { mapStrings } from '../util/map-strings.js';

export type TaskState = 'working' | 'completed' | 'failed' | 'cancelled';

export interface TaskRecord {
  id: string;
  kind: string;
  /** What the task is about (a server name). */
  subject: string;
  state: TaskState;
  /** The phase of the task's errors (the caller's, see TaskErrorSpec); absent in records of older versions. */
  phase?: Phase;
  progress: string;
  startedAt: string;
  endedAt: string | null;
  elapsedMs: number;
  /** Output lines held (the tail query returns at most this many). */
  outputLines: number;
  error: { code: ErrorCode; phase: Phase; message: string; details: Record<string, unknown> } | null;
}

export interface TaskContext {
  readonly id: string;
  readonly signal: AbortSignal;
  progress(message: string): void;
  /** Output text (any chunking); split into lines, redacted, kept in the ring. */
  output(text: string): void;
}

/** What a task's failures are called: the caller's domain, never the registry's. */
export interface TaskErrorSpec {
  /** The phase of every error of this task: its failure, its cancel, a conflict, INTERRUPTED. */
  phase: Phase;
  codes: {
    /** A run that throws something other than a BoxError becomes this code (a BoxError is kept as it is). */
    failed: ErrorCode;
    /** The abort reason the run's signal carries when the task is cancelled. */
    cancelled: ErrorCode;
  };
}

export interface TaskRegistryOptions {
  ttlMs?: number;
  heartbeatMs?: number;
  maxOutputLines?: number;
  /** Applied to every output line and progress message before it is stored. */
  redact?: (text: string) => string;
  /** Output-driven 'update' events of a task are at most one per this interval (default 250 ms; 0: every chunk). */
  updateIntervalMs?: number;
}

export interface Task<T> {
  readonly id: string;
  readonly done: Promise<T>;
  record(): TaskRecord;
}

interface Entry {
  record: TaskRecord;
  /** Null for a task restored from an earlier run (it is finished; nothing fails or is cancelled any more). */
  errors: TaskErrorSpec | null;
  controller: AbortController;
  lines: string[];
  partial: string;
  lastOutputAt: number;
  startedMs: number;
  heartbeat: NodeJS.Timeout | null;
  cancelRequested: boolean;
  endedWithCr: boolean;
  /** When output last caused an 'update' (or an update that carried its changes went out). */
  lastOutputUpdateAt: number;
  /** The trailing throttled update, when one is due. */
  pendingUpdate: NodeJS.Timeout | null;
}

const MAX_PROGRESS = 200;
const MAX_PARTIAL = 64 * 1024;
const DEFAULT_UPDATE_INTERVAL_MS = 250;

export class TaskRegistry extends EventEmitter<{ update: [TaskRecord]; started: [TaskRecord] }> {
  private readonly tasks = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly heartbeatMs: number;
  private readonly maxLines: number;
  private readonly redact: (text: string) => string;
  private readonly updateIntervalMs: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(opts: TaskRegistryOptions = {}) {
    super();
    this.ttlMs = opts.ttlMs ?? 15 * 60_000;
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.maxLines = opts.maxOutputLines ?? 2000;
    this.redact = opts.redact ?? ((t) => t);
    this.updateIntervalMs = opts.updateIntervalMs ?? DEFAULT_UPDATE_INTERVAL_MS;
    this.sweeper = setInterval(() => this.sweep(), Math.min(this.ttlMs, 60_000));
    this.sweeper.unref();
  }

  start<T>(kind: string, subject: string, run: (ctx: TaskContext) => Promise<T>, errors: TaskErrorSpec): Task<T> {
    const id = `task_${randomBytes(8).toString('hex')}`;
    const startedMs = Date.now();
    const entry: Entry = {
      errors,
      record: {
        id,
        kind,
        subject,
        state: 'working',
        phase: errors.phase,
        progress: 'starting',
        startedAt: new Date(startedMs).toISOString(),
        endedAt: null,
        elapsedMs: 0,
        outputLines: 0,
        error: null,
      },
      controller: new AbortController(),
      lines: [],
      partial: '',
      lastOutputAt: startedMs,
      startedMs,
      heartbeat: null,
      cancelRequested: false,
      endedWithCr: false,
      lastOutputUpdateAt: Number.NEGATIVE_INFINITY,
      pendingUpdate: null,
    };
    this.tasks.set(id, entry);
    entry.heartbeat = setInterval(() => {
      const now = Date.now();
      if (now - entry.lastOutputAt >= this.heartbeatMs)
        this.setProgress(
          entry,
          `still working after ${Math.round((now - startedMs) / 1000)} s ` +
            `(no output for ${Math.round((now - entry.lastOutputAt) / 1000)} s)`,
        );
    }, this.heartbeatMs);
    entry.heartbeat.unref();
    const ctx: TaskContext = {
      id,
      signal: entry.controller.signal,
      progress: (message) => this.setProgress(entry, message),
      output: (text) => this.addOutput(entry, text),
    };
    this.emit('started', this.snapshot(entry));
    this.emit('update', this.snapshot(entry));
    const done = (async () => {
      try {
        const result = await run(ctx);
        this.finish(entry, entry.cancelRequested ? 'cancelled' : 'completed', null);
        return result;
      } catch (err) {
        const boxError = isBoxError(err)
          ? err
          : new BoxError(errors.codes.failed, errors.phase, String(err), { cause: err });
        this.finish(entry, entry.cancelRequested ? 'cancelled' : 'failed', boxError);
        throw boxError;
      }
    })();
    done.catch(() => undefined);
    return { id, done, record: () => this.snapshot(entry) };
  }

  get(id: string): TaskRecord {
    return this.snapshot(this.entry(id));
  }

  /** The last `lines` output lines (redacted). */
  tail(id: string, lines = 50): string[] {
    const entry = this.entry(id);
    const all = entry.partial === '' ? entry.lines : [...entry.lines, this.redact(entry.partial)];
    return lines <= 0 ? [] : all.slice(-lines);
  }

  cancel(id: string): TaskRecord {
    const entry = this.entry(id);
    if (entry.record.state !== 'working') {
      throw new BoxError(
        'CONFLICT',
        entry.record.phase ?? 'request',
        `Task ${id} already finished (${entry.record.state}); only a working task can be cancelled`,
        { details: { state: entry.record.state } },
      );
    }
    entry.cancelRequested = true;
    this.setProgress(entry, 'cancelling');
    // Working means started here, so the caller's spec is known (restored tasks are all finished).
    const errors = entry.errors ?? { phase: 'request', codes: { cancelled: 'ABORTED' } };
    entry.controller.abort(new BoxError(errors.codes.cancelled, errors.phase, `Task ${id} was cancelled`));
    return this.snapshot(entry);
  }

  /**
   * Task records from an earlier run (durable state), oldest first; the last record of an id wins.
   * A task still `working` there was cut off when that run ended (kill -9, a crash): it comes back
   * `failed` with `INTERRUPTED`, ended now. Returns those, so the caller can persist the change.
   * Restored tasks are kept for the TTL from their end. INTERRUPTED carries the task's own phase
   * (`shutdown` for a record of an older version, which did not keep it).
   */
  restore(records: TaskRecord[]): TaskRecord[] {
    const latest = new Map<string, TaskRecord>();
    for (const record of records) latest.set(record.id, record);
    const interrupted: TaskRecord[] = [];
    const now = Date.now();
    for (const found of latest.values()) {
      if (this.tasks.has(found.id)) continue;
      // Records written before tasks kept their phase have none.
      const phase: Phase = found.phase ?? 'shutdown';
      let record: TaskRecord = { ...found, phase };
      if (record.state === 'working' || record.endedAt === null) {
        const message =
          `serve stopped while this task was working (killed or crashed at some time after ${record.startedAt}); ` +
          'it was not resumed and its outcome is unknown';
        const startedMs = Date.parse(record.startedAt);
        record = {
          ...record,
          state: 'failed',
          progress: `failed: ${message}`.slice(0, MAX_PROGRESS),
          endedAt: new Date(now).toISOString(),
          elapsedMs: Number.isNaN(startedMs) ? 0 : Math.max(0, now - startedMs),
          error: { code: 'INTERRUPTED', phase, message, details: {} },
        };
        interrupted.push({ ...record });
      }
      this.tasks.set(record.id, {
        errors: null,
        record,
        controller: new AbortController(),
        lines: [],
        partial: '',
        lastOutputAt: Date.parse(record.endedAt as string),
        startedMs: Date.parse(record.startedAt),
        heartbeat: null,
        cancelRequested: false,
        endedWithCr: false,
        lastOutputUpdateAt: Number.NEGATIVE_INFINITY,
        pendingUpdate: null,
      });
    }
    this.sweep();
    return interrupted;
  }

  list(): TaskRecord[] {
    this.sweep();
    return [...this.tasks.values()].map((e) => this.snapshot(e));
  }

  /** Cancels working tasks and stops the timers. */
  close(): void {
    clearInterval(this.sweeper);
    for (const entry of this.tasks.values()) {
      if (entry.record.state === 'working')
        entry.controller.abort(new BoxError('ABORTED', 'shutdown', 'mcp-box is shutting down'));
      if (entry.heartbeat !== null) clearInterval(entry.heartbeat);
      this.cancelPendingUpdate(entry);
    }
  }

  private entry(id: string): Entry {
    this.sweep();
    const entry = this.tasks.get(id);
    if (entry === undefined)
      throw new BoxError(
        'NOT_FOUND',
        'request',
        `No task ${JSON.stringify(id)} (finished tasks are kept for ${Math.round(this.ttlMs / 1000)} s)`,
      );
    return entry;
  }

  private addOutput(entry: Entry, text: string): void {
    entry.lastOutputAt = Date.now();
    // A "\r\n" split across two chunks is one line end, not two.
    let chunk = text;
    if (entry.endedWithCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    entry.endedWithCr = chunk.endsWith('\r');
    const parts = (entry.partial + chunk).split(/\r?\n|\r/);
    entry.partial = parts.pop() ?? '';
    if (entry.partial.length > MAX_PARTIAL) {
      // Output with no line ends stays bounded: hold it as a line of its own.
      parts.push(entry.partial);
      entry.partial = '';
    }
    for (const raw of parts) {
      const line = this.redact(raw);
      entry.lines.push(line);
      if (line.trim() !== '') this.setProgress(entry, line.trim(), false);
    }
    if (entry.lines.length > this.maxLines) entry.lines.splice(0, entry.lines.length - this.maxLines);
    entry.record.outputLines = entry.lines.length;
    this.outputUpdate(entry);
  }

  /** Throttled: at once when none went out for an interval, else one trailing update when it ends. */
  private outputUpdate(entry: Entry): void {
    if (entry.pendingUpdate !== null) return; // it takes the latest state when it fires
    const wait = entry.lastOutputUpdateAt + this.updateIntervalMs - Date.now();
    if (wait <= 0) {
      entry.lastOutputUpdateAt = Date.now();
      this.emit('update', this.snapshot(entry));
      return;
    }
    entry.pendingUpdate = setTimeout(() => {
      entry.pendingUpdate = null;
      if (entry.record.state !== 'working') return;
      entry.lastOutputUpdateAt = Date.now();
      this.emit('update', this.snapshot(entry));
    }, wait);
    entry.pendingUpdate.unref();
  }

  /** An update that goes out at once; it carries the changes of a pending throttled one, which is dropped. */
  private updateNow(entry: Entry): void {
    if (this.cancelPendingUpdate(entry)) entry.lastOutputUpdateAt = Date.now();
    this.emit('update', this.snapshot(entry));
  }

  private cancelPendingUpdate(entry: Entry): boolean {
    if (entry.pendingUpdate === null) return false;
    clearTimeout(entry.pendingUpdate);
    entry.pendingUpdate = null;
    return true;
  }

  private setProgress(entry: Entry, message: string, emit = true): void {
    if (entry.record.state !== 'working') return;
    const clean = this.redact(message);
    entry.record.progress = clean.length > MAX_PROGRESS ? `${clean.slice(0, MAX_PROGRESS - 1)}…` : clean;
    if (emit) this.updateNow(entry);
  }

  private finish(entry: Entry, state: TaskState, error: BoxError | null): void {
    if (entry.partial !== '') {
      entry.lines.push(this.redact(entry.partial));
      entry.partial = '';
    }
    if (entry.heartbeat !== null) clearInterval(entry.heartbeat);
    entry.heartbeat = null;
    entry.record.progress =
      state === 'completed'
        ? 'completed'
        : state === 'cancelled'
          ? 'cancelled'
          : `failed: ${this.redact(error?.message ?? '')}`.slice(0, MAX_PROGRESS);
    entry.record.state = state;
    entry.record.endedAt = new Date().toISOString();
    entry.record.elapsedMs = Date.now() - entry.startedMs;
    entry.record.outputLines = entry.lines.length;
    entry.record.error =
      error === null
        ? null
        : {
            code: error.code,
            phase: error.phase,
            message: this.redact(error.message),
            details: mapStrings({ ...error.details }, this.redact),
          };
    this.updateNow(entry); // the final update: a pending throttled one is dropped, never sent after it
  }

  private snapshot(entry: Entry): TaskRecord {
    const elapsedMs = entry.record.state === 'working' ? Date.now() - entry.startedMs : entry.record.elapsedMs;
    return { ...entry.record, elapsedMs, error: entry.record.error === null ? null : { ...entry.record.error } };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, entry] of this.tasks) {
      if (entry.record.endedAt !== null && now - Date.parse(entry.record.endedAt) > this.ttlMs) this.tasks.delete(id);
    }
  }
}
