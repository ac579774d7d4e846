// Failure accrual kinds (when an endpoint is dead), the endpoint health state machine
// (dead → one probe → revived or dead again), and decoding accrual config blocks.

import { describe, expect, it } from "vitest";
import type { FailureAccrual, FailureAccrualPolicy } from "../../gateway/client/accrual/accrual.js";
import { accrualCounters, EndpointHealth } from "../../gateway/client/accrual/endpoint-health.js";
import {
  consecutiveFailures,
  FAILURE_ACCRUALS,
  noFailureAccrual,
  successRate,
  successRateWindowed,
  WINDOWED_MIN_REQUESTS,
} from "../../gateway/client/accrual/kinds.js";
import { type PluginConfig, pluginSchema } from "../../gateway/config/plugin-schema.js";
import { DecodeContext, INVALID } from "../../gateway/config/schema.js";
import { Registry } from "../../gateway/plugins/registry.js";
import type { Backoff } from "../../gateway/policy/backoff.js";
import { constantBackoff, jitteredBackoff } from "../../gateway/policy/backoffs.js";
import { type FakeClock, fakeClock, pluginContext } from "../support/fake-kube.js";
import { seeded } from "../support/seeded.js";

/** A backoff of fixed waits (the last repeats); counts the sequences it started. */
function steps(...waits: number[]): Backoff & { sequences: number } {
  const b = {
    sequences: 0,
    sequence() {
      b.sequences++;
      let i = 0;
      return { next: () => waits[Math.min(i++, waits.length - 1)]! };
    },
  };
  return b;
}

function accrualCtx(clock: FakeClock = fakeClock(), backoff: Backoff = steps(1_000)) {
  return { ...pluginContext({ clock }), random: seeded(1), backoff };
}

function decodeAccrual(raw: unknown): {
  config: PluginConfig<"failureAccrual"> | undefined;
  issues: string[];
} {
  const r = new Registry();
  for (const p of FAILURE_ACCRUALS) r.register(p);
  const cx = new DecodeContext(process.cwd());
  const d = pluginSchema(r, "failureAccrual").decode(raw, "failureAccrual", cx);
  return {
    config: d === INVALID || cx.issues.length > 0 ? undefined : d,
    issues: cx.issues.map((i) => `${i.path}: ${i.message}`),
  };
}

/** Records outcomes (true: success) at `now`; the index of each outcome that said dead. */
function deadAt(a: FailureAccrual, outcomes: boolean[], now = 0): number[] {
  const out: number[] = [];
  outcomes.forEach((ok, i) => {
    if (a.record(ok, now)) out.push(i);
  });
  return out;
}

const fails = (n: number) => Array<boolean>(n).fill(false);
const oks = (n: number) => Array<boolean>(n).fill(true);

describe("io.l5d.consecutiveFailures", () => {
  it("is dead after `failures` failures in a row (default 5)", () => {
    const { config } = decodeAccrual({ kind: "io.l5d.consecutiveFailures" });
    expect(config?.config).toEqual({ failures: 5 });
    const policy = config!.plugin.create(config!.config, accrualCtx()) as FailureAccrualPolicy;
    expect(deadAt(policy.make(), fails(6))).toEqual([4, 5]);
  });

  it("starts counting again after a success or a reset", () => {
    const a = consecutiveFailures.create({ failures: 3 }, accrualCtx()).make();
    expect(deadAt(a, [false, false, true, false, false, true, false, false, false])).toEqual([8]);
    a.reset();
    expect(deadAt(a, fails(3))).toEqual([2]);
  });

  it("keeps a record per endpoint and gives the context's backoff", () => {
    const backoff = steps(7);
    const policy = consecutiveFailures.create({ failures: 1 }, accrualCtx(fakeClock(), backoff));
    expect(policy.backoff).toBe(backoff);
    const a = policy.make();
    const b = policy.make();
    expect(a.record(false, 0)).toBe(true);
    expect(b.record(true, 0)).toBe(false);
  });
});

describe("io.l5d.successRate", () => {
  const make = (sr: number, requests: number) =>
    successRate.create({ successRate: sr, requests }, accrualCtx()).make();

  it("judges nobody before `requests` requests were seen", () => {
    expect(deadAt(make(0.8, 10), fails(12))).toEqual([9, 10, 11]);
  });

  it("is dead when the moving average drops below successRate on a failure", () => {
    // After 10 successes, each failure keeps exp(−1/10) ≈ 0.905 of the average:
    // 0.905, 0.819, 0.741 — the third failure is below 0.8.
    const a = make(0.8, 10);
    expect(deadAt(a, [...oks(10), false, false, false])).toEqual([12]);
  });

  it("weighs recent requests more: successes pull the average back up", () => {
    const a = make(0.8, 10);
    deadAt(a, [...oks(10), false, false]);
    // Without them the next failure would be the third; after five it is not enough.
    expect(deadAt(a, [...oks(5), false])).toEqual([]);
  });

  it("never marks dead on a success", () => {
    const a = make(1, 1);
    expect(a.record(false, 0)).toBe(true);
    expect(a.record(true, 0)).toBe(false);
  });

  it("waits for `requests` requests again after a reset", () => {
    const a = make(0.5, 4);
    expect(deadAt(a, fails(4))).toEqual([3]);
    a.reset();
    expect(deadAt(a, fails(4))).toEqual([3]);
  });
});

