// One upstream address: a pool of keep-alive connections, the requests in flight on it
// (which balancers read), and its health under failure accrual (dead endpoints get no
// requests until their backoff has passed and a probe succeeds).

import { coarseClock } from "../clock.js";
import { type Address, addressKey } from "../naming/index.js";
import type { FailureAccrualPolicy } from "./accrual/accrual.js";
import { EndpointHealth } from "./accrual/endpoint-health.js";
import type { BalancedEndpoint } from "./balancers/balancer.js";
import type { UpstreamHandler, UpstreamRequest } from "./http1/connection.js";
import { type ConnectionCounters, Http1Pool } from "./http1/pool.js";
import type { UpstreamTls } from "./upstream-tls.js";

export interface EndpointOptions {
  /** Most connections to this address; unlimited when undefined (Linkerd's default). */
  readonly maxConnections?: number;
  /** How long an idle keep-alive connection is kept. */
  readonly idleTimeMs?: number;
  /** Connections kept open however long they are idle. */
  readonly minConnections?: number;
  /** Requests that may wait for a connection (hostConnectionPool.maxWaiters); unlimited when undefined. */
  readonly maxWaiters?: number;
  readonly connectTimeoutMs?: number;
  /** Originate TLS to the address (the client's `tls` block). */
  readonly tls?: UpstreamTls;
  /** The client's connection metrics, shared by its endpoints. */
  readonly counters?: ConnectionCounters;
}

export class Endpoint implements BalancedEndpoint {
  readonly key: string;
  /** Requests dispatched and not yet finished. */
  inflight = 0;
  readonly health: EndpointHealth;
  private readonly pool: Http1Pool;

  constructor(
    readonly address: Address,
    opts: EndpointOptions,
    accrual: FailureAccrualPolicy,
  ) {
    this.key = addressKey(address);
    this.health = new EndpointHealth(accrual.make(), accrual.backoff, coarseClock);
    this.pool = new Http1Pool({
      host: address.host,
      port: address.port,
      maxConnections: opts.maxConnections,
      idleTimeMs: opts.idleTimeMs,
      minConnections: opts.minConnections,
      maxWaiters: opts.maxWaiters,
      connectTimeoutMs: opts.connectTimeoutMs,
      tls: opts.tls?.forAddress(address),
      counters: opts.counters,
    });
  }

  get weight(): number {
    return this.address.weight;
  }

  get available(): boolean {
    return this.health.available;
  }

  /** Requests waiting for a connection to this address. */
  get pending(): number {
    return this.pool.waiting;
  }

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    this.inflight++;
    this.pool.dispatch(req, handler);
  }

  release(): void {
    this.inflight--;
  }

  /** Stops taking requests; the ones in flight finish first. */
  close(): Promise<void> {
    return this.pool.close();
  }

  /** Closes now; requests in flight fail. */
  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}
