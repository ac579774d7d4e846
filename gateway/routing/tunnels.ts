// Tunnels: requests that take their connection over once they are routed. A CONNECT
// (clients that use lintel as their https_proxy, on servers with `connect`) is connected
// to an endpoint of its client and then bytes flow both ways untouched (TLS stays end to
// end). An Upgrade request (WebSocket) is sent to an endpoint on a connection of its own
// and, once the upstream switches protocols, bytes flow both ways the same way. Both
// passed the server stack and were identified and bound like any request; the endpoint
// comes from the client's balancer, the egress policy checks its address, and failure
// accrual sees the outcome. A tunnel with no bytes either way for its idle time is closed.

import { connect, type Socket } from "node:net";
import type { Client } from "../client/client.js";
import { ProxyError } from "../http/errors.js";
import type { ClientSpan, RequestTrace } from "../tracing/tracer.js";
import type { TunnelExchange } from "./tunnel-exchange.js";
import { relayUpgradeAnswer, upgradeRequestHead } from "./upgrade-tunnel.js";

/** What a tunnel tells its owner (the router, which counts and logs it as a request). */
export interface TunnelOwner<C> {
  /** The tunnel could not be opened: answer the request with `err`. */
  tunnelFailed(ctx: C, err: ProxyError): void;
  /**
   * Bytes flow both ways from now on (a CONNECT answered 200, an upgrade switched): what
   * they add up to as they flow.
   */
  tunnelOpened(ctx: C): TunnelBytes;
  /**
   * The tunnel closed: `status` is what the client was answered (200 for an open CONNECT,
   * 101 for a switched upgrade, the upstream's refusal), 0 when the client left first;
   * `opened` when it had opened.
   */
  tunnelClosed(ctx: C, status: number, bytes: number, opened?: boolean): void;
}

/** Where an open tunnel counts the bytes it relays. */
export interface TunnelBytes {
  /** From the upstream to the client. */
  readonly down: { n: number };
  /** From the client to the upstream. */
  readonly up: { n: number };
}

/** What an Upgrade request sends upstream (from the router's forwarding rules). */
export interface UpgradeHead {
  readonly path: string;
  readonly headers: readonly string[];
  /** Drop l5d-* fields from the upstream's answer (clearContext servers). */
  readonly clearContext: boolean;
  /** The request's trace: the tunnel gets a client span, its context goes upstream. */
  readonly trace?: RequestTrace | undefined;
}

