// A rate limit's counts for many keys, in memory every thread shares (a region of the
// SharedArena): the generic cell rate algorithm, one "theoretical arrival time" per key.
// A key may take a request when its TAT is at most `burst - 1` emission intervals ahead
// of now; taking one moves the TAT an interval on. Keys hash into groups of 8 slots under
// one lock each; a key with no slot takes a free or expired one, else the one with the
// oldest TAT (an eviction, counted: that key starts again with a full bucket).

import { lock, nameHash, type SharedArena } from "../../shared-arena.js";

const GROUP = 8;

export interface GcraRates {
  /** Milliseconds between requests at the steady rate (interval / requests). */
  readonly emissionMs: number;
  /** Requests that may come at once (the bucket's size). */
  readonly burst: number;
}

export class GcraTable {
  /** After take(): requests the key may still make now (allowed), else 0. */
  remaining = 0;
  /** After take(): ms until the key's bucket is full again. */
  resetMs = 0;
  /** After a refused take(): ms until one more request is allowed. */
  retryAfterMs = 0;
  /** Keys that lost their slot to another (the table was full in their group). */
  evictions = 0;
  private readonly groups: number;
  private readonly locks: Int32Array;
  private readonly hashes: Int32Array;
  private readonly tats: Float64Array;

  /** `name` names the region: every thread that makes a table of that name shares it. */
  constructor(arena: SharedArena, name: string, slots: number) {
    const groups = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(slots / GROUP))));
    const n = groups * GROUP;
    const bytes = n * 8 + (groups + 2 * n) * 4;
    const { offset } = arena.region(`gcra:${name}`, bytes);
    this.groups = groups;
    this.tats = new Float64Array(arena.buffer, offset, n);
    this.locks = new Int32Array(arena.buffer, offset + n * 8, groups);
    this.hashes = new Int32Array(arena.buffer, offset + n * 8 + groups * 4, 2 * n);
  }

  /** The number of keys the table holds at most. */
  get capacity(): number {
    return this.groups * GROUP;
  }

  /** Takes one request for `key` at `now` (ms): whether it is allowed; see the fields. */
  take(key: string, now: number, rates: GcraRates): boolean {
    const [a, b] = nameHash(key);
    const g = a & (this.groups - 1);
    const { hashes, tats, locks } = this;
    lock(locks, g);
    try {
      let slot = -1;
      let free = -1;
      let oldest = -1;
      for (let s = g * GROUP, end = s + GROUP; s < end; s++) {
        const ha = hashes[2 * s];
        const hb = hashes[2 * s + 1];
        if (ha === a && hb === b) {
          slot = s;
          break;
        }
        if (free < 0 && ((ha === 0 && hb === 0) || tats[s]! <= now)) free = s;
        if (oldest < 0 || tats[s]! < tats[oldest]!) oldest = s;
      }
      if (slot < 0) {
        slot = free >= 0 ? free : oldest;
        if (free < 0) this.evictions++;
        hashes[2 * slot] = a;
        hashes[2 * slot + 1] = b;
        tats[slot] = now;
      }
      const limitMs = rates.burst * rates.emissionMs;
      const next = Math.max(tats[slot]!, now) + rates.emissionMs;
      if (next - now > limitMs) {
        this.remaining = 0;
        this.retryAfterMs = next - now - limitMs;
        this.resetMs = next - rates.emissionMs - now;
        return false;
      }
      tats[slot] = next;
      this.remaining = Math.floor((limitMs - (next - now)) / rates.emissionMs);
      this.resetMs = next - now;
      this.retryAfterMs = 0;
      return true;
    } finally {
      Atomics.store(locks, g, 0);
    }
  }
}
