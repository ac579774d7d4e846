// What a server (one listener) adds to its router's behaviour: context clearing, call
// depth, X-Forwarded-* / Forwarded, a bound on concurrent requests, ACME HTTP-01
// answers, and an optional redirect of everything to HTTPS. Built once per server.

import type { ServerConfig } from "../config/config-schema.js";
import { CidrSet } from "../http/cidr.js";
import { ProxyError } from "../http/errors.js";
import type { ServerExchange } from "../http/exchange.js";
import type { ForwardedPolicy } from "../http/forwarded.js";
import { getHeader } from "../http/headers.js";
import { ServerStats } from "../telemetry/index.js";
import type { ForwardPolicy } from "./forward.js";

const ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/";

export class ServerPolicy implements ForwardPolicy {
  readonly clearContext: boolean;
  readonly engineWritesDate: boolean;
  readonly maxCallDepth: number;
  /** The server's timeoutMs: every request must be answered this long after it arrived. */
  readonly timeoutMs: number | undefined;
  /** Undefined when the server sets neither X-Forwarded-* nor Forwarded. */
  readonly forwarded: ForwardedPolicy | undefined;
  private readonly maxConcurrent: number;
  private concurrent = 0;
  private readonly redirect: { readonly port: number; readonly status: number } | undefined;
  /** The server's metrics: set by the runtime once the server listens (its port known). */
  stats: ServerStats = ServerStats.detached();

  constructor(
    s: ServerConfig,
    routerLabel: string,
    /** The ACME HTTP-01 answer for a token (plain-HTTP servers, when the config uses ACME). */
    private readonly acmeHttp?: (token: string) => Promise<string | undefined>,
  ) {
    this.clearContext = s.clearContext;
    this.engineWritesDate = s.engine === "uws";
    this.maxCallDepth = s.maxCallDepth;
    this.timeoutMs = s.timeoutMs;
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
   * Answers an ACME HTTP-01 validation (`/.well-known/acme-challenge/<token>`) from the
   * shared store, before routing and before any redirect to HTTPS; returns true if the
   * request is one.
   */
  answeredChallenge(ex: ServerExchange): boolean {
    if (this.acmeHttp === undefined || !ex.url.startsWith(ACME_CHALLENGE_PATH)) return false;
    const start = performance.now();
    const token = ex.url.slice(ACME_CHALLENGE_PATH.length).split("?")[0]!;
    const headers = ["content-type", "text/plain", "cache-control", "no-store"];
    void this.acmeHttp(token).then(
      (answer) => {
        if (ex.aborted) return;
        const status = answer === undefined ? 404 : 200;
        ex.respond(status, headers, Buffer.from(answer ?? "no such ACME challenge\n"));
        this.stats.record(status, performance.now() - start, "");
      },
      () => {
        if (ex.aborted) return;
        ex.respond(503, headers, Buffer.from("the ACME store cannot be read now\n"));
        this.stats.record(503, performance.now() - start, "");
      },
    );
    return true;
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
