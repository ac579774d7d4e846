// p2c, Linkerd's default load balancer: power of two choices, least loaded. Two distinct
// endpoints are drawn (by weight when weights differ) and the one with fewer requests in
// flight per unit of weight gets the request.

import { def, integer, object } from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import type { BalancedEndpoint, LoadBalancer } from "./balancer.js";
import { inflightPerWeight, leastLoaded, totalInflight } from "./least-loaded.js";
import { twoChoices, WeightedSet } from "./two-choices.js";

class P2C<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private endpoints: readonly E[] = [];
  private readonly set = new WeightedSet();

  constructor(
    private readonly random: () => number,
    private readonly maxEffort: number,
  ) {}

  update(endpoints: readonly E[]): void {
    this.endpoints = endpoints;
    this.set.clear(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) this.set.add(i, endpoints[i]!.weight);
  }

  pick(avoid?: E): E | undefined {
    const { endpoints } = this;
    return (
      twoChoices(endpoints, this.set, this.random, this.maxEffort, avoid, inflightPerWeight) ??
      leastLoaded(endpoints, avoid, inflightPerWeight)
    );
  }

  stats() {
    return { size: this.endpoints.length, load: totalInflight(this.endpoints) };
  }
}

export const p2cBalancer = definePlugin({
  category: "loadBalancer",
  kind: "p2c",
  schema: object({
    /** Draws when both endpoints drawn are unavailable, before scanning them all. */
    maxEffort: def(integer({ min: 1 }), 5),
  }),
  create: (config, ctx) => ({
    make: <E extends BalancedEndpoint>() => new P2C<E>(ctx.random, config.maxEffort),
  }),
});
