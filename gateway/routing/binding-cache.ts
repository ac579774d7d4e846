// Bindings in use, by (per-request dentries, service name). Each entry observes its live
// binding, so a request finds the current bound tree with one map lookup; entries are
// dropped when the cache is full (least recently used first) or idle too long. A hit only
// stamps the entry; the order is worked out when something must be evicted.

import type { Interpreter } from "../interpreters/interpreter.js";
import type { Activity, BoundName, Dtab, NameTree, Path, State } from "../naming/index.js";
import type { Counter } from "../telemetry/index.js";
import type { ServicePolicy } from "./service-policy.js";

export interface BindingEntry {
  readonly key: string;
  state: State<NameTree<BoundName>>;
  lastUsed: number;
  stop(): void;
  waiters: (() => void)[];
  /** The service's logical stack (its policy and metrics), set by the router on first use. */
  service: ServicePolicy | undefined;
}

/** Linkerd's `bindcache/path/…` counters. */
export interface BindingCacheCounters {
  readonly misses: Counter;
  readonly evicts: Counter;
  readonly expires: Counter;
}

export class BindingCache {
  private readonly entries = new Map<string, BindingEntry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly interpreter: Interpreter,
    private readonly capacity: number,
    private readonly idleTtlMs: number,
    private readonly counters?: BindingCacheCounters,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, idleTtlMs / 4)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.entries.size;
  }

  get(local: Dtab, localKey: string, path: Path): BindingEntry {
    const key = localKey === "" ? path.show : `${localKey}\n${path.show}`;
    const e = this.entries.get(key);
    if (e) {
      e.lastUsed = this.now();
      return e;
    }
    if (this.counters) this.counters.misses.n++;
    const act: Activity<NameTree<BoundName>> = this.interpreter.bind(local, path);
    const entry: BindingEntry = {
      key,
      state: { status: "pending" },
      lastUsed: this.now(),
      stop: () => {},
      waiters: [],
      service: undefined,
    };
    entry.stop = act.observe((s) => {
      entry.state = s;
      if (s.status !== "pending" && entry.waiters.length > 0) {
        const w = entry.waiters;
        entry.waiters = [];
        for (const r of w) r();
      }
    });
    entry.state = act.sample();
    this.entries.set(key, entry);
    if (this.entries.size > this.capacity) this.evictLeastRecent();
    return entry;
  }

  /** Resolves when the entry's binding is no longer pending, or after `timeoutMs`. */
  settled(entry: BindingEntry, timeoutMs: number): Promise<void> {
    if (entry.state.status !== "pending") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      entry.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private evictLeastRecent(): void {
    let oldest: BindingEntry | undefined;
    for (const e of this.entries.values()) if (!oldest || e.lastUsed < oldest.lastUsed) oldest = e;
    if (!oldest) return;
    if (this.counters) this.counters.evicts.n++;
    this.evict(oldest.key);
  }

  private evict(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    e.stop();
  }

  private sweep(): void {
    const cutoff = this.now() - this.idleTtlMs;
    for (const [k, e] of this.entries) {
      if (e.lastUsed >= cutoff) continue;
      if (this.counters) this.counters.expires.n++;
      this.evict(k);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const k of [...this.entries.keys()]) this.evict(k);
  }
}
