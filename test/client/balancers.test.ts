// The load balancer kinds (p2c, ewma, aperture, heap, roundRobin): the contract each keeps
// (available endpoints only, `avoid`, weights) and the property each promises, driven by a
// fake clock and a seeded random so every run sees the same traffic.

import { describe, expect, it } from "vitest";
import { apertureBalancer } from "../../gateway/client/balancers/aperture.js";
import type { BalancedEndpoint, LoadBalancer } from "../../gateway/client/balancers/balancer.js";
import { ewmaBalancer } from "../../gateway/client/balancers/ewma.js";
import { heapBalancer } from "../../gateway/client/balancers/heap.js";
import { LOAD_BALANCERS } from "../../gateway/client/balancers/index.js";
import { p2cBalancer } from "../../gateway/client/balancers/p2c.js";
import { roundRobinBalancer } from "../../gateway/client/balancers/round-robin.js";
import type { Plugin } from "../../gateway/plugins/registry.js";
import { decode, decodeIssues, problemText } from "../namers/helpers.js";
import { type FakeClock, fakeClock, pluginContext } from "../support/fake-kube.js";
import { seeded } from "../support/seeded.js";

class Ep implements BalancedEndpoint {
  inflight = 0;
  available = true;
  constructor(
    readonly key: string,
    readonly weight: number,
  ) {}
}

const endpoints = (weights: readonly number[]): Ep[] =>
  weights.map((w, i) => new Ep(`10.0.0.${i}:8080`, w));

/** A request sent and not finished. */
interface Sent {
  readonly e: Ep;
  readonly at: number;
  readonly doneAt: number;
  readonly ok: boolean;
}

interface Rig {
  readonly lb: LoadBalancer<Ep>;
  eps: Ep[];
  readonly clock: FakeClock;
  readonly pending: Sent[];
}

function rig(
  plugin: Plugin<"loadBalancer">,
  weights: readonly number[],
  raw: Record<string, unknown> = {},
  seed = 1,
): Rig {
  const clock = fakeClock();
  const ctx = { ...pluginContext({ clock }), random: seeded(seed) };
  const lb = plugin.create(decode(plugin, raw), ctx).make<Ep>();
  const eps = endpoints(weights);
  lb.update(eps);
  return { lb, eps, clock, pending: [] };
}

/** Moves the clock on by `ms`, finishing the requests that fall due, in order. */
function advance(r: Rig, ms: number): void {
  const until = r.clock.now() + ms;
  for (;;) {
    let next = -1;
    for (let k = 0; k < r.pending.length; k++) {
      const s = r.pending[k]!;
      if (s.doneAt <= until && (next < 0 || s.doneAt < r.pending[next]!.doneAt)) next = k;
    }
    if (next < 0) break;
    const [s] = r.pending.splice(next, 1);
    r.clock.advance(s!.doneAt - r.clock.now());
    s!.e.inflight--;
    r.lb.observe?.(s!.e, s!.doneAt - s!.at, s!.ok);
  }
  r.clock.advance(until - r.clock.now());
}

interface Traffic {
  readonly requests: number;
  /** Time between requests (they come whether or not earlier ones have finished). */
  readonly everyMs: number;
  /** How long a request to endpoint `i` takes; Infinity: it never finishes. */
  readonly latencyMs: (i: number) => number;
  readonly ok?: (i: number) => boolean;
}

/** Sends the traffic; returns how many requests each endpoint got. */
function send(r: Rig, t: Traffic): number[] {
  const counts = r.eps.map(() => 0);
  for (let n = 0; n < t.requests; n++) {
    advance(r, t.everyMs);
    const e = r.lb.pick();
    if (e === undefined) throw new Error("no endpoint picked");
    const i = r.eps.indexOf(e);
    counts[i]!++;
    e.inflight++;
    const now = r.clock.now();
    r.pending.push({ e, at: now, doneAt: now + t.latencyMs(i), ok: t.ok?.(i) ?? true });
  }
  return counts;
}

/** Pearson's chi-square of `counts` against shares proportional to `weights`. */
function chiSquare(counts: readonly number[], weights: readonly number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  const total = weights.reduce((a, b) => a + b, 0);
  return counts.reduce((x, c, i) => {
    const expected = (n * weights[i]!) / total;
    return x + (c - expected) ** 2 / expected;
  }, 0);
}

const distinct = (counts: readonly number[]) => counts.filter((c) => c > 0).length;

/** Random availability (some endpoint available when `someAvailable`) and requests in flight. */
function scramble(eps: readonly Ep[], random: () => number, someAvailable: boolean): void {
  for (const e of eps) {
    e.available = random() < 0.5;
    e.inflight = Math.floor(random() * 6);
  }
  if (someAvailable && !eps.some((e) => e.available)) {
    eps[Math.floor(random() * eps.length)]!.available = true;
  }
}