describe("io.l5d.successRateWindowed", () => {
  const make = (sr: number, window: number) =>
    successRateWindowed.create({ successRate: sr, window }, accrualCtx()).make();

  it(`needs ${WINDOWED_MIN_REQUESTS} requests in the window before judging`, () => {
    expect(WINDOWED_MIN_REQUESTS).toBe(5);
    expect(deadAt(make(0.9, 10), fails(6))).toEqual([4, 5]);
  });

  it("is dead when the success rate over the window falls below successRate", () => {
    const a = make(0.75, 10);
    // 6 successes, then failures: 6/7, 6/8 = 0.75 (not below), 6/9 < 0.75.
    expect(deadAt(a, [...oks(6), false, false, false])).toEqual([8]);
  });

  it("forgets requests older than the window", () => {
    const a = make(0.5, 10);
    let t = 0;
    for (let i = 0; i < 20; i++) a.record(true, t);
    // 5 s later the successes still count: 20 of 24.
    t += 5_000;
    for (let i = 0; i < 4; i++) expect(a.record(false, t)).toBe(false);
    // 10 s after them they are gone: 5 failures of 5 requests.
    t += 5_000;
    expect(a.record(false, t)).toBe(true);
  });

  it("judges by the window's count only: old failures leave it too", () => {
    const a = make(0.5, 1);
    for (let i = 0; i < 4; i++) a.record(false, 0);
    expect(a.record(false, 2_000)).toBe(false);
  });

  it("forgets everything on reset", () => {
    const a = make(0.5, 10);
    deadAt(a, fails(5));
    a.reset();
    expect(deadAt(a, fails(4))).toEqual([]);
  });
});

describe("none", () => {
  it("is never dead", () => {
    const { config } = decodeAccrual({ kind: "none" });
    const policy = config!.plugin.create(config!.config, accrualCtx()) as FailureAccrualPolicy;
    expect(deadAt(policy.make(), fails(100))).toEqual([]);
    expect(noFailureAccrual.create({}, accrualCtx()).make().record(false, 0)).toBe(false);
  });
});

