// roundRobin: smooth weighted round robin, as nginx's. Each pick adds every available
// endpoint's weight to its running score and takes the highest, which then pays back the
// total: weights 3:1 give a a b a, every cycle, spread rather than in runs.

import { def, integer, object } from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import type { BalancedEndpoint, LoadBalancer } from "./balancer.js";
import { totalInflight } from "./least-loaded.js";

class RoundRobin<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private endpoints: readonly E[] = [];
  /** Each endpoint's running score; a new set starts a new cycle. */
  private scores = new Float64Array(0);

  update(endpoints: readonly E[]): void {
    this.endpoints = endpoints;
    this.scores = new Float64Array(endpoints.length);
  }

  pick(avoid?: E): E | undefined {
    const { endpoints, scores } = this;
    let best = -1;
    let total = 0;
    let avoided = false;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      if (!e.available) continue;
      if (e === avoid) {
        avoided = true;
        continue;
      }
      scores[i] += e.weight;
      total += e.weight;
      if (best < 0 || scores[i]! > scores[best]!) best = i;
    }
    if (best < 0) return avoided ? avoid : undefined;
    scores[best] -= total;
    return endpoints[best];
  }

  stats() {
    return { size: this.endpoints.length, load: totalInflight(this.endpoints) };
  }
}

export const roundRobinBalancer = definePlugin({
  category: "loadBalancer",
  kind: "roundRobin",
  schema: object({
    // Linkerd's key, accepted so its configs load: one pass over the endpoints skips the
    // unavailable ones, so round robin never has to try again.
    maxEffort: def(integer({ min: 1 }), 5),
  }),
  create: () => ({ make: <E extends BalancedEndpoint>() => new RoundRobin<E>() }),
});
