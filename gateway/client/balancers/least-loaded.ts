// Loads and the least-loaded scan the balancer kinds share: heap picks with the scan, and
// the power-of-two-choices kinds fall back to it when their draws find nothing usable.

import type { BalancedEndpoint } from "./balancer.js";

/** An endpoint's load as a balancer sees it; `i` is its index in the balancer's list. */
export type Load<E extends BalancedEndpoint> = (e: E, i: number) => number;

/** Requests in flight per unit of weight; a zero-weight endpoint only when nothing else is. */
export function inflightPerWeight(e: BalancedEndpoint): number {
  return e.weight > 0 ? e.inflight / e.weight : Infinity;
}

/** Requests in flight over all the endpoints (the `load` of a balancer's stats). */
export function totalInflight(endpoints: readonly BalancedEndpoint[]): number {
  let n = 0;
  for (const e of endpoints) n += e.inflight;
  return n;
}

/**
 * The available endpoint with the least load, scanning from index `from` (ties go to the
 * first met); `avoid` only when no other is available; undefined when none is.
 */
export function leastLoaded<E extends BalancedEndpoint>(
  endpoints: readonly E[],
  avoid: E | undefined,
  load: Load<E>,
  from = 0,
): E | undefined {
  const n = endpoints.length;
  let best: E | undefined;
  let bestLoad = 0;
  let avoided = false;
  for (let k = 0; k < n; k++) {
    const i = from + k < n ? from + k : from + k - n;
    const e = endpoints[i]!;
    if (!e.available) continue;
    if (e === avoid) {
      avoided = true;
      continue;
    }
    const l = load(e, i);
    if (best === undefined || l < bestLoad) {
      best = e;
      bestLoad = l;
    }
  }
  return best ?? (avoided ? avoid : undefined);
}
