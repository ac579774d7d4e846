// Clients by bound id, made on first use (by the router's client stack) and closed when
// idle too long or when the cache is over capacity (least recently used first). A client
// stamps its own lastUsed on the request path, so the cache keeps no order of use: over
// capacity, it closes the least recently used tenth at once, so the scan that finds them
// is paid once per many new clients (an egress pool meets new hosts all the time).

import type { BoundName } from "../naming/index.js";
import type { CacheCounters } from "../telemetry/index.js";
import type { Client } from "./client.js";

export class ClientCache {
  private readonly clients = new Map<string, Client>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    /** Makes the client of a bound id (its balancer, accrual, limits, endpoints). */
    private readonly make: (bound: BoundName) => Client,
    private readonly capacity: number,
    private readonly idleTtlMs: number,
    /** Linkerd's `bindcache/client/…` counters. */
    private readonly counters?: CacheCounters,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, idleTtlMs / 4)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  get(bound: BoundName): Client {
    const key = bound.id.show;
    let c = this.clients.get(key);
    if (c && c.bound.addr === bound.addr) return c;
    if (c) void c.close();
    if (this.counters) this.counters.misses.n++;
    c = this.make(bound);
    this.clients.set(key, c);
    if (this.clients.size > this.capacity) this.evictLeastRecent(c);
    return c;
  }

  /** The clients in use, for the admin's view. */
  values(): IterableIterator<Client> {
    return this.clients.values();
  }

  /** Closes the least recently used tenth of the clients (never `keep`, just made). */
  private evictLeastRecent(keep: Client): void {
    const n = Math.max(1, this.clients.size - Math.floor(this.capacity * 0.9));
    const byAge = [...this.clients].filter(([, c]) => c !== keep);
    byAge.sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, c] of byAge.slice(0, n)) {
      this.clients.delete(key);
      if (this.counters) this.counters.evicts.n++;
      void c.close();
    }
  }

  private sweep(): void {
    const cutoff = Date.now() - this.idleTtlMs;
    for (const [k, c] of this.clients) {
      if (c.lastUsed < cutoff) {
        this.clients.delete(k);
        if (this.counters) this.counters.expires.n++;
        void c.close();
      }
    }
  }

  /** Closes every client; with `now`, requests still in flight are cut. */
  async close(now = false): Promise<void> {
    clearInterval(this.sweeper);
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.close(now)));
  }
}
