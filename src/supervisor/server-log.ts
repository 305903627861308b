/**
 * One ordered, sequence-numbered log per server: lifecycle lines, stderr, install output and
 * stdout lines that were not JSON-RPC. Bounded twice — in lines and in characters, oldest lines go
 * first — and each line is cut at MAX_LINE_CHARS (a server printing 16 MiB lines or no newline at
 * all must not hold the supervisor's memory); redacted on the way in, cursor-paged with `after`.
 */

/** Longer lines keep their start and say how much was cut. */
export const MAX_LINE_CHARS = 4096;
/** All lines of one server together. */
export const MAX_LOG_CHARS = 2 * 1024 * 1024;
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
  private chars = 0;

  constructor(
    private readonly capacity: number,
    private readonly redact: (text: string) => string,
    private readonly onLine?: (line: LogLine) => void,
    /** How much of a cut partial line to keep back: a secret split by the cut is redacted once whole. */
    private readonly holdBack: () => number = () => 0,
  ) {}

  /** Lines from an earlier run (durable state); numbering continues after them. */
  seed(lines: LogLine[]): void {
    this.lines = lines.slice(-this.capacity).map((l) => ({ ...l, text: cut(l.text) }));
    this.chars = this.lines.reduce((n, l) => n + l.text.length, 0);
    this.trim();
    this.nextSeq = (lines.at(-1)?.seq ?? 0) + 1;
  }

  /** Appends text (any chunking); complete lines are stored. */
  write(source: LogSource, text: string): void {
    const parts = ((this.partial[source] ?? '') + text).split(/\r?\n/);
    this.partial[source] = parts.pop() ?? '';
    for (const part of parts) this.push(source, part);
    const partial = this.partial[source] ?? '';
    if (partial.length > MAX_LINE_CHARS) {
      // Redact the whole piece first; a secret still arriving can only start in the held-back end.
      const redacted = this.redact(partial);
      const hold = Math.min(Math.max(0, this.holdBack() - 1), redacted.length);
      this.push(source, redacted.slice(0, redacted.length - hold));
      this.partial[source] = redacted.slice(redacted.length - hold);
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
    return this.lines
      .filter((l) => l.source === source)
      .slice(-n)
      .map((l) => l.text);
  }

  private push(source: LogSource, text: string): void {
    const line: LogLine = { seq: this.nextSeq++, at: new Date().toISOString(), source, text: cut(this.redact(text)) };
    this.lines.push(line);
    this.chars += line.text.length;
    this.trim();
    this.onLine?.(line);
  }

  private trim(): void {
    let drop = Math.max(0, this.lines.length - this.capacity);
    let chars = this.chars;
    for (let i = 0; i < drop; i++) chars -= this.lines[i]?.text.length ?? 0;
    while (chars > MAX_LOG_CHARS && drop < this.lines.length - 1) chars -= this.lines[drop++]?.text.length ?? 0;
    if (drop > 0) this.lines.splice(0, drop);
    this.chars = chars;
  }
}

function cut(text: string): string {
  if (text.length <= MAX_LINE_CHARS) return text;
  // A flat copy: a slice of a huge string would keep the whole string alive in the log.
  const head = Buffer.from(text.slice(0, MAX_LINE_CHARS), 'utf8').toString('utf8');
  return `${head} … [${text.length - MAX_LINE_CHARS} more characters cut]`;
}
