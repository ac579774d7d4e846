// CONNECT tunnels for clients that use lintel as their https_proxy, on an egress
// router's node servers: the target is checked against the egress policy (port, host
// name), resolved with lintel's resolver, the address checked again, and then bytes flow
// both ways untouched (TLS stays end to end).

import { connect, isIP, type Socket } from "node:net";
import { ProxyError } from "../http/errors.js";
import { writeRawError } from "../http/raw-error.js";
import type { Logger } from "../log.js";
import type { HostResolver, HostState } from "../namers/dns.js";
import type { TunnelRequest } from "../server/listener.js";
import { CLIENT_CLOSED, type RequestStats } from "../telemetry/request-stats.js";
import type { EgressPolicy } from "./egress-policy.js";

export interface TunnelOptions {
  readonly egress: EgressPolicy;
  readonly ports: ReadonlySet<number>;
  readonly resolver: HostResolver;
  /** How long resolving the host may take. */
  readonly resolveTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly log: Logger;
}

/** Tracks open tunnels so a shutdown can wait for them, then cut them. */
export class ConnectTunnels {
  private readonly open = new Set<Socket>();
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: TunnelOptions) {}

  get count(): number {
    return this.open.size;
  }

  /** Resolves when no tunnel is open. */
  idle(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Opens a tunnel for `req`, counted in `stats` (the server's) once it is open or refused. */
  handle(req: TunnelRequest, stats?: RequestStats): void {
    const start = performance.now();
    const { socket } = req;
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
    void this.establish(req).then(
      (open) => stats?.record(open ? 200 : 0, performance.now() - start, open ? "" : CLIENT_CLOSED),
      (e: unknown) => {
        const err =
          e instanceof ProxyError ? e : new ProxyError("LINTEL_CONNECT", (e as Error).message);
        this.opts.log.debug("CONNECT refused", { target: req.authority, error: err.message });
        writeRawError(socket, err);
        stats?.record(err.status, performance.now() - start, err.code);
      },
    );
  }

  /** Closes every tunnel now. */
  destroyAll(): void {
    for (const s of this.open) s.destroy();
  }

  /** Opens the tunnel; false when the client left before it was open. */
  private async establish(req: TunnelRequest): Promise<boolean> {
    const { egress, ports } = this.opts;
    const target = splitAuthority(req.authority);
    if (!target) {
      throw new ProxyError(
        "LINTEL_BAD_REQUEST",
        `CONNECT needs host:port as its target, got ${JSON.stringify(req.authority)}`,
      );
    }
    if (!ports.has(target.port)) {
      throw new ProxyError(
        "LINTEL_FORBIDDEN",
        `CONNECT to port ${target.port} is not allowed (servers[].connect.ports: ${[...ports].join(", ")})`,
      );
    }
    if (isIP(target.host) === 0) egress.checkHost(target.host);
    const ips = await this.resolve(target.host);
    const ip = ips[Math.floor(Math.random() * ips.length)]!;
    egress.checkAddress(ip, target.host);
    const upstream = await this.dial(ip, target.port, target.host);
    const { socket } = req;
    if (socket.destroyed) {
      upstream.destroy();
      return false;
    }
    socket.write("HTTP/1.1 200 Connection Established\r\nvia: 1.1 lintel\r\n\r\n");
    if (req.head.length > 0) upstream.write(req.head);
    upstream.on("error", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
    socket.pipe(upstream);
    upstream.pipe(socket);
    return true;
  }

  private resolve(host: string): Promise<readonly string[]> {
    if (isIP(host) !== 0) return Promise.resolve([host]);
    const v = this.opts.resolver.watch(host);
    return new Promise((resolve, reject) => {
      let stop: (() => void) | undefined;
      const settle = (s: HostState): boolean => {
        switch (s.kind) {
          case "pending":
            return false;
          case "ok":
            resolve(s.ips);
            break;
          case "neg":
            reject(new ProxyError("LINTEL_NO_ROUTE", `CONNECT to ${host}: ${s.reason}`));
            break;
          case "failed":
            reject(new ProxyError("LINTEL_BIND_FAILED", `CONNECT to ${host}: ${s.error.message}`));
            break;
        }
        clearTimeout(timer);
        stop?.();
        return true;
      };
      const timer = setTimeout(() => {
        stop?.();
        reject(
          new ProxyError(
            "LINTEL_BIND_TIMEOUT",
            `CONNECT to ${host}: resolving it took longer than ${this.opts.resolveTimeoutMs} ms`,
          ),
        );
      }, this.opts.resolveTimeoutMs);
      stop = v.observe(settle);
      settle(v.sample());
    });
  }

  private dial(ip: string, port: number, host: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: ip, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(
          new ProxyError(
            "LINTEL_CONNECT",
            `CONNECT to ${host} (${ip}:${port}): no connection after ${this.opts.connectTimeoutMs} ms`,
          ),
        );
      }, this.opts.connectTimeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once("error", (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new ProxyError(
            "LINTEL_CONNECT",
            `CONNECT to ${host} (${ip}:${port}) failed: ${e.code ?? e.message}`,
          ),
        );
      });
    });
  }
}

function splitAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/]+)):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}
