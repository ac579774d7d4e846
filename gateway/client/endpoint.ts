// One upstream address: a keep-alive connection pool (undici) and the count of requests
// in flight on it, which the load balancer reads.

import type { Dispatcher } from "undici";
import { Pool } from "undici";
import { type Address, addressKey } from "../naming/index.js";

export interface EndpointOptions {
  /** Most connections to this address; unlimited when undefined (Linkerd's default). */
  readonly maxConnections?: number;
  /** How long an idle keep-alive connection is kept. */
  readonly idleTimeMs?: number;
  readonly connectTimeoutMs?: number;
}

export class Endpoint {
  readonly key: string;
  /** Requests dispatched and not yet finished. */
  inflight = 0;
  private readonly pool: Pool;
  private closing = false;

  constructor(
    readonly address: Address,
    opts: EndpointOptions,
  ) {
    this.key = addressKey(address);
    const host = address.host.includes(":") ? `[${address.host}]` : address.host;
    this.pool = new Pool(`http://${host}:${address.port}`, {
      connections: opts.maxConnections ?? null,
      pipelining: 1,
      keepAliveTimeout: opts.idleTimeMs ?? 10_000,
      keepAliveMaxTimeout: Math.max(opts.idleTimeMs ?? 10_000, 10_000),
      connect: { timeout: opts.connectTimeoutMs ?? 10_000 },
      // Streams, not buffered bodies: no timeout between body chunks beyond the defaults.
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
  }

  get weight(): number {
    return this.address.weight;
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.inflight++;
    this.pool.dispatch(opts, handler);
  }

  release(): void {
    this.inflight--;
  }

  /** Stops taking requests; the ones in flight finish first. */
  close(): Promise<void> {
    if (this.closing) return Promise.resolve();
    this.closing = true;
    return this.pool.close();
  }

  destroy(): Promise<void> {
    this.closing = true;
    return this.pool.destroy();
  }
}