describe("EndpointHealth", () => {
  function endpoint(failures: number, backoff: Backoff, clock = fakeClock()) {
    const accrual = consecutiveFailures.create({ failures }, accrualCtx(clock, backoff)).make();
    return { clock, health: new EndpointHealth(accrual, backoff, clock) };
  }

  /** Sends one request to it and records the outcome. */
  function send(h: EndpointHealth, ok: boolean): boolean {
    const probe = h.admit();
    h.record(ok);
    return probe;
  }

  it("is alive and available until its accrual says dead", () => {
    const { clock, health } = endpoint(3, steps(1_000));
    expect([health.state, health.available]).toEqual(["alive", true]);
    expect(send(health, false)).toBe(false);
    send(health, false);
    expect(health.available).toBe(true);
    send(health, false);
    expect([health.state, health.available]).toEqual(["dead", false]);
    expect(health.deadUntil).toBe(clock.now() + 1_000);
    expect(health.counters).toEqual({ markedDead: 1, revived: 0 });
  });

  it("after the backoff, is available for exactly one request: the probe", () => {
    const { clock, health } = endpoint(1, steps(1_000));
    send(health, false);
    clock.advance(999);
    expect(health.available).toBe(false);
    expect(health.admit()).toBe(false);
    clock.advance(1);
    expect([health.state, health.available]).toEqual(["dead", true]);
    expect(health.admit()).toBe(true);
    expect([health.state, health.available]).toEqual(["probing", false]);
    // Others picked meanwhile are no probes; the endpoint stays unavailable.
    expect(health.admit()).toBe(false);
    clock.advance(60_000);
    expect(health.available).toBe(false);
  });

  it("revives on a successful probe: accrual and backoff start afresh", () => {
    const backoff = steps(1_000, 2_000, 4_000);
    const { clock, health } = endpoint(2, backoff);
    send(health, false);
    send(health, false);
    clock.advance(1_000);
    expect(send(health, false)).toBe(true); // probe fails: the next, longer wait
    expect(health.deadUntil).toBe(clock.now() + 2_000);
    clock.advance(2_000);
    expect(send(health, true)).toBe(true);
    expect([health.state, health.available]).toEqual(["alive", true]);
    expect(backoff.sequences).toBe(2);
    expect(health.counters).toEqual({ markedDead: 2, revived: 1 });
    // A fresh record: one failure is not enough again; a fresh backoff: 1 s again.
    send(health, false);
    expect(health.state).toBe("alive");
    send(health, false);
    expect(health.deadUntil).toBe(clock.now() + 1_000);
  });

  it("waits longer after each failed probe (jittered backoff)", () => {
    const backoff = jitteredBackoff.create(
      { minMs: 1_000, maxMs: 60_000 },
      { ...pluginContext(), random: () => 0.999999 },
    );
    const { clock, health } = endpoint(1, backoff);
    send(health, false);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const wait = health.deadUntil - clock.now();
      waits.push(wait);
      clock.advance(wait);
      expect(send(health, false)).toBe(true);
    }
    expect(waits).toEqual([1_000, 2_999, 8_996, 26_987, 59_999, 59_999]);
  });

  it("ignores late outcomes while dead", () => {
    const { clock, health } = endpoint(1, steps(1_000));
    send(health, false);
    const until = health.deadUntil;
    health.record(true);
    health.record(false);
    expect([health.state, health.deadUntil]).toEqual(["dead", until]);
    clock.advance(1_000);
    expect(health.admit()).toBe(true);
  });

  it("markDead (failFast) kills it at once, and does not stretch a running wait", () => {
    const { clock, health } = endpoint(5, steps(1_000, 2_000));
    health.markDead();
    expect([health.state, health.deadUntil]).toEqual(["dead", clock.now() + 1_000]);
    clock.advance(500);
    health.markDead();
    expect(health.deadUntil).toBe(clock.now() + 500);
    clock.advance(500);
    health.admit();
    health.markDead();
    expect([health.state, health.deadUntil]).toEqual(["dead", clock.now() + 2_000]);
    expect(health.counters).toEqual({ markedDead: 2, revived: 0 });
  });

  it("shares counters between the endpoints of a client", () => {
    const clock = fakeClock();
    const counters = accrualCounters();
    const policy = consecutiveFailures.create({ failures: 1 }, accrualCtx(clock, steps(10)));
    const a = new EndpointHealth(policy.make(), policy.backoff, clock, counters);
    const b = new EndpointHealth(policy.make(), policy.backoff, clock, counters);
    send(a, false);
    send(b, false);
    clock.advance(10);
    send(a, true);
    expect(counters).toEqual({ markedDead: 2, revived: 1 });
  });

  it("with a constant 0 ms backoff, probes at once", () => {
    const backoff = constantBackoff.create({ ms: 0 }, { ...pluginContext(), random: seeded(2) });
    const { health } = endpoint(1, backoff);
    send(health, false);
    expect([health.state, health.available]).toEqual(["dead", true]);
    expect(send(health, true)).toBe(true);
    expect(health.state).toBe("alive");
  });
});

describe("config decoding", () => {
  it("knows every kind", () => {
    const r = new Registry();
    for (const p of FAILURE_ACCRUALS) r.register(p);
    expect(r.kinds("failureAccrual")).toEqual([
      "io.l5d.consecutiveFailures",
      "io.l5d.successRate",
      "io.l5d.successRateWindowed",
      "none",
    ]);
  });

  it("requires successRate and requests / window", () => {
    expect(decodeAccrual({ kind: "io.l5d.successRate" }).issues).toEqual([
      "failureAccrual.successRate: missing (expected a fraction from 0 to 1)",
      "failureAccrual.requests: missing (expected an integer of at least 1)",
    ]);
    expect(
      decodeAccrual({ kind: "io.l5d.successRateWindowed", successRate: 0.9, window: 30 }).config
        ?.config,
    ).toEqual({ successRate: 0.9, window: 30 });
  });

  it("refuses a successRate outside 0..1", () => {
    for (const kind of ["io.l5d.successRate", "io.l5d.successRateWindowed"]) {
      for (const sr of [-0.1, 1.5]) {
        expect(
          decodeAccrual({ kind, successRate: sr, requests: 10, window: 10 }).issues.filter((i) =>
            i.startsWith("failureAccrual.successRate"),
          ),
        ).toEqual([`failureAccrual.successRate: expected a fraction from 0 to 1, got ${sr}`]);
      }
    }
  });

  it("refuses failures < 1 and unknown keys", () => {
    expect(decodeAccrual({ kind: "io.l5d.consecutiveFailures", failures: 0 }).issues).toEqual([
      "failureAccrual.failures: expected an integer of at least 1, got 0",
    ]);
    expect(decodeAccrual({ kind: "none", failures: 3 }).issues).toHaveLength(1);
  });
});
