// Load balancers choose an endpoint per request. The default is power of two choices,
// least loaded (Linkerd's p2c): sample two endpoints (in proportion to their weights) and
// take the one with fewer requests in flight per unit of weight.

import type { Endpoint } from "./endpoint.js";

export interface Balancer {
  pick(endpoints: readonly Endpoint[]): Endpoint | undefined;
}

export type Rng = () => number;

function weightedIndex(endpoints: readonly Endpoint[], total: number, rng: Rng): number {
  let r = rng() * total;
  for (let i = 0; i < endpoints.length; i++) {
    r -= endpoints[i]!.weight;
    if (r < 0) return i;
  }
  return endpoints.length - 1;
}

export class P2CBalancer implements Balancer {
  constructor(private readonly rng: Rng = Math.random) {}

  pick(endpoints: readonly Endpoint[]): Endpoint | undefined {
    const n = endpoints.length;
    if (n <= 1) return endpoints[0];
    let total = 0;
    let uniform = true;
    const w0 = endpoints[0]!.weight;
    for (const e of endpoints) {
      total += e.weight;
      if (e.weight !== w0) uniform = false;
    }
    if (total <= 0) return undefined;
    let a: number;
    let b: number;
    if (uniform) {
      a = Math.floor(this.rng() * n);
      b = Math.floor(this.rng() * (n - 1));
      if (b >= a) b++;
    } else {
      a = weightedIndex(endpoints, total, this.rng);
      b = weightedIndex(endpoints, total, this.rng);
    }
    const ea = endpoints[a]!;
    const eb = endpoints[b]!;
    // Load per unit of weight; a zero-weight endpoint is chosen only when nothing else is.
    const la = ea.weight > 0 ? ea.inflight / ea.weight : Infinity;
    const lb = eb.weight > 0 ? eb.inflight / eb.weight : Infinity;
    return lb < la ? eb : ea;
  }
}
