import { afterEach, describe, expect, it, vi } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { McpSessionTable } from './mcp-sessions.js';

const tables: McpSessionTable<string>[] = [];
function table(perScope = 2, idleMs = 1000): McpSessionTable<string> {
  const t = new McpSessionTable<string>({ perScope, idleMs });
  tables.push(t);
  return t;
}
const closer = () => vi.fn(() => Promise.resolve());

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(tables.splice(0).map((t) => t.closeAll()));
});

describe('McpSessionTable', () => {
  it('open → bind → find in the same scope', () => {
    const t = table();
    const s = t.open('srv', 'transport-1', closer());
    expect(s.id).toBeNull();
    expect(s.scope).toBe('srv');
    t.bind(s, 'id-1');
    expect(s.id).toBe('id-1');
    expect(t.find('srv', 'id-1')).toBe(s);
    expect(t.find('srv', 'id-1')?.value).toBe('transport-1');
    expect(t.size).toBe(1);
    expect(t.inScope('srv')).toEqual([s]);
  });

  it('an id is not valid in another scope, and an unknown id finds nothing', () => {
    const t = table();
    const s = t.open('a', 'v', closer());
    t.bind(s, 'id-1');
    expect(t.find('b', 'id-1')).toBeUndefined();
    expect(t.find('a', 'id-2')).toBeUndefined();
    expect(t.inScope('b')).toEqual([]);
  });

  it('forget: the id finds nothing from then on, and the session is no longer counted', () => {
    const t = table();
    const close = closer();
    const s = t.open('a', 'v', close);
    t.bind(s, 'id-1');
    t.forget(s);
    expect(t.find('a', 'id-1')).toBeUndefined();
    expect(t.size).toBe(0);
    expect(t.inScope('a')).toEqual([]);
    expect(close).not.toHaveBeenCalled();
    // Forgetting twice is harmless.
    t.forget(s);
    expect(t.size).toBe(0);
  });

  it('per-scope limit: throws BoxError CONFLICT, counts unbound sessions, and frees after forget', () => {
    const t = table(2);
    const s1 = t.open('a', 'v1', closer());
    t.bind(s1, 'id-1');
    t.open('a', 'v2', closer()); // not bound yet: still counted
    let err: unknown;
    try {
      t.open('a', 'v3', closer());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BoxError);
    expect((err as BoxError).code).toBe('CONFLICT');
    expect((err as BoxError).message).toContain('"a"');
    // Another scope has its own room.
    expect(() => t.open('b', 'v', closer())).not.toThrow();
    t.forget(s1);
    expect(() => t.open('a', 'v3', closer())).not.toThrow();
    expect(t.size).toBe(3);
  });

  it('sweep ends sessions idle for longer than idleMs (close called) and frees their room', () => {
    const t = table(1, 1000);
    const close = closer();
    const s = t.open('a', 'v', close);
    t.bind(s, 'id-1');
    expect(t.sweep(Date.now() + 500)).toBe(0);
    expect(close).not.toHaveBeenCalled();
    expect(t.sweep(Date.now() + 10_000)).toBe(1);
    expect(close).toHaveBeenCalledTimes(1);
    expect(t.find('a', 'id-1')).toBeUndefined();
    expect(t.size).toBe(0);
    expect(() => t.open('a', 'v2', closer())).not.toThrow();
  });

  it('a close that rejects during sweep is not an unhandled rejection', async () => {
    const t = table(1, 1000);
    const close = vi.fn(() => Promise.reject(new Error('boom')));
    t.open('a', 'v', close);
    expect(t.sweep(Date.now() + 10_000)).toBe(1);
    await new Promise((r) => setTimeout(r, 0));
    expect(close).toHaveBeenCalledTimes(1);
  });

  it('open on a full scope sweeps idle sessions first', () => {
    const t = table(1, 1000);
    const close = closer();
    const s = t.open('a', 'v', close);
    t.bind(s, 'old');
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now + 10_000);
    const s2 = t.open('a', 'v2', closer());
    expect(close).toHaveBeenCalledTimes(1);
    expect(t.find('a', 'old')).toBeUndefined();
    expect(t.inScope('a')).toEqual([s2]);
  });

  it('find counts as activity: a session found recently survives the sweep', () => {
    const t = table(2, 1000);
    const start = Date.now();
    const now = vi.spyOn(Date, 'now').mockReturnValue(start);
    const keptClose = closer();
    const idleClose = closer();
    const kept = t.open('a', 'kept', keptClose);
    t.bind(kept, 'kept');
    const idle = t.open('a', 'idle', idleClose);
    t.bind(idle, 'idle');
    now.mockReturnValue(start + 900);
    expect(t.find('a', 'kept')).toBe(kept);
    expect(kept.lastSeen).toBe(start + 900);
    expect(t.sweep(start + 1500)).toBe(1);
    expect(idleClose).toHaveBeenCalledTimes(1);
    expect(keptClose).not.toHaveBeenCalled();
    expect(t.find('a', 'kept')).toBe(kept);
    expect(t.find('a', 'idle')).toBeUndefined();
  });

  it('a find in the wrong scope does not refresh the session', () => {
    const t = table(2, 1000);
    const s = t.open('a', 'v', closer());
    t.bind(s, 'id');
    s.lastSeen = 0;
    expect(t.find('b', 'id')).toBeUndefined();
    expect(s.lastSeen).toBe(0);
  });

  it('closeAll closes every session (bound or not, every scope) and empties the table', async () => {
    const t = table(2);
    const c1 = closer();
    const c2 = closer();
    const c3 = vi.fn(() => Promise.reject(new Error('x')));
    const closes = [c1, c2, c3];
    const s1 = t.open('a', 'v1', c1);
    t.bind(s1, 'id-1');
    t.open('a', 'v2', c2);
    t.open('b', 'v3', c3);
    await t.closeAll();
    for (const c of closes) expect(c).toHaveBeenCalledTimes(1);
    expect(t.size).toBe(0);
    expect(t.find('a', 'id-1')).toBeUndefined();
    // The table can be used again.
    expect(() => t.open('a', 'v', closer())).not.toThrow();
  });

  it('bind is once only, and a session forgotten before its initialize was answered is never found', () => {
    const table = new McpSessionTable<string>({ perScope: 2, idleMs: 1000 });
    tables.push(table);
    const s = table.open('srv', 'v', () => Promise.resolve());
    table.bind(s, 'first');
    table.bind(s, 'second');
    expect(table.find('srv', 'second')).toBeUndefined();
    expect(table.find('srv', 'first')).toBe(s);
    const late = table.open('srv', 'w', () => Promise.resolve());
    table.forget(late);
    table.bind(late, 'late');
    expect(table.find('srv', 'late')).toBeUndefined();
  });
});
