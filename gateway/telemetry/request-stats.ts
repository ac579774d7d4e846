// The request metrics of a router, named as Linkerd 1 names them: per server
// (`rt/<label>/server/<ip>/<port>/…`), per service name (`rt/<label>/service/svc/users/…`)
// and per bound id (`rt/<label>/client/$/inet/127.1/8080/…`). The router gets each group
// once (a server's at listen time, a service's with its binding, a client's with the
// client) and records a finished request with `record()`.

import type { Histogram } from "./histogram.js";
import { type Counter, type Gauge, type Registry, Scope, type ScopeName } from "./registry.js";

/** Failure reasons besides lintel's error codes (LINTEL_CONNECT, …). */
export const CLIENT_CLOSED = "client_closed";
export const RESPONSE_TRUNCATED = "response_truncated";

/**
 * Most service names and most bound ids a router keeps metrics for (per thread). Requests
 * for the ones beyond are counted together under `rt/<label>/overflow/service` or
 * `…/overflow/client`, so a flood of names cannot grow the metrics without bound.
 */
export const MAX_SERVICES = 1000;
export const MAX_CLIENTS = 1000;

/** requests, success, failures (with reasons), status codes and classes, latency. */
export class RequestStats {
  readonly requests: Counter;
  readonly success: Counter;
  readonly failures: Counter;
  readonly latency: Histogram;
  /** By status code; made on first use. */
  private readonly statuses: (Counter | undefined)[] = [];
  /** By status class (2 for 2XX); made on first use. */
  private readonly classes: (Counter | undefined)[] = [];
  private readonly reasons = new Map<string, Counter>();

  constructor(private readonly scope: Scope) {
    this.requests = scope.counter("requests");
    this.success = scope.counter("success");
    this.failures = scope.counter("failures");
    this.latency = scope.histogram("request_latency_ms");
  }

  /**
   * One finished request: `status` is the response's (0 when none was sent), `reason`
   * why it failed ("" when lintel saw no error). It failed when there is a reason or the
   * status is 5XX.
   */
  record(status: number, ms: number, reason: string): void {
    this.requests.n++;
    if (reason !== "") {
      this.failures.n++;
      this.reason(reason).n++;
    } else if (status >= 500) this.failures.n++;
    else this.success.n++;
    if (status >= 100 && status < 600) {
      let code = this.statuses[status];
      if (code === undefined) {
        code = this.scope.counter(`status/${status}`);
        this.statuses[status] = code;
      }
      code.n++;
      const c = (status / 100) | 0;
      let cls = this.classes[c];
      if (cls === undefined) {
        cls = this.scope.counter(`status/${c}XX`);
        this.classes[c] = cls;
      }
      cls.n++;
    }
    this.latency.record(ms);
  }

  private reason(reason: string): Counter {
    let c = this.reasons.get(reason);
    if (!c) {
      c = this.scope.counter(`failures/${reason}`);
      this.reasons.set(reason, c);
    }
    return c;
  }
}

/**
 * A server's request metrics, `load` (the requests it has in flight, open tunnels
 * included), and its tunnels: CONNECT and switched upgrades (WebSocket).
 */
export class ServerStats extends RequestStats {
  readonly load: Gauge;
  readonly tunnels: {
    /** Open now. */
    readonly open: Gauge;
    /** Opened since start. */
    readonly opened: Counter;
    /** Bytes relayed to the client (`down`) and from it (`up`), counted as they flow. */
    readonly bytes: { readonly down: Counter; readonly up: Counter };
  };
  constructor(
    scope: Scope,
    /** Where the server listens, `ip:port` (`[ip]:port` for IPv6), as telemeters show it. */
    readonly address = "",
  ) {
    super(scope);
    this.load = scope.gauge("load");
    this.tunnels = {
      open: scope.gauge("tunnels/open"),
      opened: scope.counter("tunnels/opened"),
      bytes: { down: scope.counter("tunnels/bytes_down"), up: scope.counter("tunnels/bytes_up") },
    };
  }

  /** Metrics reported nowhere, for a server not listening yet. */
  static detached(): ServerStats {
    return new ServerStats(new Scope({ flat: "", prom: "", labels: [] }));
  }
}

/** A service name's request metrics and its retries (Linkerd's `retries/*`). */
export class ServiceStats extends RequestStats {
  /** Requests sent again after a retryable answer. */
  readonly retries: Counter;
  /** Retries the budget refused. */
  readonly budgetExhausted: Counter;
  /** Requests that were past their deadline (totalTimeoutMs, timeoutMs, l5d-ctx-deadline). */
  readonly timeouts: Counter;
  /** Where the budget gauge reads from: the service's live policy. */
  budget: { readonly balance: number } | undefined;
  constructor(scope: Scope) {
    super(scope);
    this.retries = scope.counter("retries/total");
    this.budgetExhausted = scope.counter("retries/budget_exhausted");
    this.timeouts = scope.counter("timeouts/total");
    scope.gauge("retries/budget", () => this.budget?.balance ?? 0);
  }
}

/** What a client's balancer gauges read: the live client of the bound id. */
export interface BalancerSource {
  balancerStats(): { readonly size: number; readonly load: number };
  readonly size: { readonly endpoints: number; readonly dead: number };
}

/**
 * A client's (bound id's) request metrics, its connections to its addresses, and its
 * resilience: requeues, failure accrual, limits, attempt timeouts, the balancer's state.
 */
