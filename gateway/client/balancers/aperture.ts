// aperture, Finagle's: requests go to a subset of the endpoints (the aperture), the first
// ones of a random but stable order, sized by load so that a quiet client keeps few
// connections; p2c within it; unavailable endpoints are passed over, which widens it.

import type { Clock } from "../../clock.js";
import { def, integer, number, object } from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import type { BalancedEndpoint, BalancerDescription, LoadBalancer } from "./balancer.js";
import { inflightPerWeight, leastLoaded, totalInflight } from "./least-loaded.js";
import { twoChoices, WeightedSet } from "./two-choices.js";

interface ApertureConfig {
  readonly maxEffort: number;
  readonly smoothWindowMs: number;
  readonly lowLoad: number;
  readonly highLoad: number;
  readonly minAperture: number;
}

class Aperture<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private endpoints: readonly E[] = [];
  /** Endpoint indexes in the aperture's order: the aperture is the first available ones. */
  private order: Int32Array = new Int32Array(0);
  /** The endpoints of the aperture; rebuilt when stale (a member was found unavailable). */
  private readonly window = new WeightedSet();
  /** Endpoints the aperture holds (fewer are in the window while fewer are available). */
  private size: number;
  /** Requests in flight on the aperture's endpoints, averaged over smoothWindowMs. */
  private smoothed = 0;
  private smoothedAt: number;

  constructor(
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly config: ApertureConfig,
  ) {
    this.size = config.minAperture;
    this.smoothedAt = clock.now();
  }

  update(endpoints: readonly E[]): void {
    this.order = this.reorder(endpoints);
    this.endpoints = endpoints;
    const n = endpoints.length;
    this.size = Math.max(Math.min(this.size, n), Math.min(this.config.minAperture, n));
    this.rebuild();
  }

  pick(avoid?: E): E | undefined {
    const { window } = this;
    // While fewer endpoints are available than the aperture holds, look again each time.
    if (window.stale || window.size < this.size) this.rebuild();
    if (this.resize()) this.rebuild();
    let e = this.withinAperture(avoid);
    // A member died since the window was built: look past it before leaving the aperture.
    if (e === undefined && window.stale) {
      this.rebuild();
      e = this.withinAperture(avoid);
    }
    return e ?? leastLoaded(this.endpoints, avoid, inflightPerWeight);
  }

  stats() {
    return { size: this.size, load: totalInflight(this.endpoints) };
  }

  /** The smoothed load the aperture follows, and which endpoints its window holds now. */
  describe(): BalancerDescription {
    const { window, endpoints } = this;
    const inWindow = new Set<string>();
    for (let p = 0; p < window.size; p++) inWindow.add(endpoints[window.member(p)]!.key);
    return {
      figures: { smoothedLoad: Math.round(this.smoothed * 1000) / 1000 },
      endpoint: (key) => ({ inAperture: inWindow.has(key) }),
    };
  }

  private withinAperture(avoid?: E): E | undefined {
    const { endpoints, window, random, config } = this;
    return twoChoices(endpoints, window, random, config.maxEffort, avoid, inflightPerWeight);
  }

  /** The first `size` available endpoints in order. */
  private rebuild(): void {
    const { endpoints, order, window } = this;
    window.clear(endpoints.length);
    for (let k = 0; k < order.length && window.size < this.size; k++) {
      const e = endpoints[order[k]!]!;
      if (e.available) window.add(order[k]!, e.weight);
    }
  }

  /**
   * Samples the requests in flight on the aperture as an arriving request sees them (the
   * endpoints' own counts: right even when the client drops a picked endpoint unused) and
   * widens or narrows it by one on their smoothed average per endpoint; true when it did.
   */
  private resize(): boolean {
    const { window } = this;
    if (window.size === 0) return false;
    let inflight = 0;
    for (let p = 0; p < window.size; p++) inflight += this.endpoints[window.member(p)]!.inflight;
    const now = this.clock.now();
    const w = Math.exp(-Math.max(0, now - this.smoothedAt) / this.config.smoothWindowMs);
    this.smoothed = this.smoothed * w + inflight * (1 - w);
    this.smoothedAt = now;
    const perEndpoint = this.smoothed / window.size;
    if (perEndpoint > this.config.highLoad && this.size < this.endpoints.length) {
      this.size++;
      return true;
    }
    if (perEndpoint < this.config.lowLoad && this.size > this.config.minAperture) {
      this.size--;
      return true;
    }
    return false;
  }

  /** The new endpoints' order: those kept stay in their order; new ones go in at random. */
  private reorder(endpoints: readonly E[]): Int32Array {
    const indexOf = new Map(endpoints.map((e, i) => [e.key, i]));
    const order: number[] = [];
    for (const i of this.order) {
      const kept = indexOf.get(this.endpoints[i]!.key);
      if (kept !== undefined) {
        order.push(kept);
        indexOf.delete(this.endpoints[i]!.key);
      }
    }
    for (const i of indexOf.values()) {
      order.splice(Math.floor(this.random() * (order.length + 1)), 0, i);
    }
    return Int32Array.from(order);
  }
}

export const apertureBalancer = definePlugin({
  category: "loadBalancer",
  kind: "aperture",
  schema: object({
    /** Draws when both endpoints drawn are unavailable, before scanning them all. */
    maxEffort: def(integer({ min: 1 }), 5),
    /** How long the load is averaged over before the aperture follows it. */
    smoothWindowMs: def(integer({ min: 1 }), 5_000),
    /** Requests in flight per endpoint of the aperture below which it narrows by one. */
    lowLoad: def(number({ min: 0 }), 0.5),
    /** Requests in flight per endpoint of the aperture above which it widens by one. */
    highLoad: def(number({ min: 0 }), 2),
    minAperture: def(integer({ min: 1 }), 1),
  }),
  validate: (config) =>
    config.lowLoad > config.highLoad
      ? [
          {
            field: "lowLoad",
            message: `lowLoad (${config.lowLoad}) is above highLoad (${config.highLoad})`,
          },
        ]
      : [],
  create: (config, ctx) => ({
    make: <E extends BalancedEndpoint>() => new Aperture<E>(ctx.clock, ctx.random, config),
  }),
});
