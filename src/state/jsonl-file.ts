/**
 * An append-only JSON-lines file with a size cap: past `maxBytes` the file is renamed to `.1`
 * (replacing the previous `.1`), so a file and its predecessor hold at most twice the cap.
 * Appends are batched and flushed shortly after (or at close), never blocking the caller long.
 *
 * Bounded in memory: the batch holds at most `maxPendingBytes`; an append that would go past it
 * flushes at once (synchronously) instead. Flushing early rather than dropping the oldest records
 * because what floods a log is usually what explains a failure, and disk use is bounded by the
 * rotation anyway; a synchronous write of at most `maxPendingBytes` blocks only briefly, and the
 * total work per byte is the same as with timed flushes.
 *
 * Durable state must never take serve down: a failed write (ENOSPC, EIO, EACCES, a removed
 * directory) or rotation never throws out of the constructor, `append`, `flush` or the timer. The
 * batch that could not be written is dropped, the failure is counted (`writeErrors`,
 * `lastWriteError`, `droppedRecords`) and passed to `onWriteError`, and the next flush tries again,
 * so appends succeed once the disk has room again.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export const DEFAULT_MAX_PENDING_BYTES = 1024 * 1024;
const FLUSH_DELAY_MS = 100;

export interface JsonlFileOptions {
  /** Largest batch held in memory between flushes (default 1 MiB). */
  maxPendingBytes?: number;
  /** Called on every failed write or rotation (no rate limit here: the caller decides what to log). */
  onWriteError?: (err: Error) => void;
}

export class JsonlFile {
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private size = 0;
  /** The last write failed: the file may end in a torn line, and its directory may be gone. */
  private failing = false;
  private readonly maxPendingBytes: number;
  private readonly onWriteError: ((err: Error) => void) | undefined;
  private errors = 0;
  private dropped = 0;
  private lastError: string | null = null;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    opts: JsonlFileOptions = {},
  ) {
    this.maxPendingBytes = opts.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.onWriteError = opts.onWriteError;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      this.size = existsSync(path) ? statSync(path).size : 0;
    } catch (err) {
      this.failed(err, 0);
    }
  }

  /** Failed writes and rotations so far. */
  get writeErrors(): number {
    return this.errors;
  }

  /** The message of the last failed write or rotation, or null. */
  get lastWriteError(): string | null {
    return this.lastError;
  }

  /** Records lost to failed writes. */
  get droppedRecords(): number {
    return this.dropped;
  }

  append(record: unknown): void {
    const line = `${JSON.stringify(record)}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.pendingBytes + bytes > this.maxPendingBytes) this.flush();
    this.pending.push(line);
    this.pendingBytes += bytes;
    // A single record over the bound is written at once rather than held.
    if (this.pendingBytes > this.maxPendingBytes) return this.flush();
    this.timer ??= setTimeout(() => this.flush(), FLUSH_DELAY_MS);
    this.timer.unref();
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    const records = this.pending.length;
    // After a failed write the file may end mid-line: a line end first keeps the next record whole
    // (readAll skips the blank line and the torn one).
    const text = (this.failing ? '\n' : '') + this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    const bytes = Buffer.byteLength(text);
    try {
      if (this.failing) mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      if (this.size + bytes > this.maxBytes && this.size > 0) {
        renameSync(this.path, `${this.path}.1`);
        this.size = 0;
      }
      appendFileSync(this.path, text, { mode: 0o600 });
      this.size += bytes;
      this.failing = false;
    } catch (err) {
      // The batch is dropped (holding it would grow without bound while the disk stays full).
      this.failed(err, records);
    }
  }

  /** Records of the rotated file then the current one, oldest first (unreadable lines skipped). */
  readAll<T>(): T[] {
    const out: T[] = [];
    for (const file of [`${this.path}.1`, this.path]) {
      if (!existsSync(file)) continue;
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          out.push(JSON.parse(line) as T);
        } catch {
          // a torn last line after a crash
        }
      }
    }
    return out;
  }

  private failed(err: unknown, records: number): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.errors++;
    this.dropped += records;
    this.lastError = error.message;
    this.failing = true;
    try {
      // A partial write may have grown the file: its real size keeps the rotation honest.
      this.size = existsSync(this.path) ? statSync(this.path).size : 0;
    } catch {
      this.size = 0;
    }
    try {
      this.onWriteError?.(error);
    } catch {
      // A throwing callback must not turn a failed write into a crash of the timer.
    }
  }
}
