// What a server (one listener) adds to its router's behaviour: context clearing, call
// depth, X-Forwarded-* / Forwarded, a bound on concurrent requests, and an optional
// redirect of everything to HTTPS. Built once per server from its config.

import type { ServerConfig } from "../config/config-schema.js";
import { CidrSet } from "../http/cidr.js";
import { ProxyError } from "../http/errors.js";
import type { ServerExchange } from "../http/exchange.js";
import type { ForwardedPolicy } from "../http/forwarded.js";
import { getHeader } from "../http/headers.js";
import { ServerStats } from "../telemetry/index.js";
import type { ForwardPolicy } from "./forward.js";

export class ServerPolicy implements ForwardPolicy {
  readonly clearContext: boolean;
  readonly engineWritesDate: boolean;
  readonly maxCallDepth: number;
  /** Undefined when the server sets neither X-Forwarded-* nor Forwarded. */
  readonly forwarded: ForwardedPolicy | undefined;
  private readonly maxConcurrent: number;
  private concurrent = 0;
  private readonly redirect: { readonly port: number; readonly status: number } | undefined;
  /** The server's metrics: set by the runtime once the server listens (its port known). */
  stats: ServerStats = ServerStats.detached();

  constructor(s: ServerConfig, routerLabel: string) {
    this.clearContext = s.clearContext;
    this.engineWritesDate = s.engine === "uws";
    this.maxCallDepth = s.maxCallDepth;
    this.maxConcurrent = s.maxConcurrentRequests ?? Number.POSITIVE_INFINITY;
    const xForwarded = s.xForwardedFor ?? s.clearContext;
    const f = s.addForwardedHeader;
    this.forwarded =
      xForwarded || f
        ? {
            xForwarded,
            forwarded: f
              ? { by: f.by ?? { kind: "requestRandom" }, for: f.for ?? { kind: "ip" } }
              : undefined,
            trustedProxies: new CidrSet(s.trustedProxies),
            routerLabel,
          }
        : undefined;
    this.redirect = s.httpsRedirect
      ? { port: s.httpsRedirect.port, status: Number(s.httpsRedirect.status) }
      : undefined;
  }

  /** Takes a slot for a request; throws the 503 when the server is at its limit. */
  admit(): void {
    if (this.concurrent >= this.maxConcurrent) {
      throw new ProxyError(
        "LINTEL_OVERLOADED",
        `the server is at its limit of ${this.maxConcurrent} concurrent requests (maxConcurrentRequests)`,
      );
    }
    this.concurrent++;
  }

  release(): void {
    this.concurrent--;
  }

  /**
   * Answers with a redirect to HTTPS when the server is configured to (counted in the
   * server's metrics); returns true if it did.
   */
  redirected(ex: ServerExchange): boolean {
    if (!this.redirect) return false;
    const start = performance.now();
    const host = getHeader(ex.headers, "host");
    let status = this.redirect.status;
    let location: string | undefined;
    if (host) {
      const name = host.startsWith("[")
        ? host.slice(0, host.indexOf("]") + 1)
        : host.split(":")[0]!;
      location = `https://${name}${this.redirect.port === 443 ? "" : `:${this.redirect.port}`}${ex.url}`;
    } else {
      status = 400;
    }
    const body = Buffer.from(
      location ? `Moved to ${location}\n` : "a redirect to HTTPS needs a Host header\n",
    );
    const headers = ["content-type", "text/plain; charset=utf-8", "via", "1.1 lintel"];
    if (location) headers.push("location", location);
    ex.respond(status, headers, body);
    this.stats.record(status, performance.now() - start, "");
    return true;
  }
}
