// What an operator sees of a client (a bound id) at /admin/clients.json: its address
// state, its load balancer and failure accrual, and each endpoint's state. Computed when
// asked from what the client keeps anyway; plain data, so a worker thread can send it.

import type { Figure } from "./balancers/balancer.js";

/** An endpoint under failure accrual: live, dead for a while yet, or probing. */
export type EndpointState = "live" | "dead" | "probing";

export interface EndpointView {
  /** `host:port` (`[v6]:port`). */
  readonly address: string;
  readonly weight: number;
  /** What the namer says of the address (a host name, a pod), when it says anything. */
  readonly meta?: Readonly<Record<string, string | number | boolean>>;
  readonly state: EndpointState;
  /** Dead: when its backoff wait ends (ISO time), and the milliseconds left. */
  readonly until?: string;
  readonly for?: number;
  /**
   * Probing: `waiting` (its wait is over, the next request picked is the probe) or
   * `in flight` (the probe has been sent).
   */
  readonly probe?: "waiting" | "in flight";
  /** Requests dispatched to it and not finished (what the balancers read). */
  readonly load: number;
  /** Of those, the ones waiting for a connection. */
  readonly pending: number;
  /** The failure accrual record as the kind keeps it (absent for `none`). */
  readonly accrual?: Readonly<Record<string, Figure>>;
  /** What the balancer kind keeps for it (ewma: `costMs`; aperture: `inAperture`). */
  readonly balancer?: Readonly<Record<string, Figure>>;
  /** The last outcome failure accrual recorded: when (ISO time) and which. */
  readonly lastOutcomeAt?: string;
  readonly lastOutcome?: "success" | "failure";
}

export interface ClientView {
  /** The bound id, e.g. `/$/inet/127.0.0.1/8080` or `/#/io.l5d.k8s/default/http/users`. */
  readonly id: string;
  /** The address set's state (as Linkerd's client_state.json): pending, neg, failed or bound. */
  readonly state: "pending" | "neg" | "failed" | "bound";
  readonly error?: string;
  readonly loadBalancer: {
    readonly kind: string;
    /** Endpoints in use (aperture's window; all for the other kinds). */
    readonly size: number;
    /** Endpoints failure accrual lets requests go to (live, or due for a probe). */
    readonly available: number;
    /** Requests in flight over all endpoints. */
    readonly load: number;
    /** What the kind adds (aperture: `smoothedLoad`). */
    readonly figures?: Readonly<Record<string, Figure>>;
  };
  readonly failureAccrual: { readonly kind: string };
  /** When a request last went through this client (ISO time). */
  readonly lastUsed: string;
  readonly endpoints: readonly EndpointView[];
}

export interface RouterClientsView {
  readonly router: string;
  readonly clients: readonly ClientView[];
}

/** A clock time (epoch ms) as ISO 8601. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
