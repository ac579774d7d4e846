// A client is everything lintel keeps for one bound destination (a bound id), the
// concrete layer of the request path: its live address set, an endpoint per address,
// the load balancer, failure accrual per endpoint, the client's request limits, and
// requeues of attempts that could not connect. When the addresses change, new
// endpoints get traffic and removed ones finish their requests.

import { coarseClock } from "../clock.js";
import { ProxyError } from "../http/errors.js";
import type { Logger } from "../log.js";
import { type Addr, type Address, addressKey, type BoundName } from "../naming/index.js";
import type { RetryBudget } from "../policy/retry-budget.js";
import type { BalancerSource, ClientStats } from "../telemetry/index.js";
import type { FailureAccrualPolicy } from "./accrual/accrual.js";
import {
  Attempt,
  type AttemptEndpoint,
  type AttemptListener,
  type AttemptOwner,
  type CallPolicy,
} from "./attempt.js";
import type {
  BalancerDescription,
  LoadBalancer,
  LoadBalancerFactory,
} from "./balancers/balancer.js";
import { type ClientView, type EndpointView, isoTime } from "./client-view.js";
import type { PoolFactory } from "./connection-pool.js";
import { Endpoint } from "./endpoint.js";
import type { UpstreamHandler, UpstreamRequest } from "./http1/connection.js";

/** The client-level settings of a bound id (its `client` block), as built objects. */
export interface ClientPolicy {
  /** Refuses an address this client must not dial (an egress router's rules), or undefined. */
  readonly checkAddress?: (address: Address) => ProxyError | undefined;
  readonly balancer: LoadBalancerFactory;
  readonly accrual: FailureAccrualPolicy;
  /** A connection failure marks the endpoint dead at once (Linkerd's failFast). */
  readonly failFast: boolean;
  /** Attempts that could not connect go to another endpoint while this allows. */
  readonly requeueBudget: RetryBudget;
  readonly attemptTimeoutMs: number | undefined;
  /** Envoy-style limits: requests in flight, and waiting for a connection. */
  readonly maxRequests: number;
  readonly maxPendingRequests: number;
  /** The kinds of `balancer` and `accrual`, as the config names them (for the admin server). */
  readonly kinds?: { readonly balancer: string; readonly accrual: string };
  /** Send the downstream's TLS client certificate upstream (Linkerd's forwardClientCert). */
  readonly forwardClientCert?: boolean;
}

/** An attempt never requeues more often than this, whatever the budget. */
const MAX_REQUEUES = 25;

export class Client implements AttemptOwner, BalancerSource {
  private endpoints: Endpoint[] = [];
  private readonly byKey = new Map<string, Endpoint>();
  private readonly balancer: LoadBalancer<Endpoint>;
  /** The balancer learns from latencies, so attempts are timed. */
  private readonly timed: boolean;
  private addr: Addr;
  private readonly stopObserving: () => void;
  private waiters: (() => void)[] = [];
  /** Attempts in flight on this client's endpoints. */
  private active = 0;
  lastUsed = Date.now();

  /** Whether requests carry the downstream's client certificate (x-forwarded-client-cert). */
  get forwardsClientCert(): boolean {
    return this.policy.forwardClientCert === true;
  }

  constructor(
    readonly bound: BoundName,
    private readonly policy: ClientPolicy,
    /** The connection pool of each endpoint (the client's protocol and settings). */
    private readonly pools: PoolFactory,
    private readonly log: Logger,
    /** The bound id's metrics (they outlive this client when it is replaced). */
    readonly stats: ClientStats,
  ) {
    this.balancer = policy.balancer.make<Endpoint>();
    this.timed = this.balancer.observe !== undefined;
    this.stopObserving = bound.addr.observe((a) => this.update(a));
    this.addr = { kind: "pending" };
    this.update(bound.addr.sample());
    stats.source = this;
  }

  /** The address state: pending, neg, failed, or bound (possibly to no addresses). */
  get state(): Addr {
    return this.addr;
  }

  /** Endpoints now, and those failure accrual has marked dead. */
  get size(): { readonly endpoints: number; readonly dead: number } {
    let dead = 0;
    for (const e of this.endpoints) if (!e.available) dead++;
    return { endpoints: this.endpoints.length, dead };
  }

  balancerStats(): { readonly size: number; readonly load: number } {
    return this.balancer.stats();
  }

