/**
 * A bounded buffer that keeps the last `capacity` bytes written to it: the tail of a stream that
 * must always be drained (stderr) but never grow without bound. Counts what it dropped.
 */
export class ByteRing {
  readonly capacity: number;
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;
  private total = 0;
  /** Whether the last dropped byte was a newline (then the first held line is whole). */
  private cutAtLineStart = true;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0)
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  write(chunk: Buffer): void {
    this.total += chunk.length;
    if (chunk.length >= this.capacity) {
      const cut = chunk.length - this.capacity;
      this.dropped += this.size + cut;
      if (cut > 0) this.cutAtLineStart = chunk[cut - 1] === 0x0a;
      else if (this.size > 0) this.cutAtLineStart = this.toBuffer().at(-1) === 0x0a;
      this.chunks = [Buffer.from(chunk.subarray(cut))];
      this.size = this.capacity;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.capacity) {
      const head = this.chunks[0] as Buffer;
      const excess = this.size - this.capacity;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
        this.dropped += head.length;
        this.cutAtLineStart = head.at(-1) === 0x0a;
      } else {
        this.cutAtLineStart = head[excess - 1] === 0x0a;
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  /** Bytes currently held (at most `capacity`). */
  get length(): number {
    return this.size;
  }

  /** Bytes written in total, and bytes dropped off the front. */
  get stats(): { total: number; dropped: number } {
    return { total: this.total, dropped: this.dropped };
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  /** The held bytes as UTF-8; a character cut at the front by truncation is dropped, not garbled. */
  toString(): string {
    const text = this.toBuffer().toString('utf8');
    return this.dropped > 0 ? text.replace(/^\uFFFD+/, '') : text;
  }

  /** The last `n` lines of the held text (a trailing partial line counts as a line). */
  tailLines(n: number): string[] {
    if (n <= 0) return [];
    const lines = this.toString().split('\n');
    if (lines.at(-1) === '') lines.pop();
    // the first line is cut: not a whole line
    if (this.dropped > 0 && !this.cutAtLineStart && lines.length > 0) lines.shift();
    return lines.slice(-n);
  }
}