describe.each(LOAD_BALANCERS.map((p) => [p.kind, p] as const))("%s", (_kind, plugin) => {
  it("never picks an unavailable endpoint while one is available; undefined when none is", () => {
    const r = rig(plugin, [1, 1, 2, 3, 1, 1, 2, 1]);
    const random = seeded(7);
    const wrong: string[] = [];
    for (let n = 0; n < 2000; n++) {
      scramble(r.eps, random, n % 10 !== 0);
      const e = r.lb.pick();
      const any = r.eps.some((x) => x.available);
      if (any ? e === undefined || !e.available : e !== undefined) {
        wrong.push(`#${n}: ${e?.key ?? "none"} (available: ${any})`);
      }
      r.clock.advance(10);
    }
    expect(wrong).toEqual([]);
    for (const e of r.eps) e.available = false;
    expect(r.lb.pick()).toBeUndefined();
    r.lb.update([]);
    expect(r.lb.pick()).toBeUndefined();
    expect(r.lb.stats().size).toBe(0);
  });

  it("respects avoid when another endpoint is available, and uses it when none is", () => {
    const r = rig(plugin, [1, 2, 1, 1, 3, 1]);
    const random = seeded(11);
    const wrong: string[] = [];
    for (let n = 0; n < 2000; n++) {
      scramble(r.eps, random, true);
      const up = r.eps.filter((x) => x.available);
      const avoid = up[Math.floor(random() * up.length)]!;
      const e = r.lb.pick(avoid);
      const ok = up.length > 1 ? e !== undefined && e !== avoid && e.available : e === avoid;
      if (!ok) wrong.push(`#${n}: ${e?.key ?? "none"} with ${up.length} available`);
      r.clock.advance(10);
    }
    expect(wrong).toEqual([]);
  });

  it("shares requests in proportion to weights", () => {
    const weights = [1, 2, 3, 4];
    const r = rig(plugin, weights);
    // Ten requests in flight: enough that least-loaded kinds see loads, and aperture
    // opens to all four endpoints.
    const traffic = { everyMs: 10, latencyMs: () => 100 };
    send(r, { ...traffic, requests: 2000 });
    const counts = send(r, { ...traffic, requests: 10_000 });
    expect(chiSquare(counts, weights), `counts ${counts}`).toBeLessThan(
      CHI_SQUARE_BOUND[plugin.kind] ?? 16.3,
    );
  });

  it("decodes its config: defaults, bad values, unknown keys", () => {
    const defaults = decode(plugin, {}) as Record<string, unknown>;
    expect(defaults).toEqual(DEFAULTS[plugin.kind]);
    expect(decodeIssues(plugin, { nonsense: 1 })).toEqual([
      expect.stringMatching(/^nonsense: unknown key/),
    ]);
    if ("maxEffort" in defaults) {
      expect(decodeIssues(plugin, { maxEffort: 0 })).toEqual([
        "maxEffort: expected an integer of at least 1, got 0",
      ]);
      expect(decode(plugin, { maxEffort: "3" })).toMatchObject({ maxEffort: 3 });
    }
  });
});

/**
 * Chi-square bounds with three degrees of freedom: 16.3 is the 0.1% tail. ewma's is looser
 * (it sits near 24, shares 11/21/30/38%): costs decay between observations, so a lightly
 * weighted endpoint, observed less often, wins close calls.
 */
const CHI_SQUARE_BOUND: Record<string, number> = { ewma: 40 };

const DEFAULTS: Record<string, Record<string, unknown>> = {
  p2c: { maxEffort: 5 },
  ewma: { maxEffort: 5, decayTimeMs: 10_000 },
  aperture: { maxEffort: 5, smoothWindowMs: 5000, lowLoad: 0.5, highLoad: 2, minAperture: 1 },
  heap: {},
  roundRobin: { maxEffort: 5 },
};

it("LOAD_BALANCERS has Linkerd 1's five kinds", () => {
  expect(LOAD_BALANCERS.map((p) => p.kind)).toEqual([
    "p2c",
    "ewma",
    "aperture",
    "heap",
    "roundRobin",
  ]);
  expect(new Set(LOAD_BALANCERS.map((p) => p.category))).toEqual(new Set(["loadBalancer"]));
});

