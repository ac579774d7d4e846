// The concrete stack of a bound id, built when the router first sends to it: the
// client's policy from the router's `client` block (load balancer, failure accrual,
// failFast, requeue budget, attempt timeout, request limits, egress checks) and the
// connection pools of its endpoints (the protocol, pool sizes, connect timeout, TLS
// origination).

import { Client, type ClientPolicy } from "../client/client.js";
import { h2Pools, http1Pools } from "../client/connection-pool.js";
import type { ClientParamsFor } from "../client/params.js";
import {
  type ClientTlsConfig,
  UpstreamTls,
  type UpstreamTlsContexts,
} from "../client/upstream-tls.js";
import type { Clock } from "../clock.js";
import { http2Settings } from "../config/h2-settings.js";
import { ProxyError } from "../http/errors.js";
import type { Logger } from "../log.js";
import type { Address, BoundName } from "../naming/index.js";
import { RetryBudget } from "../policy/retry-budget.js";
import type { RouterMetrics } from "../telemetry/index.js";
import type { EgressPolicy } from "./egress-policy.js";
import type { PolicyKinds } from "./policy-kinds.js";
import { DEFAULT_RETRY_BUDGET } from "./service-policy.js";

export interface ClientStackOptions {
  readonly paramsFor: ClientParamsFor;
  readonly kinds: PolicyKinds;
  readonly tlsContexts: UpstreamTlsContexts;
  readonly metrics: RouterMetrics;
  readonly clock: Pick<Clock, "now">;
  readonly log: Logger;
  /** Set on a router that leaves the cluster: every address is checked before it is dialled. */
  readonly egress?: EgressPolicy;
  /** The router's protocol: what its clients speak to the upstreams unless one says otherwise. */
  readonly protocol: "http" | "h2";
}

/** Makes the client of a bound id. */
export function clientStack(o: ClientStackOptions): (bound: BoundName) => Client {
  const checkAddress = o.egress && egressCheck(o.egress);
  return (bound) => {
    const key = bound.id.show;
    const p = o.paramsFor(bound.id);
    const policy: ClientPolicy = {
      checkAddress,
      balancer: o.kinds.balancer(p.loadBalancer),
      accrual: o.kinds.accrual(p.failureAccrual),
      failFast: p.failFast ?? false,
      requeueBudget: new RetryBudget(p.requeueBudget ?? DEFAULT_RETRY_BUDGET, o.clock),
      attemptTimeoutMs: p.requestAttemptTimeoutMs,
      maxRequests: p.maxRequests ?? Number.POSITIVE_INFINITY,
      maxPendingRequests: p.maxPendingRequests ?? Number.POSITIVE_INFINITY,
      kinds: o.kinds.kindsOf(p.loadBalancer, p.failureAccrual),
      forwardClientCert: p.forwardClientCert,
    };
    const stats = o.metrics.client(key);
    const pool = p.hostConnectionPool;
    const h2 = (p.protocol ?? o.protocol) === "h2";
    const pools = h2 ? h2Pools : http1Pools;
    return new Client(
      bound,
      policy,
      pools({
        maxConnections: pool?.maxSize,
        idleTimeMs: pool?.idleTimeMs,
        minConnections: pool?.minSize,
        maxWaiters: pool?.maxWaiters,
        connectTimeoutMs: p.connectTimeoutMs,
        tls: p.tls ? upstreamTls(p.tls, key, o, h2 ? ["h2"] : undefined) : undefined,
        counters: stats,
        http2Settings: http2Settings(p),
      }),
      o.log,
      stats,
    );
  };
}

function upstreamTls(
  tls: ClientTlsConfig,
  client: string,
  o: ClientStackOptions,
  protocols: readonly string[] | undefined,
): UpstreamTls {
  if (tls.disableValidation) {
    o.log.warn(
      "TLS certificate validation is DISABLED for this client (tls.disableValidation): its upstreams are not authenticated",
      { client },
    );
  }
  return new UpstreamTls(tls, o.tlsContexts.get(tls), protocols);
}

/** The egress rules on the address about to be dialled, whatever the name resolved to before. */
function egressCheck(egress: EgressPolicy): (a: Address) => ProxyError | undefined {
  return (a) => {
    const name = typeof a.meta.hostname === "string" ? a.meta.hostname : undefined;
    try {
      if (name !== undefined) egress.checkHost(name);
      egress.checkAddress(a.host, name);
      return undefined;
    } catch (e) {
      if (e instanceof ProxyError) return e;
      throw e;
    }
  };
}