export class ClientStats extends RequestStats {
  /** Connections opened (Linkerd's `connects`). */
  readonly connects: Counter;
  /** Connections open now. */
  readonly connections: Gauge;
  /** Attempts sent to another endpoint after a connection failure (under requeueBudget). */
  readonly requeues: Counter;
  /** Endpoints marked dead by failure accrual (a failed probe counts again). */
  readonly markedDead: Counter;
  /** Dead endpoints whose probe succeeded. */
  readonly revived: Counter;
  /** Requests refused by maxRequests / maxPendingRequests / maxWaiters. */
  readonly rejected: Counter;
  /** Attempts cut by requestAttemptTimeoutMs. */
  readonly attemptTimeouts: Counter;
  /** The live client (the gauges read it when metrics are taken). */
  source: BalancerSource | undefined;
  constructor(scope: Scope) {
    super(scope);
    this.connects = scope.counter("connects");
    this.connections = scope.gauge("connections");
    this.requeues = scope.counter("retries/requeues");
    this.markedDead = scope.counter("failure_accrual/removals");
    this.revived = scope.counter("failure_accrual/revivals");
    this.rejected = scope.counter("rejected");
    this.attemptTimeouts = scope.counter("timeouts/attempt");
    scope.gauge("loadbalancer/size", () => this.source?.balancerStats().size ?? 0);
    scope.gauge("loadbalancer/load", () => this.source?.balancerStats().load ?? 0);
    scope.gauge("loadbalancer/available", () => {
      const s = this.source?.size;
      return s ? s.endpoints - s.dead : 0;
    });
    scope.gauge("failure_accrual/dead", () => this.source?.size.dead ?? 0);
  }
}

/** Metric groups by id up to a limit, and the one the rest share. */
interface CappedGroup<T> {
  readonly byId: Map<string, T>;
  overflow?: T;
}

/** A router's metric groups on one thread. */
/** A cache's misses, evictions (over capacity) and expiries (idle). */
export interface CacheCounters {
  readonly misses: Counter;
  readonly evicts: Counter;
  readonly expires: Counter;
}

const cacheCounters = (scope: Scope, prefix: string): CacheCounters => ({
  misses: scope.counter(`${prefix}/misses`),
  evicts: scope.counter(`${prefix}/evicts`),
  expires: scope.counter(`${prefix}/expires`),
});

export class RouterMetrics {
  /** Services and clients by id, each up to its limit; the rest share an overflow group. */
  private readonly services: CappedGroup<ServiceStats> = { byId: new Map() };
  private readonly clients: CappedGroup<ClientStats> = { byId: new Map() };
  /** The binding cache's misses, evictions (over capacity) and expiries (idle). */
  readonly bindcache: CacheCounters;
  /** The client cache's: clients made, closed over capacity, closed when idle. */
  readonly clientcache: CacheCounters;

  constructor(
    private readonly registry: Registry,
    readonly label: string,
    private readonly limits = { services: MAX_SERVICES, clients: MAX_CLIENTS },
  ) {
    const router = this.registry.scope({
      flat: `rt/${label}`,
      prom: "rt",
      labels: [["rt", label]],
    });
    this.bindcache = cacheCounters(router, "bindcache/path");
    this.clientcache = cacheCounters(router, "bindcache/client");
  }

  /** `ip`/`port` as the server listens. */
  server(ip: string, port: number): ServerStats {
    const id = `${ip}/${port}`;
    const address = ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
    return new ServerStats(this.registry.scope(this.named("server", id)), address);
  }

  /** A service name, as shown (`/svc/users`). */
  service(name: string): ServiceStats {
    return this.capped("service", name, this.services, this.limits.services, ServiceStats);
  }

  /** A bound id, as shown (`/$/inet/127.1/8080`). */
  client(boundId: string): ClientStats {
    return this.capped("client", boundId, this.clients, this.limits.clients, ClientStats);
  }

  private capped<T extends RequestStats>(
    kind: "service" | "client",
    shown: string,
    group: CappedGroup<T>,
    limit: number,
    Stats: new (scope: Scope) => T,
  ): T {
    const id = trimSlash(shown);
    const known = group.byId.get(id);
    if (known) return known;
    if (group.byId.size >= limit) {
      group.overflow ??= new Stats(this.overflow(kind));
      return group.overflow;
    }
    const stats = new Stats(this.registry.scope(this.named(kind, id)));
    group.byId.set(id, stats);
    return stats;
  }

  private named(kind: "server" | "service" | "client", id: string): ScopeName {
    return {
      flat: `rt/${this.label}/${kind}/${id}`,
      prom: `rt:${kind}`,
      labels: [
        ["rt", this.label],
        [kind, id],
      ],
    };
  }

  private overflow(kind: "service" | "client"): Scope {
    return this.registry.scope({
      flat: `rt/${this.label}/overflow/${kind}`,
      prom: `rt:overflow:${kind}`,
      labels: [["rt", this.label]],
    });
  }
}

/** Linkerd names services and clients without the leading slash: `svc/users`. */
function trimSlash(shown: string): string {
  return shown.length > 1 && shown.startsWith("/") ? shown.slice(1) : shown;
}

/** The process scope (`process/…`, Prometheus `process:…`). */
export function processScope(registry: Registry): Scope {
  return registry.scope({ flat: "process", prom: "process", labels: [] });
}