describe("p2c", () => {
  it("gives a stuck endpoint (its requests never finish) a small share", () => {
    const r = rig(p2cBalancer, [1, 1, 1, 1, 1]);
    const counts = send(r, {
      requests: 4000,
      everyMs: 5,
      latencyMs: (i) => (i === 0 ? Infinity : 20),
    });
    // An even share would be 800; it gets a handful before its queue outgrows the others'.
    expect(counts[0], `counts ${counts}`).toBeLessThan(40);
    expect(r.eps[0]!.inflight).toBe(counts[0]);
  });

  it("with equal weights and no load, draws uniformly", () => {
    const r = rig(p2cBalancer, [1, 1, 1, 1, 1]);
    const counts = send(r, { requests: 10_000, everyMs: 10, latencyMs: () => 0 });
    expect(chiSquare(counts, [1, 1, 1, 1, 1]), `counts ${counts}`).toBeLessThan(18.5);
  });

  it("scans when maxEffort draws found only unavailable endpoints", () => {
    const r = rig(p2cBalancer, Array(50).fill(1), { maxEffort: 1 });
    for (const e of r.eps) e.available = false;
    r.eps[37]!.available = true;
    for (let n = 0; n < 100; n++) expect(r.lb.pick()).toBe(r.eps[37]);
  });
});

describe("ewma", () => {
  const fast = { everyMs: 20, latencyMs: () => 10 };

  it("moves load off an endpoint that turns slow within a couple of requests", () => {
    const r = rig(ewmaBalancer, [1, 1, 1, 1, 1]);
    const before = send(r, { ...fast, requests: 1000 });
    expect(Math.min(...before), `counts ${before}`).toBeGreaterThan(100);
    const after = send(r, {
      requests: 1000,
      everyMs: 20,
      latencyMs: (i) => (i === 0 ? 500 : 10),
    });
    expect(after[0], `counts ${after}`).toBeLessThanOrEqual(2);
  });

  it("sends to a slow endpoint again once its peak has decayed", () => {
    const r = rig(ewmaBalancer, [1, 1, 1, 1, 1]);
    send(r, { requests: 1000, everyMs: 20, latencyMs: (i) => (i === 0 ? 500 : 10) });
    // 500 ms decays to the others' 10 ms in ln(50) ≈ 4 decay times (40 s: 2000 requests).
    send(r, { ...fast, requests: 3000 });
    const recovered = send(r, { ...fast, requests: 1000 });
    expect(recovered[0], `counts ${recovered}`).toBeGreaterThan(100);
  });

  it("counts a failure as a penalty, so an endpoint failing fast does not attract traffic", () => {
    const r = rig(ewmaBalancer, [1, 1, 1, 1, 1]);
    const counts = send(r, {
      requests: 4000,
      everyMs: 5,
      latencyMs: (i) => (i === 0 ? 1 : 20),
      ok: (i) => i !== 0,
    });
    expect(counts[0], `counts ${counts}`).toBeLessThan(10);
  });

  it("gives a new endpoint one request at a time until it has answered", () => {
    const r = rig(ewmaBalancer, [1, 1, 1]);
    send(r, { ...fast, requests: 100 });
    const fresh = new Ep("10.0.1.1:8080", 1);
    r.eps = [...r.eps, fresh];
    r.lb.update(r.eps);
    let most = 0;
    for (let n = 0; n < 50; n++) {
      send(r, { requests: 1, everyMs: 10, latencyMs: (i) => (i === 3 ? 1000 : 10) });
      most = Math.max(most, fresh.inflight);
    }
    expect(most).toBe(1);
  });
});

