// Keep-alive connections to one upstream address. Requests take an idle connection (the
// most recently used first, so a quiet period lets the others expire), open a new one
// while under `maxConnections`, or wait in order. Idle connections are closed after
// `idleTimeMs` by one coarse sweep per pool, not a timer per connection. With `tls`,
// connections are opened by the TLS origination connector instead of a plain connect.
// Connections read into one buffer per thread (see UPSTREAM_READ_BUFFER), so a response
// body costs no allocation per read.

import { connect, type OnReadOpts, type Socket } from "node:net";
import { ProxyError } from "../../http/errors.js";
import {
  type ConnectionOwner,
  Http1Connection,
  type UpstreamHandler,
  type UpstreamRequest,
} from "./connection.js";

export interface PoolOptions {
  readonly host: string;
  readonly port: number;
  /** Unlimited when undefined. */
  readonly maxConnections?: number;
  /** Idle connections up to this many are kept past idleTimeMs (Linkerd's `minSize`). */
  readonly minConnections?: number;
  /** Idle keep-alive connections are closed after this long (default 4 s, under the 5 s keep-alive timeout common upstream servers use). */
  readonly idleTimeMs?: number;
  /** TCP connect (plus TLS handshake with `tls`); default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Requests that may wait for a connection; more are refused at once (unlimited when undefined). */
  readonly maxWaiters?: number;
  /** Originate TLS: connections are opened (and the upstream verified) by this. */
  readonly tls?: TlsOrigination;
  /** Where the connections opened and held are counted (the client's metrics). */
  readonly counters?: ConnectionCounters;
}

/** Linkerd's client `connects` (connections opened) and `connections` (open now). */
export interface ConnectionCounters {
  readonly connects: { n: number };
  readonly connections: { n: number };
}

/**
 * Every upstream connection of this thread reads into this buffer: reads are handled
 * one at a time, and what is kept past a read is copied (see UpstreamHandler.onData).
 * Large enough that a 64 KiB response and its head come in one read (with 64 KiB they
 * took two reads and two writes to the client: a third more CPU per response).
 */
const UPSTREAM_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** Opens verified TLS connections for a pool (see gateway/client/upstream-tls.ts). */
export interface TlsOrigination {
  /**
   * Opens TCP then TLS to host:port within `timeoutMs`; calls `done` once, with the socket
   * ready for requests or with the error the request gets. With `onread`, the socket
   * delivers its decrypted bytes there instead of as 'data' events.
   */
  connect(
    host: string,
    port: number,
    timeoutMs: number,
    done: (err: Error | undefined, socket: Socket | undefined) => void,
    onread?: OnReadOpts,
  ): void;
}

interface Waiting {
  readonly req: UpstreamRequest;
  readonly handler: UpstreamHandler;
}

