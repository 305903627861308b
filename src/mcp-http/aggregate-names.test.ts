import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { namespaceNames, type NameOrigin } from './aggregate-names.js';

const PUBLIC = /^[A-Za-z0-9_-]{1,64}$/;
const hex8 = (server: string, name: string): string =>
  createHash('sha256').update(`${server}\0${name}`).digest('hex').slice(0, 8);

/** A small deterministic PRNG, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('namespaceNames', () => {
  it('joins server and name with __ and replaces characters outside [A-Za-z0-9_-]', () => {
    const { names, publicName, warnings } = namespaceNames([
      { server: 'files', name: 'read' },
      { server: 'my.server', name: 'do thing/now' },
      { server: 'u', name: 'café☕' },
    ]);
    expect(publicName('files', 'read')).toBe('files__read');
    expect(publicName('my.server', 'do thing/now')).toBe('my_server__do_thing_now');
    expect(publicName('u', 'café☕')).toBe('u__caf__');
    expect(publicName('files', 'missing')).toBeUndefined();
    expect(names.get('my_server__do_thing_now')).toEqual({ server: 'my.server', name: 'do thing/now' });
    expect(warnings).toEqual([]);
  });

  it('cuts a name longer than 64 and ends it with - and 8 hex of sha256(server \\0 name)', () => {
    const long = 'x'.repeat(100);
    const { publicName } = namespaceNames([{ server: 'srv', name: long }]);
    const got = publicName('srv', long);
    expect(got).toHaveLength(64);
    expect(got).toBe(`${`srv__${long}`.slice(0, 55)}-${hex8('srv', long)}`);
    // exactly 64 characters is kept as it is
    const exact = 'y'.repeat(64 - 'srv__'.length);
    expect(namespaceNames([{ server: 'srv', name: exact }]).publicName('srv', exact)).toBe(`srv__${exact}`);
  });

  it('keeps two long names that share a prefix distinct', () => {
    const a = `${'p'.repeat(80)}a`;
    const b = `${'p'.repeat(80)}b`;
    const { publicName, warnings } = namespaceNames([
      { server: 's', name: a },
      { server: 's', name: b },
    ]);
    expect(publicName('s', a)).not.toBe(publicName('s', b));
    expect(warnings).toEqual([]);
  });

  it('resolves a collision the same way whatever the input order, and warns once naming both', () => {
    const entries: NameOrigin[] = [
      { server: 'a_b', name: 'x' },
      { server: 'a.b', name: 'x' },
      { server: 'a-b', name: 'x' },
    ];
    const first = namespaceNames(entries);
    // '-' (0x2d) < '.' (0x2e) < '_' (0x5f): a-b__x has no rival; a.b sorts before a_b and keeps a_b__x
    expect(first.publicName('a-b', 'x')).toBe('a-b__x');
    expect(first.publicName('a.b', 'x')).toBe('a_b__x');
    expect(first.publicName('a_b', 'x')).toBe(`a_b__x-${hex8('a_b', 'x')}`);
    expect(first.warnings).toEqual([
      `name collision on "a_b__x": server "a.b" name "x" keeps "a_b__x", ` +
        `server "a_b" name "x" is named "a_b__x-${hex8('a_b', 'x')}"`,
    ]);
    const random = rng(7);
    for (let i = 0; i < 20; i++) {
      const again = namespaceNames(shuffle(entries, random));
      expect([...again.names.entries()]).toEqual([...first.names.entries()]);
      expect(again.warnings).toEqual(first.warnings);
    }
  });

  it('treats the same pair twice as one entry, with no warning', () => {
    const { names, warnings } = namespaceNames([
      { server: 's', name: 't' },
      { server: 's', name: 't' },
    ]);
    expect([...names.keys()]).toEqual(['s__t']);
    expect(warnings).toEqual([]);
  });

  it('never throws and keeps every name valid and unique over many random inputs', () => {
    const random = rng(42);
    const alphabet = ['a', 'b', 'Z', '0', '_', '-', '.', ' ', '/', 'é', '☕', '😀', '\0', '__'];
    const pick = (max: number): string => {
      const n = Math.floor(random() * max);
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(random() * alphabet.length)] ?? '';
      return s;
    };
    for (let round = 0; round < 200; round++) {
      const entries: NameOrigin[] = [];
      const count = 1 + Math.floor(random() * 30);
      for (let i = 0; i < count; i++) {
        const lengthClass = random();
        const name = lengthClass < 0.1 ? 'n'.repeat(500) : pick(lengthClass < 0.5 ? 4 : 90);
        entries.push({ server: pick(random() < 0.5 ? 3 : 70), name });
      }
      // add a few exact duplicates and collisions by construction
      if (entries[0]) entries.push({ ...entries[0] });
      entries.push({ server: 'q.q', name: 'z' }, { server: 'q_q', name: 'z' });

      const result = namespaceNames(entries);
      const pairs = new Set(entries.map((e) => JSON.stringify([e.server, e.name])));
      expect(result.names.size).toBe(pairs.size);
      const seen = new Set<string>();
      for (const e of entries) {
        const got = result.publicName(e.server, e.name);
        expect(got).toMatch(PUBLIC);
        expect(result.names.get(got as string)).toEqual({ server: e.server, name: e.name });
        seen.add(got as string);
      }
      expect(seen.size).toBe(pairs.size);
      expect(result.warnings.length).toBeGreaterThanOrEqual(1);

      const reordered = namespaceNames(shuffle(entries, random));
      expect([...reordered.names.entries()]).toEqual([...result.names.entries()]);
      expect(reordered.warnings).toEqual(result.warnings);
    }
  });

  it('handles empty input and empty names', () => {
    expect(namespaceNames([]).names.size).toBe(0);
    expect(namespaceNames([{ server: '', name: '' }]).publicName('', '')).toBe('__');
  });
});
