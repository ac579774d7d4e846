// A small cache of decisions the auth layers have taken (a verified token, a checked
// password, the auth service's answer), each until a time of its own, holding at most
// `max` entries: when full, the entry stored longest ago goes first (a Map keeps
// insertion order, so that is its first key). One per layer and thread.

export class BoundedCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    /** Most entries held; 0 disables the cache. */
    readonly max: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The value stored under `key` if it is still good at `now` (an expired one is dropped). */
  get(key: string, now: number): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (now < e.until) return e.value;
    this.entries.delete(key);
    return undefined;
  }

  /** Stores `value` under `key` until `until` (ms since the epoch). */
  set(key: string, value: V, until: number): void {
    if (this.max === 0) return;
    const entries = this.entries;
    // Re-stored, it moves to the end: the oldest entries stay first.
    entries.delete(key);
    while (entries.size >= this.max) entries.delete(entries.keys().next().value!);
    entries.set(key, { value, until });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
