import { describe, expect, it } from 'vitest';
import { BoxError } from '../errors/box-error.js';
import { SLOT_COUNT } from './identity.js';
import { SlotAllocator } from './slot-allocator.js';

type Op = { acquire: number } | { release: number } | { claim: number } | 'exhausted';

/** Runs a script of operations; `acquire: n` expects acquire() to return n. */
function run(size: number, ops: Op[]): SlotAllocator {
  const alloc = new SlotAllocator(size);
  ops.forEach((op, i) => {
    if (op === 'exhausted') {
      expect(() => alloc.acquire(), `step ${i}`).toThrow(BoxError);
    } else if ('acquire' in op) {
      expect(alloc.acquire(), `step ${i}`).toBe(op.acquire);
    } else if ('release' in op) {
      alloc.release(op.release);
    } else {
      alloc.claim(op.claim);
    }
  });
  return alloc;
}

describe('SlotAllocator', () => {
  it('hands out unique slots until every slot of the default size is used', () => {
    const alloc = new SlotAllocator();
    const slots = Array.from({ length: SLOT_COUNT }, () => alloc.acquire());
    expect(new Set(slots).size).toBe(SLOT_COUNT);
    expect(Math.min(...slots)).toBe(0);
    expect(Math.max(...slots)).toBe(SLOT_COUNT - 1);
    expect(alloc.inUse).toBe(SLOT_COUNT);
    expect(() => alloc.acquire()).toThrow(BoxError);
  });

  it.each<{ name: string; size: number; ops: Op[]; inUse: number }>([
    { name: 'sequential acquires', size: 4, ops: [{ acquire: 0 }, { acquire: 1 }, { acquire: 2 }], inUse: 3 },
    {
      name: 'a freed slot is not reused while others are free',
      size: 4,
      ops: [{ acquire: 0 }, { acquire: 1 }, { release: 0 }, { acquire: 2 }, { acquire: 3 }, { acquire: 0 }],
      inUse: 4,
    },
    {
      name: 'wrap-around skips used slots',
      size: 3,
      ops: [{ acquire: 0 }, { acquire: 1 }, { acquire: 2 }, { release: 1 }, { acquire: 1 }, 'exhausted'],
      inUse: 3,
    },
    {
      name: 'after wrap-around freed slots are reused in ring order, not release order',
      size: 4,
      ops: [
        { acquire: 0 },
        { acquire: 1 },
        { acquire: 2 },
        { acquire: 3 },
        { release: 2 },
        { release: 0 },
        { acquire: 0 },
        { acquire: 2 },
      ],
      inUse: 4,
    },
    {
      name: 'acquisition keeps rotating through the ring',
      size: 3,
      ops: [
        { acquire: 0 },
        { acquire: 1 },
        { release: 1 },
        { acquire: 2 },
        { release: 0 },
        { acquire: 0 },
        { release: 2 },
        { acquire: 1 },
      ],
      inUse: 2,
    },
    {
      name: 'claimed slots are skipped',
      size: 4,
      ops: [{ claim: 0 }, { claim: 2 }, { acquire: 1 }, { acquire: 3 }, 'exhausted'],
      inUse: 4,
    },
    {
      name: 'claim then release makes it available',
      size: 2,
      ops: [{ claim: 0 }, { claim: 1 }, 'exhausted', { release: 1 }, { acquire: 1 }],
      inUse: 2,
    },
    { name: 'claiming twice counts once', size: 4, ops: [{ claim: 3 }, { claim: 3 }], inUse: 1 },
    {
      name: 'releasing a free slot is harmless',
      size: 2,
      ops: [{ release: 1 }, { acquire: 0 }, { release: 0 }, { release: 0 }],
      inUse: 0,
    },
    {
      name: 'size 1 reuses its only slot',
      size: 1,
      ops: [{ acquire: 0 }, 'exhausted', { release: 0 }, { acquire: 0 }],
      inUse: 1,
    },
    { name: 'size 0 is always exhausted', size: 0, ops: ['exhausted'], inUse: 0 },
  ])('$name', ({ size, ops, inUse }) => {
    expect(run(size, ops).inUse).toBe(inUse);
  });

  it('throws SLOTS_EXHAUSTED in phase process_start naming the size', () => {
    const alloc = new SlotAllocator(2);
    alloc.acquire();
    alloc.acquire();
    let caught: unknown;
    try {
      alloc.acquire();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BoxError);
    const err = caught as BoxError;
    expect(err.code).toBe('SLOTS_EXHAUSTED');
    expect(err.phase).toBe('process_start');
    expect(err.message).toContain('All 2 identity slots are in use');
    expect(alloc.inUse).toBe(2);
  });

  it('tracks inUse through acquire, claim and release', () => {
    const alloc = new SlotAllocator(8);
    expect(alloc.inUse).toBe(0);
    const a = alloc.acquire();
    alloc.claim(5);
    expect(alloc.inUse).toBe(2);
    alloc.release(a);
    expect(alloc.inUse).toBe(1);
    alloc.release(5);
    expect(alloc.inUse).toBe(0);
  });
});
