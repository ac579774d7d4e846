// An auth layer's metrics: `rt/<router>/auth/<name>/…` in metrics.json, `rt:auth:…` with
// labels `rt` and `auth` in Prometheus. Every layer counts the requests it let pass
// (`allowed`), refused or answered itself (`denied`) and could not decide because
// something it depends on failed (`errors`: a JWKS that cannot be fetched, an auth
// service that is down); each kind adds its own counters (`cache_hits`, …).

import type { Counter, Registry, Scope } from "../../telemetry/registry.js";

export class AuthMetrics {
  readonly allowed: Counter;
  readonly denied: Counter;
  readonly errors: Counter;
  readonly cacheHits: Counter;
  private readonly scope: Scope;

  constructor(registry: Registry, router: string, name: string) {
    this.scope = registry.scope({
      flat: `rt/${router}/auth/${name}`,
      prom: "rt:auth",
      labels: [
        ["rt", router],
        ["auth", name],
      ],
    });
    this.allowed = this.scope.counter("allowed");
    this.denied = this.scope.counter("denied");
    this.errors = this.scope.counter("errors");
    this.cacheHits = this.scope.counter("cache_hits");
  }

  /** Another counter of this layer (`denied/expired`, `jwks/loads`), made once by its owner. */
  counter(stat: string): Counter {
    return this.scope.counter(stat);
  }
}
