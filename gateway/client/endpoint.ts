// One upstream address: a pool of keep-alive connections and the count of requests in
// flight on it, which the load balancer reads.

import { type Address, addressKey } from "../naming/index.js";
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
  readonly connectTimeoutMs?: number;
  /** Originate TLS to the address (the client's `tls` block). */
  readonly tls?: UpstreamTls;
  /** The client's connection metrics, shared by its endpoints. */
  readonly counters?: ConnectionCounters;
}

export class Endpoint {
  readonly key: string;
  /** Requests dispatched and not yet finished. */
  inflight = 0;
  private readonly pool: Http1Pool;

  constructor(
    readonly address: Address,
    opts: EndpointOptions,
  ) {
    this.key = addressKey(address);
    this.pool = new Http1Pool({
      host: address.host,
      port: address.port,
      maxConnections: opts.maxConnections,
      idleTimeMs: opts.idleTimeMs,
      minConnections: opts.minConnections,
      connectTimeoutMs: opts.connectTimeoutMs,
      tls: opts.tls?.forAddress(address),
      counters: opts.counters,
    });
  }

  get weight(): number {
    return this.address.weight;
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