describe("aperture", () => {
  const twenty = Array(20).fill(1);
  const oneAtATime = { everyMs: 10, latencyMs: () => 0 };
  // 400 ms each, one every 10 ms: 40 in flight.
  const forty = { everyMs: 10, latencyMs: () => 400 };

  it("stays at minAperture with one request at a time", () => {
    const r = rig(apertureBalancer, twenty);
    const counts = send(r, { ...oneAtATime, requests: 1000 });
    expect(distinct(counts), `counts ${counts}`).toBe(1);
    expect(r.lb.stats().size).toBe(1);
  });

  it("widens when 40 requests are in flight, and narrows again when the load goes", () => {
    const r = rig(apertureBalancer, twenty);
    send(r, { ...forty, requests: 3000 });
    expect(r.lb.stats().size).toBeGreaterThanOrEqual(18);
    const busy = send(r, { ...forty, requests: 1000 });
    expect(distinct(busy), `counts ${busy}`).toBeGreaterThanOrEqual(18);
    send(r, { ...oneAtATime, requests: 3000 });
    expect(r.lb.stats().size).toBe(1);
    const quiet = send(r, { ...oneAtATime, requests: 1000 });
    expect(distinct(quiet), `counts ${quiet}`).toBe(1);
  });

  it("keeps minAperture endpoints in use at low load", () => {
    const r = rig(apertureBalancer, twenty, { minAperture: 3 });
    const counts = send(r, { ...oneAtATime, requests: 1000 });
    expect(distinct(counts), `counts ${counts}`).toBe(3);
    expect(r.lb.stats().size).toBe(3);
  });

  it("passes over an unavailable endpoint of the aperture to the next one", () => {
    const r = rig(apertureBalancer, twenty);
    const first = send(r, { ...oneAtATime, requests: 10 });
    const used = first.findIndex((c) => c > 0);
    r.eps[used]!.available = false;
    const counts = send(r, { ...oneAtATime, requests: 100 });
    expect(counts[used]).toBe(0);
    expect(distinct(counts), `counts ${counts}`).toBe(1);
    expect(r.lb.stats().size).toBe(1);
  });

  it("keeps its order when the endpoints change: the one in use stays unless a newcomer goes first", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = rig(apertureBalancer, twenty, {}, seed);
      const used = r.eps[send(r, { ...oneAtATime, requests: 10 }).findIndex((c) => c > 0)]!;
      const fresh = new Ep("10.0.1.1:8080", 1);
      r.eps = [fresh, ...r.eps.filter((e) => e !== r.eps[(r.eps.indexOf(used) + 1) % 20])];
      r.lb.update(r.eps);
      const counts = send(r, { ...oneAtATime, requests: 100 });
      const now = r.eps.filter((_, i) => counts[i]! > 0);
      expect(now.length).toBe(1);
      expect([used, fresh]).toContain(now[0]);
    }
  });

  it("rejects lowLoad above highLoad", () => {
    const config = decode(apertureBalancer, { lowLoad: 3, highLoad: 2 });
    expect(apertureBalancer.validate?.(config).map(problemText)).toEqual([
      "lowLoad lowLoad (3) is above highLoad (2)",
    ]);
    expect(apertureBalancer.validate?.(decode(apertureBalancer, {}))).toEqual([]);
  });
});

describe("heap", () => {
  it("always picks the least loaded endpoint (in flight per unit of weight)", () => {
    const r = rig(heapBalancer, [1, 2, 1, 4, 3, 1, 2]);
    const random = seeded(5);
    const load = (e: Ep) => e.inflight / e.weight;
    const wrong: string[] = [];
    for (let n = 0; n < 2000; n++) {
      scramble(r.eps, random, true);
      const e = r.lb.pick()!;
      const least = Math.min(...r.eps.filter((x) => x.available).map(load));
      if (load(e) !== least) wrong.push(`#${n}: ${e.key} at ${load(e)}, least ${least}`);
    }
    expect(wrong).toEqual([]);
  });

  it("lets idle endpoints take turns", () => {
    const r = rig(heapBalancer, [1, 1, 1, 1]);
    const counts = send(r, { requests: 8, everyMs: 10, latencyMs: () => 0 });
    expect(counts).toEqual([2, 2, 2, 2]);
  });

  it("keeps requests in flight in proportion to weight when none finish", () => {
    const r = rig(heapBalancer, [1, 3, 2]);
    send(r, { requests: 600, everyMs: 1, latencyMs: () => Infinity });
    expect(r.eps.map((e) => e.inflight)).toEqual([100, 300, 200]);
  });
});

describe("roundRobin", () => {
  const keysOf = (r: Rig, n: number, names: string) =>
    Array.from({ length: n }, () => names[r.eps.indexOf(r.lb.pick()!)]).join("");

  it("cycles in weighted proportion exactly: weights 3:1 give three a and one b per cycle", () => {
    const r = rig(roundRobinBalancer, [3, 1]);
    const picks = keysOf(r, 400, "ab");
    expect(picks.slice(0, 4)).toBe("aaba");
    for (let c = 0; c < 400; c += 4) {
      const cycle = picks.slice(c, c + 4);
      expect(cycle.replaceAll("b", "")).toBe("aaa");
    }
  });

  it("spreads a heavy endpoint's turns as nginx does", () => {
    const r = rig(roundRobinBalancer, [5, 1, 1]);
    expect(keysOf(r, 14, "abc")).toBe("aabacaaaabacaa");
  });

  it("skips unavailable endpoints, the others keeping their proportions", () => {
    const r = rig(roundRobinBalancer, [3, 1, 2]);
    r.eps[1]!.available = false;
    const picks = keysOf(r, 500, "abc");
    for (let c = 0; c < 500; c += 5) {
      const cycle = [...picks.slice(c, c + 5)].sort().join("");
      expect(cycle).toBe("aaacc");
    }
  });
});
