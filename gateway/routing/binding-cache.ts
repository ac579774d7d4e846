// Bindings in use, by (per-request dentries, service name). Each entry observes its live
// binding, so a request finds the current bound tree with one map lookup; entries are
// dropped when the cache is full (least recently used first) or idle too long. The entries
// form a list in order of use, so a hit and an eviction each cost a few pointer moves,
// however large the cache.

import type { Interpreter } from "../interpreters/interpreter.js";
import type { Activity, BoundName, Dtab, NameTree, Path, State } from "../naming/index.js";
import type { CacheCounters } from "../telemetry/index.js";
import type { ServicePolicy } from "./service-policy.js";

export interface BindingEntry {
  readonly key: string;
  state: State<NameTree<BoundName>>;
  lastUsed: number;
  /** The entries used just before and after this one (the list's ends have none). */
  older: BindingEntry | undefined;
  newer: BindingEntry | undefined;
  stop(): void;
  waiters: (() => void)[];
  /** The service's logical stack (its policy and metrics), set by the router on first use. */
  service: ServicePolicy | undefined;
}

export class BindingCache {
  private readonly entries = new Map<string, BindingEntry>();
  /** The least and the most recently used entries. */
  private oldest: BindingEntry | undefined;
  private newest: BindingEntry | undefined;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly interpreter: Interpreter,
    private readonly capacity: number,
    private readonly idleTtlMs: number,
    /** Linkerd's `bindcache/path/…` counters. */
    private readonly counters?: CacheCounters,
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
      if (e !== this.newest) {
        this.unlink(e);
        this.append(e);
      }
      return e;
    }
    if (this.counters) this.counters.misses.n++;
    // Room first, so the cache never holds more than `capacity` live bindings.
    if (this.entries.size >= this.capacity && this.oldest) {
      if (this.counters) this.counters.evicts.n++;
      this.evict(this.oldest);
    }
    const act: Activity<NameTree<BoundName>> = this.interpreter.bind(local, path);
    const entry: BindingEntry = {
      key,
      state: { status: "pending" },
      lastUsed: this.now(),
      older: undefined,
      newer: undefined,
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
    this.append(entry);
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

  private append(e: BindingEntry): void {
    e.older = this.newest;
    e.newer = undefined;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
  }

  private unlink(e: BindingEntry): void {
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = e.newer = undefined;
  }

  private evict(e: BindingEntry): void {
    this.entries.delete(e.key);
    this.unlink(e);
    e.stop();
  }

  private sweep(): void {
    const cutoff = this.now() - this.idleTtlMs;
    // The least recently used first: the sweep stops at the first entry still in use.
    while (this.oldest && this.oldest.lastUsed < cutoff) {
      if (this.counters) this.counters.expires.n++;
      this.evict(this.oldest);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    while (this.oldest) this.evict(this.oldest);
  }
}
