// Counts in progress per key (requests a client has in flight), in memory every thread
// shares: keys hash into groups of 8 slots under one lock each, a slot whose count is 0
// is free. A key that finds its group full is not counted (and `overflows` says so):
// the table is sized so that this means more clients at once than it was made for.

import { lock, nameHash, type SharedArena } from "../../shared-arena.js";

const GROUP = 8;

export class CountTable {
  /** Keys that found their group full and went uncounted (this thread). */
  overflows = 0;
  private readonly groups: number;
  private readonly locks: Int32Array;
  /** Per slot: hash a, hash b, count. */
  private readonly slots: Int32Array;

  constructor(arena: SharedArena, name: string, keys: number) {
    const groups = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(keys / GROUP))));
    const n = groups * GROUP;
    const { offset } = arena.region(`count:${name}`, (groups + 3 * n) * 4);
    this.groups = groups;
    this.locks = new Int32Array(arena.buffer, offset, groups);
    this.slots = new Int32Array(arena.buffer, offset + groups * 4, 3 * n);
  }

  /**
   * Adds one for `key` unless it has `max` already: true when added (give it back with
   * release), false when at the limit. A key that cannot be counted is let through.
   */
  acquire(key: string, max: number): boolean | undefined {
    const [a, b] = nameHash(key);
    const g = a & (this.groups - 1);
    const { slots, locks } = this;
    lock(locks, g);
    try {
      let free = -1;
      for (let s = g * GROUP, end = s + GROUP; s < end; s++) {
        const at = 3 * s;
        if (slots[at] === a && slots[at + 1] === b && slots[at + 2]! > 0) {
          if (slots[at + 2]! >= max) return false;
          slots[at + 2] = slots[at + 2]! + 1;
          return true;
        }
        if (free < 0 && slots[at + 2] === 0) free = at;
      }
      if (free < 0) {
        this.overflows++;
        return undefined;
      }
      slots[free] = a;
      slots[free + 1] = b;
      slots[free + 2] = 1;
      return true;
    } finally {
      Atomics.store(locks, g, 0);
    }
  }

  /** Gives back one that acquire() added for `key`. */
  release(key: string): void {
    const [a, b] = nameHash(key);
    const g = a & (this.groups - 1);
    const { slots, locks } = this;
    lock(locks, g);
    try {
      for (let s = g * GROUP, end = s + GROUP; s < end; s++) {
        const at = 3 * s;
        if (slots[at] === a && slots[at + 1] === b && slots[at + 2]! > 0) {
          slots[at + 2] = slots[at + 2]! - 1;
          return;
        }
      }
    } finally {
      Atomics.store(locks, g, 0);
    }
  }
}
