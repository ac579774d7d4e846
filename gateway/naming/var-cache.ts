// Keeps one Var per key while it is in use, so that looking the same name up twice
// yields the same Var (bindings compare bound names by identity). An entry leaves the
// cache when its last observer leaves; entries nobody observes are capped in number (the
// oldest go first). Observed entries are never dropped: they are bounded by what observes
// them (the binding cache).

import type { Listener, Var } from "./var.js";

interface Entry<K, T> {
  readonly key: K;
  readonly shared: Var<T>;
  observers: number;
  /** Neighbours in the list of unobserved entries (oldest first), while on it. */
  older?: Entry<K, T>;
  newer?: Entry<K, T>;
}

export class VarCache<K, T> {
  private readonly entries = new Map<K, Entry<K, T>>();
  /** The entries nobody observes, as a list: the oldest is dropped first. */
  private oldest: Entry<K, T> | undefined;
  private newest: Entry<K, T> | undefined;
  private unobserved = 0;
  /** Unobserved entries dropped to keep within the cap. */
  evictions = 0;

  constructor(private readonly maxUnobserved = 1000) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: K, create: () => Var<T>): Var<T> {
    const found = this.entries.get(key);
    if (found) return found.shared;
    const inner = create();
    const entry: Entry<K, T> = {
      key,
      observers: 0,
      shared: {
        constant: inner.constant,
        sample: () => inner.sample(),
        observe: (listener: Listener<T>) => {
          if (entry.observers++ === 0) this.unlink(entry);
          const stop = inner.observe(listener);
          let stopped = false;
          return () => {
            if (stopped) return;
            stopped = true;
            stop();
            if (--entry.observers === 0 && this.entries.get(key) === entry)
              this.entries.delete(key);
          };
        },
      },
    };
    this.entries.set(key, entry);
    this.append(entry);
    while (this.unobserved > this.maxUnobserved && this.oldest) {
      const e = this.oldest;
      this.unlink(e);
      if (this.entries.get(e.key) === e) this.entries.delete(e.key);
      this.evictions++;
    }
    return entry.shared;
  }

  private append(e: Entry<K, T>): void {
    e.older = this.newest;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
    this.unobserved++;
  }

  /** Takes `e` off the unobserved list (nothing happens when it is not on it). */
  private unlink(e: Entry<K, T>): void {
    if (e.older === undefined && this.oldest !== e) return;
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = e.newer = undefined;
    this.unobserved--;
  }
}
