// What a load balancer is (a kind: p2c, ewma, aperture, heap, roundRobin, or a plugin's)
// and what it sees of the endpoints of one client. A balancer is made per client; it is
// told when the endpoints change, picks one per attempt, and observes each attempt's
// outcome (latency, success) so it can learn.

/** An endpoint as a balancer sees it. */
export interface BalancedEndpoint {
  /** `host:port`, unique in the client. */
  readonly key: string;
  /** Relative share of traffic (namer weights, `* w` in address files); 1 by default; 0: only when nothing else is available. */
  readonly weight: number;
  /** Requests dispatched to it and not finished. */
  readonly inflight: number;
  /** False while failure accrual has marked it dead (its backoff is running). */
  readonly available: boolean;
}

export interface LoadBalancer<E extends BalancedEndpoint = BalancedEndpoint> {
  /** The client's endpoints changed: the list from now on (a new array each time). */
  update(endpoints: readonly E[]): void;
  /**
   * An endpoint for the next attempt among the available ones, avoiding `avoid` (the
   * endpoint a retry follows) when another is available; undefined when none is.
   */
  pick(avoid?: E): E | undefined;
  /**
   * An attempt dispatched to `e` (and only such) has its outcome after `latencyMs`
   * (the answer's head, or the error); `ok` as the response classifier said. Attempts
   * given up from above (the client left, a deadline, a retry) are not observed. A
   * balancer that learns nothing from outcomes leaves it out, and attempts go untimed.
   */
  observe?(e: E, latencyMs: number, ok: boolean): void;
  /** For metrics: endpoints in use (aperture's subset; all for the others) and the load. */
  stats(): { readonly size: number; readonly load: number };
  /**
   * For /admin/clients.json, computed when asked (never kept per request): what this kind
   * knows beyond stats(), e.g. ewma's cost per endpoint. Optional: a kind (a plugin's too)
   * that leaves it out shows only what every balancer has.
   */
  describe?(): BalancerDescription;
}

/** A figure the admin server shows as is (JSON). */
export type Figure = number | string | boolean | null;

/** What a balancer kind tells the admin server about itself and its endpoints. */
export interface BalancerDescription {
  /** Figures of the balancer as a whole, e.g. aperture's smoothed load. */
  readonly figures?: Readonly<Record<string, Figure>>;
  /** Figures of an endpoint (by its key), e.g. ewma's `costMs`; undefined: none. */
  readonly endpoint?: (key: string) => Readonly<Record<string, Figure>> | undefined;
}

/** A load balancer kind's instance: makes one balancer per client. */
export interface LoadBalancerFactory {
  make<E extends BalancedEndpoint>(): LoadBalancer<E>;
}
