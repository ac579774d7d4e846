// heap, as Finagle's heap balancer: every request goes to the least loaded endpoint (fewest
// requests in flight per unit of weight). Loads are read live from the endpoints, not pushed
// to the balancer, so a scan replaces Finagle's heap; ties rotate, so idle endpoints share.

import { object } from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import type { BalancedEndpoint, LoadBalancer } from "./balancer.js";
import { inflightPerWeight, leastLoaded, totalInflight } from "./least-loaded.js";

class Heap<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private endpoints: readonly E[] = [];
  /** Where the next scan starts: the first of equally loaded endpoints met wins. */
  private from = 0;

  update(endpoints: readonly E[]): void {
    this.endpoints = endpoints;
    this.from = 0;
  }

  pick(avoid?: E): E | undefined {
    const from = this.from;
    this.from = from + 1 < this.endpoints.length ? from + 1 : 0;
    return leastLoaded(this.endpoints, avoid, inflightPerWeight, from);
  }

  stats() {
    return { size: this.endpoints.length, load: totalInflight(this.endpoints) };
  }
}

export const heapBalancer = definePlugin({
  category: "loadBalancer",
  kind: "heap",
  schema: object({}),
  create: () => ({ make: <E extends BalancedEndpoint>() => new Heap<E>() }),
});
