// What an endpoint needs of the connections to its address, whatever the protocol: send
// a request on one (or wait for one), and close them. The concrete stack chooses the
// protocol's pool (HTTP/1.1, or HTTP/2 on h2 routers) once per client; endpoints just use it.

import type { Settings } from "node:http2";
import type { Socket } from "node:net";
import type { Address } from "../naming/index.js";
import { H2Pool } from "./h2/pool.js";
import type { UpstreamHandler, UpstreamRequest } from "./http1/connection.js";
import { type ConnectionCounters, Http1Pool } from "./http1/pool.js";
import type { UpstreamTls } from "./upstream-tls.js";

export interface ConnectionPool {
  /** Requests waiting for a connection. */
  readonly waiting: number;
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void;
  /** A connection of its own, not pooled, for a protocol an Upgrade switches to. */
  openTunnel(done: (err: Error | undefined, socket: Socket | undefined) => void): void;
  /** Stops taking requests; the ones in flight finish first. */
  close(): Promise<void>;
  /** Closes now; requests in flight fail. */
  destroy(): Promise<void>;
}

/** Makes the pool of one address. */
export type PoolFactory = (address: Address) => ConnectionPool;

export interface Http1PoolOptions {
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
  /** The SETTINGS of HTTP/2 connections (Linkerd's h2 client parameters). */
  readonly http2Settings?: Settings;
}

/** HTTP/2 sessions (prior knowledge, or TLS with ALPN h2) with the client's settings. */
export function h2Pools(o: Http1PoolOptions): PoolFactory {
  return (address) =>
    new H2Pool({
      host: address.host,
      port: address.port,
      maxWaiters: o.maxWaiters,
      connectTimeoutMs: o.connectTimeoutMs,
      tls: o.tls?.forAddress(address),
      counters: o.counters,
      settings: o.http2Settings,
    });
}

/** HTTP/1.1 keep-alive pools (plain or TLS) with the client's settings. */
export function http1Pools(o: Http1PoolOptions): PoolFactory {
  return (address) =>
    new Http1Pool({
      host: address.host,
      port: address.port,
      maxConnections: o.maxConnections,
      idleTimeMs: o.idleTimeMs,
      minConnections: o.minConnections,
      maxWaiters: o.maxWaiters,
      connectTimeoutMs: o.connectTimeoutMs,
      tls: o.tls?.forAddress(address),
      counters: o.counters,
    });
}
