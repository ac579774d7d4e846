// One upstream address: a pool of connections for the client's protocol, the requests in
// flight on it (which balancers read), and its health under failure accrual (dead
// endpoints get no requests until their backoff has passed and a probe succeeds).

import type { Socket } from "node:net";
import { coarseClock } from "../clock.js";
import { type Address, addressKey } from "../naming/index.js";
import type { FailureAccrualPolicy } from "./accrual/accrual.js";
import { EndpointHealth } from "./accrual/endpoint-health.js";
import type { BalancedEndpoint } from "./balancers/balancer.js";
import type { ConnectionPool, PoolFactory } from "./connection-pool.js";
import type { UpstreamHandler, UpstreamRequest } from "./http1/connection.js";

export class Endpoint implements BalancedEndpoint {
  readonly key: string;
  /** Requests dispatched and not yet finished. */
  inflight = 0;
  readonly health: EndpointHealth;
  private readonly pool: ConnectionPool;

  constructor(
    readonly address: Address,
    pools: PoolFactory,
    accrual: FailureAccrualPolicy,
  ) {
    this.key = addressKey(address);
    this.health = new EndpointHealth(accrual.make(), accrual.backoff, coarseClock);
    this.pool = pools(address);
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

  /** A connection of its own to this address for an upgraded protocol (see ConnectionPool). */
  openTunnel(done: (err: Error | undefined, socket: Socket | undefined) => void): void {
    this.pool.openTunnel(done);
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
