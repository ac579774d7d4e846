// Clients by bound id, created on first use and closed when idle too long or when the
// cache is over capacity (least recently used first).

import type { Logger } from "../log.js";
import type { BoundName } from "../naming/index.js";
import { P2CBalancer } from "./balancer.js";
import { Client } from "./client.js";
import type { ConnectionCounters } from "./http1/pool.js";
import type { ClientParamsFor } from "./params.js";
import { type ClientTlsConfig, UpstreamTls, type UpstreamTlsContexts } from "./upstream-tls.js";

export class ClientCache {
  private readonly clients = new Map<string, Client>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly paramsFor: ClientParamsFor,
    private readonly tlsContexts: UpstreamTlsContexts,
    private readonly capacity: number,
    private readonly idleTtlMs: number,
    private readonly log: Logger,
    /** The connection metrics of a bound id (as shown). */
    private readonly countersFor?: (boundId: string) => ConnectionCounters,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, idleTtlMs / 4)));
    this.sweeper.unref();
  }

  get(bound: BoundName): Client {
    const key = bound.id.show;
    let c = this.clients.get(key);
    if (c && c.bound.addr === bound.addr) return c;
    if (c) void c.close();
    const p = this.paramsFor(bound.id);
    c = new Client(
      bound,
      new P2CBalancer(),
      {
        maxConnections: p.hostConnectionPool?.maxSize,
        idleTimeMs: p.hostConnectionPool?.idleTimeMs,
        minConnections: p.hostConnectionPool?.minSize,
        connectTimeoutMs: p.connectTimeoutMs,
        tls: p.tls ? this.upstreamTls(p.tls, key) : undefined,
        counters: this.countersFor?.(key),
      },
      this.log,
    );
    this.clients.set(key, c);
    if (this.clients.size > this.capacity) this.evictLeastRecent();
    return c;
  }

  private upstreamTls(tls: ClientTlsConfig, client: string): UpstreamTls {
    if (tls.disableValidation) {
      this.log.warn(
        "TLS certificate validation is DISABLED for this client (tls.disableValidation): its upstreams are not authenticated",
        { client },
      );
    }
    return new UpstreamTls(tls, this.tlsContexts.get(tls));
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
