import { describe, expect, it } from 'vitest';
import { ByteRing } from './byte-ring.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function ringWith(capacity: number, writes: string[]): ByteRing {
  const ring = new ByteRing(capacity);
  for (const w of writes) ring.write(b(w));
  return ring;
}

describe('ByteRing', () => {
  describe('constructor', () => {
    it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects capacity %s', (capacity) => {
      expect(() => new ByteRing(capacity)).toThrow(RangeError);
      expect(() => new ByteRing(capacity)).toThrow(/capacity must be a positive integer/);
    });

    it.each([1, 8, 1024 * 1024])('accepts capacity %i', (capacity) => {
      const ring = new ByteRing(capacity);
      expect(ring.capacity).toBe(capacity);
      expect(ring.length).toBe(0);
      expect(ring.stats).toEqual({ total: 0, dropped: 0 });
      expect(ring.toString()).toBe('');
    });
  });

  describe('keeps the last capacity bytes', () => {
    it.each([
      { name: 'under capacity', capacity: 10, writes: ['abc', 'def'], held: 'abcdef', dropped: 0 },
      { name: 'exactly at capacity', capacity: 6, writes: ['abc', 'def'], held: 'abcdef', dropped: 0 },
      { name: 'overflow drops part of the head chunk', capacity: 5, writes: ['abc', 'def'], held: 'bcdef', dropped: 1 },
      {
        name: 'overflow drops whole head chunks',
        capacity: 4,
        writes: ['ab', 'cd', 'ef', 'gh'],
        held: 'efgh',
        dropped: 4,
      },
      {
        name: 'overflow drops whole and partial chunks',
        capacity: 5,
        writes: ['ab', 'cd', 'efg', 'h'],
        held: 'defgh',
        dropped: 3,
      },
      { name: 'a single chunk exactly capacity', capacity: 4, writes: ['wxyz'], held: 'wxyz', dropped: 0 },
      { name: 'a single chunk larger than capacity', capacity: 4, writes: ['abcdefgh'], held: 'efgh', dropped: 4 },
      { name: 'a huge chunk after held data', capacity: 3, writes: ['ab', 'cdefg'], held: 'efg', dropped: 4 },
      { name: 'small writes after a huge chunk', capacity: 3, writes: ['abcdef', 'g', 'h'], held: 'fgh', dropped: 5 },
      { name: 'empty writes change nothing', capacity: 3, writes: ['', 'ab', ''], held: 'ab', dropped: 0 },
      { name: 'capacity 1', capacity: 1, writes: ['a', 'b', 'cd'], held: 'd', dropped: 3 },
    ])('$name', ({ capacity, writes, held, dropped }) => {
      const ring = ringWith(capacity, writes);
      const total = writes.reduce((n, w) => n + Buffer.byteLength(w), 0);
      expect(ring.toBuffer().toString('utf8')).toBe(held);
      expect(ring.length).toBe(Buffer.byteLength(held));
      expect(ring.length).toBeLessThanOrEqual(capacity);
      expect(ring.stats).toEqual({ total, dropped });
      expect(ring.stats.total - ring.stats.dropped).toBe(ring.length);
    });

    it('never holds more than capacity across many random writes and keeps exactly the tail', () => {
      const capacity = 37;
      const ring = new ByteRing(capacity);
      let all = '';
      let seed = 12345;
      const rand = (): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed;
      };
      for (let i = 0; i < 500; i++) {
        const len = rand() % 60;
        const chunk = String.fromCharCode(...Array.from({ length: len }, () => 97 + (rand() % 26)));
        ring.write(b(chunk));
        all += chunk;
        expect(ring.length).toBe(Math.min(capacity, all.length));
        expect(ring.toBuffer().toString('latin1')).toBe(all.slice(-capacity));
      }
      expect(ring.stats).toEqual({ total: all.length, dropped: Math.max(0, all.length - capacity) });
    });
  });

  describe('toString', () => {
    it.each([
      // '€' is 3 bytes (e2 82 ac); keeping 1 or 2 of them leaves an invalid head.
      { name: 'first byte of a 3-byte char dropped', capacity: 5, writes: ['€abc'], expected: 'abc' },
      { name: 'first two bytes of a 3-byte char dropped', capacity: 4, writes: ['€abc'], expected: 'abc' },
      { name: 'cut inside a 4-byte char', capacity: 4, writes: ['😀xy'], expected: 'xy' },
      { name: 'cut on a char boundary keeps the char', capacity: 6, writes: ['x€abc'], expected: '€abc' },
      { name: 'cut inside a char across chunks', capacity: 4, writes: ['a€', 'bc'], expected: 'bc' },
    ])('drops a character cut by truncation: $name', ({ capacity, writes, expected }) => {
      const ring = ringWith(capacity, writes);
      expect(ring.stats.dropped).toBeGreaterThan(0);
      expect(ring.toString()).toBe(expected);
      expect(ring.toString()).not.toContain('\uFFFD');
    });

    it('keeps a leading U+FFFD when nothing was dropped (it is the real content)', () => {
      const ring = ringWith(16, ['\uFFFDok']);
      expect(ring.stats.dropped).toBe(0);
      expect(ring.toString()).toBe('\uFFFDok');
    });

    it('keeps invalid bytes that are not at the cut', () => {
      const ring = new ByteRing(16);
      ring.write(Buffer.from([0x61, 0xff, 0x62]));
      expect(ring.toString()).toBe('a\uFFFDb');
    });
  });

  describe('tailLines', () => {
    it.each([
      { name: 'nothing written', capacity: 64, writes: [], n: 3, expected: [] },
      { name: 'fewer lines than asked', capacity: 64, writes: ['a\nb\n'], n: 5, expected: ['a', 'b'] },
      { name: 'last n whole lines', capacity: 64, writes: ['a\nb\nc\nd\n'], n: 2, expected: ['c', 'd'] },
      { name: 'a trailing partial line counts', capacity: 64, writes: ['a\nb\nc'], n: 2, expected: ['b', 'c'] },
      { name: 'a trailing partial line alone', capacity: 64, writes: ['partial'], n: 1, expected: ['partial'] },
      {
        name: 'lines across chunks',
        capacity: 64,
        writes: ['one\ntw', 'o\nthr', 'ee\n'],
        n: 3,
        expected: ['one', 'two', 'three'],
      },
      { name: 'empty lines are lines', capacity: 64, writes: ['a\n\nb\n'], n: 3, expected: ['a', '', 'b'] },
      // Held: "ne\ntwo\nthree\n" — "ne" is the cut end of "one" and is not a whole line.
      {
        name: 'the cut first line is dropped',
        capacity: 13,
        writes: ['one\ntwo\nthree\n'],
        n: 10,
        expected: ['two', 'three'],
      },
      {
        name: 'cut first line dropped, partial last kept',
        capacity: 10,
        writes: ['one\ntwo\nthr'],
        n: 10,
        expected: ['two', 'thr'],
      },
    ])('$name', ({ capacity, writes, n, expected }) => {
      expect(ringWith(capacity, writes).tailLines(n)).toEqual(expected);
    });
  });
});
