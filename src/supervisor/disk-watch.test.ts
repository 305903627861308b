import { describe, expect, it } from 'vitest';
import type { DiskUsage, Identity, Session } from '../runtime/types.js';
import { DiskWatch, quotaBreach, type DiskTarget, type DiskWatched } from './disk-watch.js';

const quota = { maxBytes: 100, maxEntries: 10 };

const identity = (uid: number): Identity => ({
  slot: uid,
  uid,
  gid: uid,
  root: `/r/${uid}`,
  home: '',
  tmp: '',
  workspace: '',
});

/** A session whose diskUsage answers from `usage` (or throws), recording the order of the calls. */
function fakeSession(usage: Map<number, DiskUsage | Error>, calls: number[], inFlight = { now: 0, max: 0 }): Session {
  return {
    diskUsage: async (id: Identity): Promise<DiskUsage> => {
      calls.push(id.uid);
      inFlight.now++;
      inFlight.max = Math.max(inFlight.max, inFlight.now);
      await new Promise((r) => setTimeout(r, 5));
      inFlight.now--;
      const u = usage.get(id.uid);
      if (u instanceof Error) throw u;
      return u ?? { bytes: 0, entries: 0 };
    },
  } as unknown as Session;
}

function server(name: string, target: DiskTarget | null, over: string[]): DiskWatched {
  return { name, diskTarget: () => target, onDiskOverQuota: () => over.push(name) };
}

describe('quotaBreach', () => {
  it.each([
    { usage: { bytes: 100, entries: 10 }, breach: null },
    { usage: { bytes: 101, entries: 1 }, breach: 'bytes' },
    { usage: { bytes: 1, entries: 11 }, breach: 'entries' },
    { usage: { bytes: 500, entries: 500 }, breach: 'bytes' },
  ] as const)('$usage → $breach', ({ usage, breach }) => {
    expect(quotaBreach(usage, quota)).toBe(breach);
  });
});

describe('DiskWatch', () => {
  it('hands back only the servers above their quota, measuring one at a time and skipping idle ones', async () => {
    const usage = new Map<number, DiskUsage | Error>([
      [1, { bytes: 50, entries: 5 }],
      [2, { bytes: 150, entries: 5 }],
      [3, { bytes: 50, entries: 50 }],
    ]);
    const calls: number[] = [];
    const inFlight = { now: 0, max: 0 };
    const session = fakeSession(usage, calls, inFlight);
    const over: string[] = [];
    const servers = [1, 2, 3].map((uid) => server(`s${uid}`, { session, identity: identity(uid), quota }, over));
    servers.push(server('idle', null, over));
    const watch = new DiskWatch({ intervalMs: 0, servers: () => servers });
    await watch.sweep();
    expect(over).toEqual(['s2', 's3']);
    expect(calls).toEqual([1, 2, 3]);
    expect(inFlight.max).toBe(1);
  });

  it('a measure that fails is reported and leaves the server alone; the others are still measured', async () => {
    const calls: number[] = [];
    const session = fakeSession(
      new Map<number, DiskUsage | Error>([
        [1, new Error('exec refused')],
        [2, { bytes: 1000, entries: 1 }],
      ]),
      calls,
    );
    const over: string[] = [];
    const errors: string[] = [];
    const servers = [1, 2].map((uid) => server(`s${uid}`, { session, identity: identity(uid), quota }, over));
    await new DiskWatch({
      intervalMs: 0,
      servers: () => servers,
      onError: (name, err) => errors.push(`${name}: ${String(err)}`),
    }).sweep();
    expect(errors).toEqual(['s1: Error: exec refused']);
    expect(over).toEqual(['s2']);
  });

  it('a server whose identity changed while it was measured is not handed the old figure', async () => {
    const session = fakeSession(new Map([[1, { bytes: 1000, entries: 1 }]]), []);
    let target: DiskTarget | null = { session, identity: identity(1), quota };
    const over: string[] = [];
    const s: DiskWatched = {
      name: 's',
      diskTarget: () => {
        const t = target;
        target = { session, identity: identity(9), quota }; // restarted with new folders meanwhile
        return t;
      },
      onDiskOverQuota: () => over.push('s'),
    };
    await new DiskWatch({ intervalMs: 0, servers: () => [s] }).sweep();
    expect(over).toEqual([]);
  });

  it('runs every interval until closed, and close() waits for the sweep in progress', async () => {
    const calls: number[] = [];
    const session = fakeSession(new Map(), calls);
    const watch = new DiskWatch({
      intervalMs: 10,
      servers: () => [server('s', { session, identity: identity(1), quota }, [])],
    });
    watch.start();
    watch.start(); // idempotent
    await new Promise((r) => setTimeout(r, 120));
    await watch.close();
    const seen = calls.length;
    expect(seen).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.length).toBe(seen);
    await watch.close();
  });

  it('an interval of 0 never measures', async () => {
    const calls: number[] = [];
    const watch = new DiskWatch({
      intervalMs: 0,
      servers: () => [server('s', { session: fakeSession(new Map(), calls), identity: identity(1), quota }, [])],
    });
    watch.start();
    await new Promise((r) => setTimeout(r, 30));
    await watch.close();
    expect(calls).toEqual([]);
  });
});
