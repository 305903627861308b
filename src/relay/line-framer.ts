/**
 * Frames a byte stream by `\n`. Lines are handed out as the exact bytes between newlines (a `\r`
 * before the `\n` is dropped), so a multibyte UTF-8 character split across chunks is never cut: a
 * newline byte cannot occur inside a UTF-8 sequence. A line longer than `maxLineBytes` is reported
 * once and skipped up to its newline; memory stays bounded by the limit. Work is linear in the
 * input (no re-concatenation per chunk).
 */
export class LineFramer {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private skipping = false;

  constructor(readonly maxLineBytes: number) {}

  /** Bytes of an incomplete line held. */
  get pendingBytes(): number {
    return this.partBytes;
  }

  push(chunk: Buffer, onLine: (line: Buffer) => void, onOverLimit: (seenBytes: number) => void): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      if (newline === -1) {
        this.hold(chunk.subarray(start), onOverLimit);
        return;
      }
      const piece = chunk.subarray(start, newline);
      start = newline + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (this.partBytes + piece.length > this.maxLineBytes) {
        onOverLimit(this.partBytes + piece.length);
        this.reset();
        continue;
      }
      let line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece], this.partBytes + piece.length);
      this.reset();
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      if (line.length > 0) onLine(line);
    }
  }

  private hold(rest: Buffer, onOverLimit: (seenBytes: number) => void): void {
    if (rest.length === 0 || this.skipping) return;
    if (this.partBytes + rest.length > this.maxLineBytes) {
      onOverLimit(this.partBytes + rest.length);
      this.reset();
      this.skipping = true;
      return;
    }
    // Copy: the caller may reuse its chunk buffer.
    this.parts.push(Buffer.from(rest));
    this.partBytes += rest.length;
  }

  private reset(): void {
    this.parts = [];
    this.partBytes = 0;
  }
}