  /**
   * The client and its endpoints now, for /admin/clients.json: read from what the client,
   * its balancer and failure accrual keep anyway (nothing is recorded for it).
   */
  describe(now = Date.now()): ClientView {
    const a = this.addr;
    const lb = this.balancer.stats();
    const described = this.balancer.describe?.();
    const size = this.size;
    return {
      id: this.bound.id.show,
      state: a.kind,
      ...(a.kind === "failed" ? { error: a.error.message } : {}),
      loadBalancer: {
        kind: this.policy.kinds?.balancer ?? "unknown",
        size: lb.size,
        available: size.endpoints - size.dead,
        load: lb.load,
        ...(described?.figures ? { figures: described.figures } : {}),
      },
      failureAccrual: { kind: this.policy.kinds?.accrual ?? "unknown" },
      lastUsed: isoTime(this.lastUsed),
      endpoints: this.endpoints.map((e) => endpointView(e, described, now)),
    };
  }

  /** Resolves when the address state leaves pending (or right away if it has), or after `timeoutMs`. */
  whenResolved(timeoutMs: number): Promise<void> {
    if (this.addr.kind !== "pending") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Sends one attempt of `req` to an endpoint the balancer picks (not `avoid` when another
   * is available); `next` gets the answer, or the error when no endpoint can take it.
   */
  dispatch(
    req: UpstreamRequest,
    next: UpstreamHandler,
    call: CallPolicy,
    avoid?: AttemptEndpoint,
  ): void {
    this.lastUsed = coarseClock.now();
    this.policy.requeueBudget.deposit();
    this.send(req, next, call, avoid as Endpoint | undefined, 0);
  }

  /**
   * An endpoint for a CONNECT tunnel: the balancer's pick, under the address checks. The
   * tunnel reports whether it could connect through `observe`, as an attempt does.
   */
  pickForTunnel(service: string): Endpoint | ProxyError {
    this.lastUsed = coarseClock.now();
    const endpoint = this.balancer.pick(undefined);
    if (!endpoint) {
      return this.endpoints.length === 0
        ? new ProxyError(
            "LINTEL_NO_ADDRESSES",
            `${this.bound.id.show} has no addresses for ${service}`,
          )
        : new ProxyError(
            "LINTEL_UNAVAILABLE",
            `all ${this.endpoints.length} endpoints of ${this.bound.id.show} are marked dead by failure accrual (for ${service})`,
          );
    }
    const denied = this.policy.checkAddress?.(endpoint.address);
    if (denied) return denied;
    endpoint.health.admit();
    return endpoint;
  }

  private send(
    req: UpstreamRequest,
    next: UpstreamHandler,
    call: CallPolicy,
    avoid: Endpoint | undefined,
    requeues: number,
  ): void {
    if (this.active >= this.policy.maxRequests) {
      this.stats.rejected.n++;
      next.onError(
        new ProxyError(
          "LINTEL_OVERLOADED",
          `${this.bound.id.show} has ${this.active} requests in flight, its limit (client maxRequests), for ${call.service}`,
        ),
      );
      return;
    }
    const endpoint = this.balancer.pick(avoid);
    if (!endpoint) {
      next.onError(
        this.endpoints.length === 0
          ? new ProxyError(
              "LINTEL_NO_ADDRESSES",
              `${this.bound.id.show} has no addresses for ${call.service}`,
            )
          : new ProxyError(
              "LINTEL_UNAVAILABLE",
              `all ${this.endpoints.length} endpoints of ${this.bound.id.show} are marked dead by failure accrual (for ${call.service})`,
            ),
      );
      return;
    }
    if (endpoint.pending >= this.policy.maxPendingRequests) {
      this.stats.rejected.n++;
      next.onError(
        new ProxyError(
          "LINTEL_OVERLOADED",
          `${endpoint.key} of ${this.bound.id.show} has ${endpoint.pending} requests waiting for a connection (client maxPendingRequests)`,
        ),
      );
      return;
    }
    const denied = this.policy.checkAddress?.(endpoint.address);
    if (denied) {
      next.onError(denied);
      return;
    }
    endpoint.health.admit();
    this.active++;
    const attempt = new Attempt(
      this,
      endpoint,
      req,
      next,
      call,
      this.policy.attemptTimeoutMs,
      this.timed,
    );
    attempt.requeues = requeues;
    (next as Partial<AttemptListener>).attempting?.(attempt);
    endpoint.dispatch(req, attempt);
  }

  // ---- AttemptOwner -------------------------------------------------------------------------

  observe(e: Endpoint, latencyMs: number, ok: boolean, connectFailure: boolean): void {
    this.balancer.observe?.(e, latencyMs, ok);
    const before = e.health.state;
    if (connectFailure && this.policy.failFast) e.health.markDead();
    else e.health.record(ok);
    const after = e.health.state;
    if (after === "dead" && before !== "dead") {
      this.stats.markedDead.n++;
      this.log.info(
        before === "probing"
          ? "endpoint still failing after its backoff: marked dead again"
          : "endpoint marked dead by failure accrual",
        { client: this.bound.id.show, endpoint: e.key, deadForMs: e.health.deadUntil - Date.now() },
      );
    } else if (before === "probing" && after === "alive") {
      this.stats.revived.n++;
      this.log.info("endpoint revived", { client: this.bound.id.show, endpoint: e.key });
    }
  }

  interrupted(e: Endpoint): void {
    e.health.abandon();
  }

  rejected(e: Endpoint): void {
    e.health.abandon();
    this.stats.rejected.n++;
  }

  attemptTimedOut(): void {
    this.stats.attemptTimeouts.n++;
  }

  requeue(attempt: Attempt, _err: Error): boolean {
    if (attempt.requeues >= MAX_REQUEUES || this.endpoints.length < 2) return false;
    if (!this.policy.requeueBudget.tryWithdraw()) return false;
    this.stats.requeues.n++;
    this.send(
      attempt.req,
      attempt.next,
      attempt.call,
      attempt.endpoint as Endpoint,
      attempt.requeues + 1,
    );
    return true;
  }

  finished(attempt: Attempt): void {
    this.active--;
    (attempt.endpoint as Endpoint).release();
  }

  private update(a: Addr): void {
    this.addr = a;
    if (a.kind === "bound") {
      const next = new Map(a.addresses.map((x) => [addressKey(x), x]));
      for (const [key, ep] of this.byKey) {
        const x = next.get(key);
        if (x === undefined || x.weight !== ep.address.weight) {
          this.byKey.delete(key);
          void ep.close();
        }
      }
      for (const [key, x] of next) {
        if (!this.byKey.has(key)) {
          this.byKey.set(key, new Endpoint(x, this.pools, this.policy.accrual));
        }
      }
      this.endpoints = [...this.byKey.values()];
      this.balancer.update(this.endpoints);
      this.log.debug("addresses changed", {
        client: this.bound.id.show,
        addresses: this.endpoints.length,
      });
    }
    if (a.kind !== "pending" && this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const r of w) r();
    }
  }

