// What balancers and failure accrual tell the admin server (/admin/clients.json): computed
// when asked, with a fake clock: ewma's cost decays to now without being changed by being
// looked at, aperture names its window, each accrual kind shows its record, and an
// endpoint's health keeps its last outcome (a failFast connection failure too).

import { describe, expect, it } from "vitest";
import type { FailureAccrual } from "../../gateway/client/accrual/accrual.js";
import { EndpointHealth } from "../../gateway/client/accrual/endpoint-health.js";
import {
  consecutiveFailures,
  noFailureAccrual,
  successRate,
  successRateWindowed,
} from "../../gateway/client/accrual/kinds.js";
import { apertureBalancer } from "../../gateway/client/balancers/aperture.js";
import type { BalancedEndpoint } from "../../gateway/client/balancers/balancer.js";
import { ewmaBalancer } from "../../gateway/client/balancers/ewma.js";
import { p2cBalancer } from "../../gateway/client/balancers/p2c.js";
import type { Plugin } from "../../gateway/plugins/registry.js";
import { constantBackoff } from "../../gateway/policy/backoffs.js";
import { decode } from "../namers/helpers.js";
import { type FakeClock, fakeClock, pluginContext } from "../support/fake-kube.js";

class Ep implements BalancedEndpoint {
  inflight = 0;
  available = true;
  constructor(
    readonly key: string,
    readonly weight = 1,
  ) {}
}

function balancer(plugin: Plugin<"loadBalancer">, raw: Record<string, unknown>, clock: FakeClock) {
  const lb = plugin
    .create(decode(plugin, raw), { ...pluginContext({ clock }), random: () => 0.3 })
    .make<Ep>();
  const eps = [new Ep("10.0.0.1:80"), new Ep("10.0.0.2:80")];
  lb.update(eps);
  return { lb, eps };
}

function accrual(
  plugin: Plugin<"failureAccrual">,
  raw: Record<string, unknown>,
  clock: FakeClock,
): FailureAccrual {
  const backoff = constantBackoff.create({ ms: 1000 }, pluginContext({ clock }));
  return plugin.create(decode(plugin, raw), { ...pluginContext({ clock }), backoff }).make();
}

describe("balancers describe themselves", () => {
  it("ewma: each endpoint's cost, decayed to now, unchanged by looking", () => {
    const clock = fakeClock();
    const { lb, eps } = balancer(ewmaBalancer, { decayTimeMs: 1000 }, clock);
    lb.observe!(eps[0]!, 100, true);
    expect(lb.describe!().endpoint!("10.0.0.1:80")).toEqual({ costMs: 100 });
    expect(lb.describe!().endpoint!("10.0.0.2:80")).toEqual({ costMs: 0 });
    expect(lb.describe!().endpoint!("10.0.0.9:80")).toBeUndefined();
    clock.advance(1000);
    // One decay time later: e⁻¹ of it, as often as it is asked.
    for (let i = 0; i < 3; i++) {
      expect(lb.describe!().endpoint!("10.0.0.1:80")!.costMs).toBeCloseTo(100 / Math.E, 2);
    }
    // A failure counts as 10 s.
    lb.observe!(eps[1]!, 5, false);
    expect(lb.describe!().endpoint!("10.0.0.2:80")).toEqual({ costMs: 10_000 });
  });

  it("aperture: the smoothed load and which endpoints its window holds", () => {
    const clock = fakeClock();
    const { lb, eps } = balancer(apertureBalancer, { minAperture: 1 }, clock);
    const picked = lb.pick()!;
    const d = lb.describe!();
    expect(d.figures).toEqual({ smoothedLoad: 0 });
    expect(eps.map((e) => d.endpoint!(e.key))).toEqual(
      eps.map((e) => ({ inAperture: e === picked })),
    );
  });

  it("p2c has nothing to add", () => {
    const { lb } = balancer(p2cBalancer, {}, fakeClock());
    expect(lb.describe).toBeUndefined();
  });
});

describe("failure accrual kinds describe their record", () => {
  it("io.l5d.consecutiveFailures: failures in a row, and how many make it dead", () => {
    const clock = fakeClock();
    const a = accrual(consecutiveFailures, { failures: 3 }, clock);
    a.record(false, clock.now());
    a.record(false, clock.now());
    expect(a.describe!(clock.now())).toEqual({ consecutiveFailures: 2, deadAfter: 3 });
    a.record(true, clock.now());
    expect(a.describe!(clock.now())).toEqual({ consecutiveFailures: 0, deadAfter: 3 });
  });

  it("io.l5d.successRate: the moving average and the requests it covers", () => {
    const clock = fakeClock();
    const a = accrual(successRate, { successRate: 0.5, requests: 10 }, clock);
    expect(a.describe!(clock.now())).toEqual({
      successRate: null,
      requests: 0,
      minSuccessRate: 0.5,
      judgedAfter: 10,
    });
    a.record(true, clock.now());
    a.record(false, clock.now());
    expect(a.describe!(clock.now())).toEqual({
      successRate: Math.round(Math.exp(-1 / 10) * 10_000) / 10_000,
      requests: 2,
      minSuccessRate: 0.5,
      judgedAfter: 10,
    });
  });

  it("io.l5d.successRateWindowed: the rate over the window, which forgets", () => {
    const clock = fakeClock();
    const a = accrual(successRateWindowed, { successRate: 0.5, window: 10 }, clock);
    for (let i = 0; i < 4; i++) a.record(i !== 0, clock.now());
    expect(a.describe!(clock.now())).toEqual({
      successRate: 0.75,
      requests: 4,
      failures: 1,
      minSuccessRate: 0.5,
      judgedAfter: 5,
    });
    clock.advance(11_000);
    expect(a.describe!(clock.now())).toMatchObject({ successRate: null, requests: 0 });
  });

  it("none keeps no record", () => {
    const a = accrual(noFailureAccrual, {}, fakeClock());
    expect(a.describe).toBeUndefined();
  });
});

describe("an endpoint's health", () => {
  it("keeps its last outcome, a failFast connection failure included", () => {
    const clock = fakeClock();
    const backoff = constantBackoff.create({ ms: 1000 }, pluginContext({ clock }));
    const h = new EndpointHealth(
      accrual(consecutiveFailures, { failures: 5 }, clock),
      backoff,
      clock,
    );
    expect(h.lastOutcome).toBeUndefined();
    h.record(true);
    expect(h.lastOutcome).toEqual({ at: clock.now(), ok: true });
    expect(h.describeRecord()).toEqual({ consecutiveFailures: 0, deadAfter: 5 });
    clock.advance(50);
    h.markDead();
    expect(h.lastOutcome).toEqual({ at: clock.now(), ok: false });
    expect(h.state).toBe("dead");
    expect(h.deadUntil).toBe(clock.now() + 1000);
  });
});
