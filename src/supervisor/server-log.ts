/**
 * One ordered, sequence-numbered log per server: lifecycle lines, stderr, install output and
 * stdout lines that were not JSON-RPC. Bounded (oldest lines go first), redacted on the way in,
 * cursor-paged with `after`.
 */
export type LogSource = 'lifecycle' | 'stderr' | 'install' | 'stdout';

export interface LogLine {
  seq: number;
  at: string;
  source: LogSource;
  text: string;
}

export class ServerLog {
  private lines: LogLine[] = [];
  private nextSeq = 1;
  private partial: Partial<Record<LogSource, string>> = {};

  constructor(
    private readonly capacity: number,
    private readonly redact: (text: string) => string,
    private readonly onLine?: (line: LogLine) => void,
  ) {}

  /** Lines from an earlier run (durable state); numbering continues after them. */
  seed(lines: LogLine[]): void {
    this.lines = lines.slice(-this.capacity);
    this.nextSeq = (lines.at(-1)?.seq ?? 0) + 1;
  }

  /** Appends text (any chunking); complete lines are stored. */
  write(source: LogSource, text: string): void {
    const parts = ((this.partial[source] ?? '') + text).split(/\r?\n/);
    this.partial[source] = parts.pop() ?? '';
    for (const part of parts) this.push(source, part);
    if ((this.partial[source] ?? '').length > 16 * 1024) {
      this.push(source, this.partial[source] ?? '');
      this.partial[source] = '';
    }
  }

  line(source: LogSource, text: string): void {
    this.push(source, text);
  }

  /** Lines with seq > after, at most `limit`. */
  read(after = 0, limit = 200): { lines: LogLine[]; next: number; first: number } {
    const lines = this.lines.filter((l) => l.seq > after).slice(0, Math.max(0, limit));
    return { lines, next: lines.at(-1)?.seq ?? after, first: this.lines[0]?.seq ?? this.nextSeq };
  }

  /** The last `n` lines of one source (the stderr tail of a failure record). */
  tail(source: LogSource, n: number): string[] {
    return this.lines.filter((l) => l.source === source).slice(-n).map((l) => l.text);
  }

  private push(source: LogSource, text: string): void {
    const line: LogLine = { seq: this.nextSeq++, at: new Date().toISOString(), source, text: this.redact(text) };
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
    this.onLine?.(line);
  }
}