/** Tracks open tunnels so a shutdown can wait for them, then cut them. */
export class Tunnels {
  private readonly open = new Set<Socket>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    /** How long a CONNECT waits for its destination to accept the connection. */
    private readonly connectTimeoutMs: number,
    /** A tunnel with no bytes either way for this long is closed. */
    private readonly idleTimeoutMs: number,
  ) {}

  get count(): number {
    return this.open.size;
  }

  /** Resolves when no tunnel is open. */
  idle(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Closes every tunnel now. */
  destroyAll(): void {
    for (const s of this.open) s.destroy();
  }

  /**
   * Opens the CONNECT tunnel of `ex` to an endpoint of `client`; a refusal is thrown. With
   * a `trace`, the tunnel is a client span from the dial to the close.
   */
  connect<C>(
    ex: TunnelExchange,
    client: Client,
    service: string,
    owner: TunnelOwner<C>,
    ctx: C,
    trace?: RequestTrace,
  ) {
    const endpoint = client.pickForTunnel(service);
    if (endpoint instanceof ProxyError) throw endpoint;
    // Nothing carries a context through CONNECT: the span is recorded, its headers unused.
    const span = trace?.attempt([], endpoint.key, ex.method, ex.url);
    const { socket, head } = ex.request;
    this.track(socket);
    const { host, port } = endpoint.address;
    const start = performance.now();
    const upstream = connect({ host, port });
    const timer = setTimeout(() => {
      upstream.destroy(
        new ProxyError(
          "LINTEL_CONNECT",
          `CONNECT to ${ex.url} (${host}:${port}): no connection after ${this.connectTimeoutMs} ms`,
        ),
      );
    }, this.connectTimeoutMs);
    const failed = (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      client.observe(endpoint, performance.now() - start, false, true);
      const err =
        e instanceof ProxyError
          ? e
          : new ProxyError(
              "LINTEL_CONNECT",
              `CONNECT to ${ex.url} (${host}:${port}) failed: ${e.code ?? e.message}`,
            );
      span?.end(err);
      owner.tunnelFailed(ctx, err);
    };
    upstream.once("error", failed);
    upstream.once("connect", () => {
      clearTimeout(timer);
      upstream.off("error", failed);
      client.observe(endpoint, performance.now() - start, true, false);
      if (socket.destroyed) {
        upstream.destroy();
        span?.end(undefined);
        owner.tunnelClosed(ctx, 0, 0);
        return;
      }
      span?.head(200);
      socket.write("HTTP/1.1 200 Connection Established\r\nvia: 1.1 lintel\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      this.join(socket, upstream, owner.tunnelOpened(ctx), () => {
        span?.end(undefined);
        owner.tunnelClosed(ctx, 200, upstream.bytesRead, true);
      });
      upstream.pipe(socket);
    });
  }

  /**
   * Sends the Upgrade request of `ex` to an endpoint of `client` on a connection of its
   * own and hands the answer to the client (see upgrade-tunnel.ts); a refusal is thrown.
   */
  upgrade<C>(
    ex: TunnelExchange,
    client: Client,
    service: string,
    request: UpgradeHead,
    owner: TunnelOwner<C>,
    ctx: C,
  ) {
    const endpoint = client.pickForTunnel(service);
    if (endpoint instanceof ProxyError) throw endpoint;
    const { socket, head } = ex.request;
    this.track(socket);
    const start = performance.now();
    let headers = request.headers;
    let span: ClientSpan | undefined;
    if (request.trace !== undefined) {
      // The tunnel's client span: its context replaces the trace fields going upstream.
      const traced = [...headers];
      span = request.trace.attempt(traced, endpoint.key, ex.method, request.path);
      headers = traced;
    }
    const where = `${ex.upgrade} upgrade of ${service} (${endpoint.key})`;
    endpoint.openTunnel((err, upstream) => {
      if (err !== undefined || upstream === undefined) {
        client.observe(endpoint, performance.now() - start, false, true);
        const code = (err as NodeJS.ErrnoException | undefined)?.code;
        const failure =
          err instanceof ProxyError
            ? err
            : new ProxyError("LINTEL_CONNECT", `${where} failed: ${code ?? err?.message}`);
        span?.end(failure);
        owner.tunnelFailed(ctx, failure);
        return;
      }
      if (socket.destroyed) {
        upstream.destroy();
        span?.end(undefined);
        owner.tunnelClosed(ctx, 0, 0);
        return;
      }
      upstream.write(upgradeRequestHead(ex.method, request.path, headers, ex.upgrade));
      if (head.length > 0) upstream.write(head);
      // Until the upstream answers, a client that leaves ends it all.
      let settled = false;
      const early = () => {
        if (settled) return;
        settled = true;
        upstream.destroy();
        span?.end(undefined);
        owner.tunnelClosed(ctx, 0, 0);
      };
      socket.once("close", early);
      const settle = (ok: boolean) => {
        settled = true;
        socket.off("close", early);
        client.observe(endpoint, performance.now() - start, ok, false);
      };
      relayUpgradeAnswer(ex.method, socket, upstream, request.clearContext, {
        answered: (status) => {
          if (settled) return;
          settle(status < 500);
          span?.head(status);
          // A refusal is relayed the same way; only a switch opens a tunnel.
          const opened = status === 101;
          this.join(socket, upstream, opened ? owner.tunnelOpened(ctx) : undefined, () => {
            span?.end(undefined);
            owner.tunnelClosed(ctx, status, upstream.bytesRead, opened);
          });
        },
        failed: (reason) => {
          if (settled) return;
          settle(false);
          // Nothing reached the client yet: it gets lintel's error (the connection closes).
          const err = new ProxyError("LINTEL_UPSTREAM", `${where}: ${reason}`);
          span?.end(err);
          owner.tunnelFailed(ctx, err);
        },
      });
    });
  }

  /**
   * Client bytes go upstream from now on (answer bytes are the caller's to send), counted
   * in `meter` both ways; either side closing, failing or idling past the limit closes
   * both; `closed` runs once.
   */
  private join(
    socket: Socket,
    upstream: Socket,
    meter: TunnelBytes | undefined,
    closed: () => void,
  ): void {
    if (meter !== undefined) {
      socket.on("data", (chunk: Buffer) => {
        meter.up.n += chunk.length;
      });
      upstream.on("data", (chunk: Buffer) => {
        meter.down.n += chunk.length;
      });
    }
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
    socket.once("close", () => upstream.destroy());
    upstream.once("close", () => {
      socket.destroy();
      closed();
    });
    const idle = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.setTimeout(this.idleTimeoutMs, idle);
    upstream.setTimeout(this.idleTimeoutMs, idle);
    socket.pipe(upstream);
  }

  private track(socket: Socket): void {
    socket.on("error", () => socket.destroy());
    this.open.add(socket);
    socket.once("close", () => {
      this.open.delete(socket);
      if (this.open.size === 0 && this.idleWaiters.length > 0) {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const r of w) r();
      }
    });
  }
}
