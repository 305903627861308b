import { describe, expect, it } from 'vitest';
import { LineFramer } from './line-framer.js';

/** Feeds chunks through one framer; returns the lines (as text) and the over-limit reports in order. */
function frame(
  max: number,
  chunks: (string | Buffer)[],
): { lines: string[]; overLimit: number[]; events: string[]; framer: LineFramer } {
  const framer = new LineFramer(max);
  const lines: string[] = [];
  const overLimit: number[] = [];
  const events: string[] = [];
  for (const c of chunks) {
    framer.push(
      typeof c === 'string' ? Buffer.from(c) : c,
      (line) => {
        lines.push(line.toString('utf8'));
        events.push(`line:${line.toString('utf8')}`);
      },
      (bytes) => {
        overLimit.push(bytes);
        events.push(`over:${bytes}`);
      },
    );
  }
  return { lines, overLimit, events, framer };
}

describe('LineFramer', () => {
  it('joins a line split across chunks, and holds an incomplete tail', () => {
    const { lines, framer } = frame(1024, ['{"a":', '1}', '\n{"b"', ':2}\n{"c"']);
    expect(lines).toEqual(['{"a":1}', '{"b":2}']);
    expect(framer.pendingBytes).toBe(4);
  });

  it('never cuts a multibyte character split across chunks', () => {
    const bytes = Buffer.from('{"s":"héllo €"}\n');
    const cut = bytes.indexOf(0x82); // inside the three bytes of €
    const { lines } = frame(1024, [bytes.subarray(0, 9), bytes.subarray(9, cut), bytes.subarray(cut)]);
    expect(lines).toEqual(['{"s":"héllo €"}']);
  });

  it('drops the \\r of CRLF, also when \\r and \\n arrive in separate chunks; a lone \\r stays', () => {
    const { lines } = frame(1024, ['one\r\ntwo\r', '\nthree\rx\n']);
    expect(lines).toEqual(['one', 'two', 'three\rx']);
  });

  it('skips empty lines (and lines that were only \\r)', () => {
    const { lines } = frame(1024, ['\n\n', 'a\n', '\r\n', '\n', 'b\n']);
    expect(lines).toEqual(['a', 'b']);
  });

  it('hands out many lines of one chunk in order', () => {
    const many = Array.from({ length: 1000 }, (_, i) => `{"i":${i}}`);
    const { lines } = frame(64, [`${many.join('\n')}\n`]);
    expect(lines).toEqual(many);
  });

  it('copies what it holds: a caller reusing its chunk buffer does not change a held line', () => {
    const framer = new LineFramer(1024);
    const lines: string[] = [];
    const chunk = Buffer.from('abc');
    framer.push(
      chunk,
      (l) => lines.push(l.toString()),
      () => undefined,
    );
    chunk.write('xyz');
    framer.push(
      Buffer.from('def\n'),
      (l) => lines.push(l.toString()),
      () => undefined,
    );
    expect(lines).toEqual(['abcdef']);
  });

  it('reports a line over the limit once, with its size, when it ends in the same chunk', () => {
    const { events } = frame(10, ['ok\n', `${'x'.repeat(25)}\n`, 'next\n']);
    expect(events).toEqual(['line:ok', 'over:25', 'line:next']);
  });

  it(
    'reports a line over the limit while it is still arriving (size seen so far), skips the rest of it, and ' +
      'recovers after its newline',
    () => {
      const { events, framer } = frame(10, [
        'head\n',
        'x'.repeat(8),
        'x'.repeat(8),
        'x'.repeat(100),
        'x'.repeat(100),
        'tail-of-big\n',
        'after\n',
      ]);
      expect(events).toEqual(['line:head', 'over:16', 'line:after']);
      expect(framer.pendingBytes).toBe(0);
    },
  );

  it('a line exactly at the limit passes; one byte more does not', () => {
    const { events } = frame(5, ['12345\n', '123456\n', '1234', '5\n', '1234', '56\n']);
    expect(events).toEqual(['line:12345', 'over:6', 'line:12345', 'over:6']);
  });

  it('memory stays bounded while an over-limit line goes on', () => {
    const framer = new LineFramer(16);
    let reports = 0;
    for (let i = 0; i < 100; i++) {
      framer.push(
        Buffer.alloc(1000, 0x61),
        () => undefined,
        () => reports++,
      );
      expect(framer.pendingBytes).toBe(0);
    }
    expect(reports).toBe(1);
  });
});
