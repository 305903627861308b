/**
 * Hands out identity slots (uids). Runtime-wide, not per session: RLIMIT_NPROC counts processes
 * per uid across the whole host, so two sessions must never give the same uid to two tenants.
 */
import { BoxError } from '../errors/box-error.js';
import { SLOT_COUNT } from './identity.js';

export class SlotAllocator {
  private readonly used = new Set<number>();
  private next = 0;

  constructor(private readonly size: number = SLOT_COUNT) {}

  acquire(): number {
    for (let i = 0; i < this.size; i++) {
      const slot = (this.next + i) % this.size;
      if (!this.used.has(slot)) {
        this.used.add(slot);
        // Round-robin: a freed uid is reused as late as possible.
        this.next = (slot + 1) % this.size;
        return slot;
      }
    }
    throw new BoxError(
      'SLOTS_EXHAUSTED',
      'process_start',
      `All ${this.size} identity slots are in use; remove servers before adding more`,
    );
  }

  /** Marks a slot as taken (adopting a session that already uses it). */
  claim(slot: number): void {
    this.used.add(slot);
  }

  release(slot: number): void {
    this.used.delete(slot);
  }

  get inUse(): number {
    return this.used.size;
  }
}
