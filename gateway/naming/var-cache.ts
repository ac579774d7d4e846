// Keeps one Var per key while it is in use, so that looking the same name up twice
// yields the same Var (bindings compare bound names by identity). An entry leaves the
// cache when its last observer leaves; entries nobody observes are capped in number.

import type { Listener, Var } from "./var.js";

interface Entry<T> {
  readonly shared: Var<T>;
  observers: number;
}

export class VarCache<K, T> {
  private readonly entries = new Map<K, Entry<T>>();

  constructor(private readonly maxUnobserved = 1000) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: K, create: () => Var<T>): Var<T> {
    const found = this.entries.get(key);
    if (found) return found.shared;
    const inner = create();
    const entry: Entry<T> = {
      observers: 0,
      shared: {
        constant: inner.constant,
        sample: () => inner.sample(),
        observe: (listener: Listener<T>) => {
          entry.observers++;
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
    this.evictUnobserved();
    return entry.shared;
  }

  private evictUnobserved(): void {
    let unobserved = 0;
    for (const e of this.entries.values()) if (e.observers === 0) unobserved++;
    if (unobserved <= this.maxUnobserved) return;
    for (const [k, e] of this.entries) {
      if (unobserved <= this.maxUnobserved) break;
      if (e.observers === 0) {
        this.entries.delete(k);
        unobserved--;
      }
    }
  }
}
