// CONNECT tunnels for clients that use lintel as their https_proxy, on servers with
// `connect`: the request passed the server stack, was identified and bound like any
// request; here it is connected to an endpoint of its client (balanced, the egress policy
// checking the address, the outcome reported to failure accrual), and then bytes flow
// both ways untouched (TLS stays end to end).

import { connect, type Socket } from "node:net";
import type { Client } from "../client/client.js";
import { ProxyError } from "../http/errors.js";
import type { TunnelExchange } from "./tunnel-exchange.js";

/** What a tunnel tells its owner (the router, which counts and logs it as a request). */
export interface TunnelOwner<C> {
  /** The tunnel could not be opened: answer the CONNECT with `err`. */
  tunnelFailed(ctx: C, err: ProxyError): void;
  /** The tunnel closed (or the client left before it opened: `opened` false). */
  tunnelClosed(ctx: C, opened: boolean, bytes: number): void;
}

/** Tracks open tunnels so a shutdown can wait for them, then cut them. */
export class ConnectTunnels {
  private readonly open = new Set<Socket>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    /** How long a tunnel waits for its destination to accept the connection. */
    private readonly connectTimeoutMs: number,
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

  /** Opens the tunnel of `ex` to an endpoint of `client`; a refusal is thrown. */
  connect<C>(ex: TunnelExchange, client: Client, service: string, owner: TunnelOwner<C>, ctx: C) {
    const endpoint = client.pickForTunnel(service);
    if (endpoint instanceof ProxyError) throw endpoint;
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
      owner.tunnelFailed(
        ctx,
        e instanceof ProxyError
          ? e
          : new ProxyError(
              "LINTEL_CONNECT",
              `CONNECT to ${ex.url} (${host}:${port}) failed: ${e.code ?? e.message}`,
            ),
      );
    };
    upstream.once("error", failed);
    upstream.once("connect", () => {
      clearTimeout(timer);
      upstream.off("error", failed);
      client.observe(endpoint, performance.now() - start, true, false);
      if (socket.destroyed) {
        upstream.destroy();
        owner.tunnelClosed(ctx, false, 0);
        return;
      }
      socket.write("HTTP/1.1 200 Connection Established\r\nvia: 1.1 lintel\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.on("error", () => socket.destroy());
      socket.on("error", () => upstream.destroy());
      socket.once("close", () => upstream.destroy());
      upstream.once("close", () => {
        socket.destroy();
        owner.tunnelClosed(ctx, true, upstream.bytesRead);
      });
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
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
