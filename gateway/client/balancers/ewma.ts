// ewma, Finagle's peak EWMA: each endpoint has a latency cost that jumps to any slower
// observation and otherwise decays, toward faster ones and toward zero while unobserved,
// with decayTimeMs; p2c then compares cost × (requests in flight per unit of weight + 1).

import type { Clock } from "../../clock.js";
import { def, integer, object } from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import type { BalancedEndpoint, BalancerDescription, LoadBalancer } from "./balancer.js";
import { leastLoaded, totalInflight } from "./least-loaded.js";
import { twoChoices, WeightedSet } from "./two-choices.js";

/**
 * The latency a failure counts as: slower than any healthy answer, so an endpoint that fails
 * fast does not look fast; a cost of 10 s decays to 10 ms in about 7 decay times.
 */
const FAILURE_PENALTY_MS = 10_000;

/**
 * The load of an endpoint with requests in flight and no latency yet (Finagle's penalty,
 * 2^47 ns, in ms): above any measured load, so a new endpoint gets one request at a time
 * until it has answered.
 */
const UNMEASURED_LOAD = 2 ** 47 / 1e6;

/** One endpoint's latency estimate, `ms` as of `at`. */
class Cost {
  ms = 0;
  constructor(public at: number) {}
}

class PeakEwma<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private endpoints: readonly E[] = [];
  /** Costs by endpoint index, and by key (kept across updates). */
  private costs: Cost[] = [];
  private byKey = new Map<string, Cost>();
  private readonly set = new WeightedSet();
  /** The time of the pick under way, read by `load`. */
  private now = 0;
  private readonly load = (e: E, i: number): number => {
    if (!(e.weight > 0)) return Infinity;
    const c = this.costs[i]!;
    // Looking is observing zero (as in Finagle): an endpoint left alone becomes cheap again.
    this.record(c, 0, this.now);
    if (c.ms === 0 && e.inflight > 0) return UNMEASURED_LOAD + e.inflight;
    // Weight scales the queue, not the latency: endpoints are already drawn by weight, and
    // cost × (inflight + 1) / weight would favour heavy ones twice (1.9% for weight 1 of
    // 1:2:3:4 at three requests in flight, instead of p2c's 14%).
    return c.ms * (e.inflight / e.weight + 1);
  };

  constructor(
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly maxEffort: number,
    private readonly decayTimeMs: number,
  ) {}

  update(endpoints: readonly E[]): void {
    const now = this.clock.now();
    const byKey = new Map<string, Cost>();
    this.costs = endpoints.map((e) => {
      const c = this.byKey.get(e.key) ?? new Cost(now);
      byKey.set(e.key, c);
      return c;
    });
    this.byKey = byKey;
    this.endpoints = endpoints;
    this.set.clear(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) this.set.add(i, endpoints[i]!.weight);
  }

  pick(avoid?: E): E | undefined {
    this.now = this.clock.now();
    const { endpoints, load } = this;
    return (
      twoChoices(endpoints, this.set, this.random, this.maxEffort, avoid, load) ??
      leastLoaded(endpoints, avoid, load)
    );
  }

  observe(e: E, latencyMs: number, ok: boolean): void {
    const c = this.byKey.get(e.key);
    if (c === undefined) return;
    const ms = ok ? Math.max(0, latencyMs) : Math.max(latencyMs, FAILURE_PENALTY_MS);
    this.record(c, ms, this.clock.now());
  }

  stats() {
    return { size: this.endpoints.length, load: totalInflight(this.endpoints) };
  }

  /** Each endpoint's cost as a pick now would see it (decayed to now; nothing is changed). */
  describe(): BalancerDescription {
    const now = this.clock.now();
    return {
      endpoint: (key) => {
        const c = this.byKey.get(key);
        if (c === undefined) return undefined;
        const w = Math.exp(-Math.max(0, now - c.at) / this.decayTimeMs);
        return { costMs: Math.round(c.ms * w * 1000) / 1000 };
      },
    };
  }

  /** Peak-sensitive: a slower latency is taken at once; a faster one blends in with time. */
  private record(c: Cost, ms: number, now: number): void {
    if (ms > c.ms) c.ms = ms;
    else {
      const w = Math.exp(-Math.max(0, now - c.at) / this.decayTimeMs);
      c.ms = c.ms * w + ms * (1 - w);
    }
    c.at = now;
  }
}

export const ewmaBalancer = definePlugin({
  category: "loadBalancer",
  kind: "ewma",
  schema: object({
    /** Draws when both endpoints drawn are unavailable, before scanning them all. */
    maxEffort: def(integer({ min: 1 }), 5),
    /** How fast a cost forgets: an observation's weight falls by e every decayTimeMs. */
    decayTimeMs: def(integer({ min: 1 }), 10_000),
  }),
  create: (config, ctx) => ({
    make: <E extends BalancedEndpoint>() =>
      new PeakEwma<E>(ctx.clock, ctx.random, config.maxEffort, config.decayTimeMs),
  }),
});
