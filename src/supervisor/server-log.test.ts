import { describe, expect, it } from 'vitest';
import { MAX_LINE_CHARS, MAX_LOG_CHARS, ServerLog } from './server-log.js';

const identity = (t: string): string => t;

describe('server log', () => {
  it('cuts a long line and says how much was cut', () => {
    const log = new ServerLog(100, identity);
    log.line('stdout', 'x'.repeat(16 * 1024 * 1024));
    const [line] = log.read().lines;
    expect(line?.text.length).toBeLessThan(MAX_LINE_CHARS + 100);
    expect(line?.text).toContain(`[${16 * 1024 * 1024 - MAX_LINE_CHARS} more characters cut]`);
  });

  it('holds a bounded number of characters when a server writes without newlines', () => {
    const log = new ServerLog(2000, identity);
    for (let i = 0; i < 2000; i++) log.write('stderr', 'y'.repeat(64 * 1024));
    const total = log.read(0, 5000).lines.reduce((n, l) => n + l.text.length, 0);
    expect(total).toBeLessThanOrEqual(MAX_LOG_CHARS);
    expect(total).toBeGreaterThan(MAX_LOG_CHARS / 2);
  });

  it('keeps the newest lines when over its line capacity, with sequence numbers going on', () => {
    const log = new ServerLog(3, identity);
    for (let i = 1; i <= 5; i++) log.line('lifecycle', `line ${i}`);
    const { lines, first } = log.read(0, 10);
    expect(lines.map((l) => l.text)).toEqual(['line 3', 'line 4', 'line 5']);
    expect(first).toBe(3);
  });

  it('redacts before it stores', () => {
    const log = new ServerLog(10, (t) => t.replaceAll('s3cret', '***'));
    log.write('stderr', 'token=s3cret\n');
    expect(log.tail('stderr', 1)).toEqual(['token=***']);
  });
});

describe('server log redaction across cuts', () => {
  it('never stores a secret split by the cut of a line with no end', () => {
    const secret = 'sekrit-value-1234';
    const redact = (t: string): string => t.split(secret).join('***');
    for (let offset = 0; offset < secret.length + 2; offset++) {
      const log = new ServerLog(100, redact, undefined, () => secret.length);
      // The secret straddles the MAX_LINE_CHARS cut at every offset.
      const lead = 'z'.repeat(MAX_LINE_CHARS - offset);
      log.write('stderr', lead);
      for (const ch of `${secret}${'q'.repeat(MAX_LINE_CHARS)}`) log.write('stderr', ch);
      log.write('stderr', '\n');
      const stored = log
        .read(0, 100)
        .lines.map((l) => l.text)
        .join('');
      expect(stored, `offset ${offset}`).not.toContain(secret.slice(0, 6));
      expect(stored).toContain('***');
    }
  });
});
