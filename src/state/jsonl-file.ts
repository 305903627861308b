/**
 * An append-only JSON-lines file with a size cap: past `maxBytes` the file is renamed to `.1`
 * (replacing the previous `.1`), so a file and its predecessor hold at most twice the cap.
 * Appends are batched and flushed shortly after (or at close), never blocking the caller long.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export class JsonlFile {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private size: number;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.size = existsSync(path) ? statSync(path).size : 0;
  }

  append(record: unknown): void {
    this.pending.push(`${JSON.stringify(record)}\n`);
    this.timer ??= setTimeout(() => this.flush(), 100);
    this.timer.unref();
  }

  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    if (this.size + text.length > this.maxBytes && this.size > 0) {
      renameSync(this.path, `${this.path}.1`);
      this.size = 0;
    }
    appendFileSync(this.path, text, { mode: 0o600 });
    this.size += Buffer.byteLength(text);
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
}
