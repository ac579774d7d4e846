// Clients by bound id, made on first use (by the router's client stack) and closed when
// idle too long or when the cache is over capacity (least recently used first).

import type { BoundName } from "../naming/index.js";
import type { Client } from "./client.js";

export class ClientCache {
  private readonly clients = new Map<string, Client>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    /** Makes the client of a bound id (its balancer, accrual, limits, endpoints). */
    private readonly make: (bound: BoundName) => Client,
    private readonly capacity: number,
    private readonly idleTtlMs: number,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, idleTtlMs / 4)));
    this.sweeper.unref();
  }

  get(bound: BoundName): Client {
    const key = bound.id.show;
    let c = this.clients.get(key);
    if (c && c.bound.addr === bound.addr) return c;
    if (c) void c.close();
    c = this.make(bound);
    this.clients.set(key, c);
    if (this.clients.size > this.capacity) this.evictLeastRecent();
    return c;
  }

  /** The clients in use, for the admin's view. */
  values(): IterableIterator<Client> {
    return this.clients.values();
  }

  private evictLeastRecent(): void {
    let oldest: [string, Client] | undefined;
    for (const e of this.clients) if (!oldest || e[1].lastUsed < oldest[1].lastUsed) oldest = e;
    if (oldest) {
      this.clients.delete(oldest[0]);
      void oldest[1].close();
    }
  }

  private sweep(): void {
    const cutoff = Date.now() - this.idleTtlMs;
    for (const [k, c] of this.clients) {
      if (c.lastUsed < cutoff) {
        this.clients.delete(k);
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