/** How often idle connections are checked for expiry. */
const SWEEP_MS = 1000;

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export function connectError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export class Http1Pool implements ConnectionOwner {
  private readonly idle: Http1Connection[] = [];
  private readonly all = new Set<Http1Connection>();
  private connecting = 0;
  private readonly queue: Waiting[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private closing: (() => void) | undefined;
  private closed = false;
  private readonly max: number;
  private readonly idleTimeMs: number;
  private readonly minConnections: number;
  private readonly authority: string;

  constructor(private readonly opts: PoolOptions) {
    this.max = opts.maxConnections ?? Number.POSITIVE_INFINITY;
    this.idleTimeMs = opts.idleTimeMs ?? 4000;
    this.minConnections = opts.minConnections ?? 0;
    this.authority = opts.host.includes(":")
      ? `[${opts.host}]:${opts.port}`
      : `${opts.host}:${opts.port}`;
  }

  /** Open connections (busy or idle). */
  get size(): number {
    return this.all.size;
  }

  /** Requests waiting for a connection. */
  get waiting(): number {
    return this.queue.length;
  }

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closed) {
      handler.onError(
        connectError("LINTEL_POOL_CLOSED", `the connection pool to ${this.authority} is closed`),
      );
      return;
    }
    const conn = this.idle.pop();
    if (conn) {
      conn.send(req, handler);
      return;
    }
    if (this.all.size + this.connecting < this.max) this.open(req, handler);
    else if (this.queue.length >= (this.opts.maxWaiters ?? Number.POSITIVE_INFINITY)) {
      handler.onError(
        new ProxyError(
          "LINTEL_OVERLOADED",
          `${this.queue.length} requests already wait for a connection to ${this.authority} (hostConnectionPool.maxWaiters)`,
        ),
      );
    } else this.queue.push({ req, handler });
  }

  private open(req: UpstreamRequest, handler: UpstreamHandler): void {
    this.connecting++;
    let conn: Http1Connection | undefined;
    const onread: OnReadOpts = {
      buffer: UPSTREAM_READ_BUFFER,
      callback: (n, buf) => {
        conn?.received((buf as Buffer).subarray(0, n));
        return true;
      },
    };
    this.dial(onread, (err, socket) => {
      if (err !== undefined || socket === undefined) this.openFailed(err!, handler);
      else conn = this.opened(socket, req, handler);
    });
  }

  /**
   * A connection of its own for a protocol an Upgrade switches to (a WebSocket): opened
   * like the pool's (TLS with the client's `tls`), never pooled, counted while open.
   */
  openTunnel(done: (err: Error | undefined, socket: Socket | undefined) => void): void {
    this.dial(undefined, (err, socket) => {
      const counters = this.opts.counters;
      if (socket !== undefined && counters) {
        counters.connects.n++;
        counters.connections.n++;
        socket.once("close", () => counters.connections.n--);
      }
      done(err, socket);
    });
  }

  /** Opens TCP (then TLS with the client's `tls`) within connectTimeoutMs; `done` once. */
  private dial(
    onread: OnReadOpts | undefined,
    done: (err: Error | undefined, socket: Socket | undefined) => void,
  ): void {
    const timeoutMs = this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const tls = this.opts.tls;
    if (tls) {
      tls.connect(this.opts.host, this.opts.port, timeoutMs, done, onread);
      return;
    }
    const socket: Socket = connect({
      host: this.opts.host,
      port: this.opts.port,
      noDelay: true,
      ...(onread ? { onread } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy(
        connectError("ETIMEDOUT", `connecting to ${this.authority} took over ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      done(err, undefined);
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      done(undefined, socket);
    });
  }

  private openFailed(err: Error, handler: UpstreamHandler): void {
    this.connecting--;
    handler.onError(err);
    this.openForWaiting();
    this.finishIfEmpty();
  }

  private opened(socket: Socket, req: UpstreamRequest, handler: UpstreamHandler): Http1Connection {
    this.connecting--;
    const conn = new Http1Connection(socket, this, this.authority);
    this.all.add(conn);
    const counters = this.opts.counters;
    if (counters) {
      counters.connects.n++;
      counters.connections.n++;
    }
    this.ensureSweeper();
    if (this.closed) {
      handler.onError(
        connectError("LINTEL_POOL_CLOSED", `the connection pool to ${this.authority} is closed`),
      );
      conn.destroy();
      return conn;
    }
    conn.send(req, handler);
    return conn;
  }

  release(conn: Http1Connection): void {
    const next = this.queue.shift();
    if (next) {
      conn.send(next.req, next.handler);
      return;
    }
    if (this.closed) {
      conn.destroy();
      return;
    }
    this.idle.push(conn);
  }

  remove(conn: Http1Connection): void {
    if (!this.all.delete(conn)) return;
    if (this.opts.counters) this.opts.counters.connections.n--;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.openForWaiting();
    this.finishIfEmpty();
  }

  /** With nothing open or opening: stops the sweeper and ends a close() in progress. */
  private finishIfEmpty(): void {
    if (this.all.size === 0 && this.connecting === 0) {
      this.stopSweeper();
      if (this.closing) this.closing();
    }
  }

  retryStale(req: UpstreamRequest, handler: UpstreamHandler): boolean {
    if (this.closed) return false;
    // A fresh connection (another idle one may be just as stale); the failed one has
    // already given its slot back.
    this.open(req, handler);
    return true;
  }

  private openForWaiting(): void {
    while (this.queue.length > 0 && this.all.size + this.connecting < this.max) {
      const w = this.queue.shift()!;
      this.open(w.req, w.handler);
    }
  }

  private ensureSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const cutoff = Date.now() - this.idleTimeMs;
      // The least recently used first (idle connections are taken from the end).
      for (const c of [...this.idle]) {
        if (this.all.size <= this.minConnections) break;
        if (c.lastUsed < cutoff) c.destroy();
      }
    }, SWEEP_MS);
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Takes no new requests; resolves once the requests in flight have finished. */
  close(): Promise<void> {
    this.closed = true;
    for (const w of this.queue.splice(0)) {
      w.handler.onError(
        connectError("LINTEL_POOL_CLOSED", `the connection pool to ${this.authority} is closed`),
      );
    }
    for (const c of [...this.idle]) c.destroy();
    if (this.all.size === 0 && this.connecting === 0) {
      this.stopSweeper();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.closing = resolve;
    });
  }

  /** Closes everything now; requests in flight fail. */
  destroy(): Promise<void> {
    const done = this.close();
    for (const c of [...this.all])
      c.abort(
        connectError("LINTEL_POOL_CLOSED", `the connection pool to ${this.authority} was closed`),
      );
    for (const c of [...this.all]) c.destroy();
    return done;
  }
}
