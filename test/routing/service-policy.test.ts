// The logical stack's settings per service name (the `service` block), the policy kinds'
// defaults, and l5d-ctx-deadline: decoded from config text as users write them.

import { describe, expect, it } from "vitest";
import { routerSchema } from "../../gateway/config/config-schema.js";
import { DecodeContext, INVALID } from "../../gateway/config/schema.js";
import { createLogger } from "../../gateway/log.js";
import { readPath } from "../../gateway/naming/index.js";
import { builtinRegistry } from "../../gateway/plugins/builtins.js";
import { DEFAULT_CLASSIFIER } from "../../gateway/policy/classifiers.js";
import { formatDeadline, peerDeadline } from "../../gateway/routing/deadline.js";
import { PolicyKinds } from "../../gateway/routing/policy-kinds.js";
import { ServicePolicies } from "../../gateway/routing/service-policy.js";
import { Registry as MetricsRegistry, RouterMetrics } from "../../gateway/telemetry/index.js";
import { noServices } from "../support/plugin-services.js";

function router(yaml: Record<string, unknown>) {
  const cx = new DecodeContext("/");
  const r = routerSchema(builtinRegistry()).decode({ protocol: "http", ...yaml }, "r", cx);
  if (r === INVALID) throw new Error(cx.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  return r;
}

const log = createLogger({ level: "error", sink: () => {} });
const now = 1_000_000;
const clock = { now: () => now };

function policies(service: Record<string, unknown>) {
  const kinds = new PolicyKinds({ ...noServices, log });
  const metrics = new RouterMetrics(new MetricsRegistry(), "r");
  return new ServicePolicies(router({ service }).service, kinds, metrics, clock);
}

describe("service policies", () => {
  it("gives every service Linkerd's defaults under an empty block", () => {
    const p = policies({}).for(readPath("/svc/users"));
    expect(p.service).toBe("/svc/users");
    expect(p.classifier).toBe(DEFAULT_CLASSIFIER);
    expect(p.totalTimeoutMs).toBeUndefined();
    // The default budget: a reserve of 10/s × 10 s.
    expect(p.budget.balance).toBe(100);
    expect(p.backoff.sequence().next()).toBe(0);
  });

  it("applies io.l5d.static entries by prefix, later ones winning, with captures", () => {
    const ps = policies({
      kind: "io.l5d.static",
      configs: [
        { prefix: "/svc", totalTimeoutMs: 1000 },
        {
          prefix: "/svc/{team}/api",
          responseClassifier: { kind: "io.l5d.http.retryableRead5XX" },
        },
        { prefix: "/svc/a/api", totalTimeoutMs: 50, retries: { budget: { minRetriesPerSec: 1 } } },
      ],
    });
    const a = ps.for(readPath("/svc/a/api/x"));
    expect(a.totalTimeoutMs).toBe(50);
    expect(a.classifier.classify("GET", 503)).toBe("retryable");
    expect(a.budget.balance).toBe(10);
    const b = ps.for(readPath("/svc/b/api"));
    expect(b.totalTimeoutMs).toBe(1000);
    expect(b.classifier.classify("GET", 503)).toBe("retryable");
    const other = ps.for(readPath("/svc/b"));
    expect(other.classifier.classify("GET", 503)).toBe("failure");
    const outside = ps.for(readPath("/ext/b"));
    expect(outside.totalTimeoutMs).toBeUndefined();
  });

  it("gives each service name its own budget and one classifier instance per block", () => {
    const ps = policies({ responseClassifier: { kind: "io.l5d.http.retryableAll5XX" } });
    const a = ps.for(readPath("/svc/a"));
    const b = ps.for(readPath("/svc/b"));
    expect(a.classifier).toBe(b.classifier);
    for (let i = 0; i < 100; i++) a.budget.tryWithdraw();
    expect(a.budget.balance).toBe(0);
    expect(b.budget.balance).toBe(100);
  });
});

describe("policy kinds", () => {
  it("defaults to p2c and consecutiveFailures 5 with a growing backoff", () => {
    const kinds = new PolicyKinds({ ...noServices, log, random: () => 0.5 });
    const accrual = kinds.accrual(undefined);
    const record = accrual.make();
    const dead = [1, 2, 3, 4, 5].map(() => record.record(false, 0));
    expect(dead).toEqual([false, false, false, false, true]);
    const waits = accrual.backoff.sequence();
    expect(waits.next()).toBe(5000);
    expect(waits.next()).toBeGreaterThanOrEqual(5000);
    expect(kinds.balancer(undefined)).toBe(kinds.balancer(undefined));
  });

  it("builds a failure accrual block's own backoff", () => {
    const kinds = new PolicyKinds({ ...noServices, log });
    const r = router({
      client: {
        failureAccrual: {
          kind: "io.l5d.consecutiveFailures",
          failures: 2,
          backoff: { kind: "constant", ms: 1234 },
        },
      },
    });
    const block = r.client.kind === "io.l5d.global" ? r.client.failureAccrual : undefined;
    const accrual = kinds.accrual(block);
    expect(accrual.backoff.sequence().next()).toBe(1234);
    expect(kinds.accrual(block)).toBe(accrual);
  });
});

describe("l5d-ctx-deadline", () => {
  it("reads the earliest deadline, in ms, ignoring malformed values", () => {
    const h = [
      "l5d-ctx-deadline",
      "1000000000 5000000000",
      "host",
      "x",
      "l5d-ctx-deadline",
      "junk, 1000000000 3000000000",
    ];
    expect(peerDeadline(h)).toBe(3000);
    expect(peerDeadline(["l5d-ctx-deadline", "12 -5"])).toBeUndefined();
    expect(peerDeadline(["host", "x"])).toBeUndefined();
  });

  it("writes `<timestamp> <deadline>` in nanoseconds", () => {
    expect(formatDeadline(1500, 2500)).toBe("1500000000 2500000000");
    expect(peerDeadline(["l5d-ctx-deadline", formatDeadline(1, 2_000_000_000_000)])).toBe(
      2_000_000_000_000,
    );
  });
});