  /** Stops using the client: with `now`, requests still in flight are cut. */
  close(now = false): Promise<void> {
    this.stopObserving();
    if (this.stats.source === this) this.stats.source = undefined;
    const eps = [...this.byKey.values()];
    this.byKey.clear();
    this.endpoints = [];
    return Promise.all(eps.map((e) => (now ? e.destroy() : e.close()))).then(() => {});
  }
}

function endpointView(
  e: Endpoint,
  described: BalancerDescription | undefined,
  now: number,
): EndpointView {
  const h = e.health;
  const meta = e.address.meta;
  let state: Pick<EndpointView, "state" | "until" | "for" | "probe">;
  if (h.state === "alive") state = { state: "live" };
  else if (h.state === "probing") state = { state: "probing", probe: "in flight" };
  // Dead with its wait over: the next request picked is its probe (Finagle's ProbeOpen).
  else if (h.available) state = { state: "probing", probe: "waiting" };
  else {
    state = {
      state: "dead",
      until: isoTime(h.deadUntil),
      for: Math.max(0, h.deadUntil - now),
    };
  }
  const record = h.describeRecord();
  const figures = described?.endpoint?.(e.key);
  const last = h.lastOutcome;
  return {
    address: e.key,
    weight: e.weight,
    ...(Object.keys(meta).length > 0 ? { meta } : {}),
    ...state,
    load: e.inflight,
    pending: e.pending,
    ...(record ? { accrual: record } : {}),
    ...(figures ? { balancer: figures } : {}),
    ...(last
      ? { lastOutcomeAt: isoTime(last.at), lastOutcome: last.ok ? "success" : "failure" }
      : {}),
  };
}
