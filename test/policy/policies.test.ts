// Backoff kinds, response classifier kinds, the retry budget, and decoding their config
// blocks through the plugin schemas; time and randomness are a fake clock and a seeded RNG.

import { describe, expect, it } from "vitest";
import { type PluginConfig, pluginSchema } from "../../gateway/config/plugin-schema.js";
import { DecodeContext, INVALID } from "../../gateway/config/schema.js";
import { type Category, Registry } from "../../gateway/plugins/registry.js";
import type { BackoffSequence } from "../../gateway/policy/backoff.js";
import {
  BACKOFFS,
  constantBackoff,
  DEFAULT_ACCRUAL_BACKOFF,
  jitteredBackoff,
} from "../../gateway/policy/backoffs.js";
import type { ResponseClass, ResponseClassifier } from "../../gateway/policy/classifier.js";
import { DEFAULT_CLASSIFIER, RESPONSE_CLASSIFIERS } from "../../gateway/policy/classifiers.js";
import { GRPC_CLASSIFIERS } from "../../gateway/policy/grpc-classifiers.js";
import { RetryBudget } from "../../gateway/policy/retry-budget.js";
import { fakeClock, pluginContext } from "../support/fake-kube.js";
import { seeded } from "../support/seeded.js";

const ctx = (random: () => number = seeded(1)) => ({ ...pluginContext(), random });

function registry(): Registry {
  const r = new Registry();
  for (const p of [...BACKOFFS, ...RESPONSE_CLASSIFIERS, ...GRPC_CLASSIFIERS]) r.register(p);
  return r;
}

/** Decodes a `{kind, ...}` block the way the config loader does; issues as `path: message`. */
function decodeBlock<C extends Category>(
  category: C,
  raw: unknown,
): { config: PluginConfig<C> | undefined; issues: string[] } {
  const cx = new DecodeContext(process.cwd());
  const d = pluginSchema(registry(), category).decode(raw, "block", cx);
  return {
    config: d === INVALID || cx.issues.length > 0 ? undefined : d,
    issues: cx.issues.map((i) => `${i.path}: ${i.message}`),
  };
}

const take = (s: BackoffSequence, n: number) => Array.from({ length: n }, () => s.next());

describe("constant backoff", () => {
  it("waits `ms` every time, in every sequence", () => {
    const b = constantBackoff.create({ ms: 250 }, ctx());
    expect(take(b.sequence(), 4)).toEqual([250, 250, 250, 250]);
    expect(take(b.sequence(), 2)).toEqual([250, 250]);
  });

  it("defaults to 0 ms", () => {
    const { config } = decodeBlock("backoff", { kind: "constant" });
    expect(config?.config).toEqual({ ms: 0 });
    const b = config!.plugin.create(config!.config, ctx());
    expect(take(b.sequence(), 3)).toEqual([0, 0, 0]);
  });
});

describe("jittered backoff", () => {
  it("starts at minMs, stays within [minMs, maxMs] and at most triples the previous wait", () => {
    const b = jitteredBackoff.create({ minMs: 100, maxMs: 10_000 }, ctx(seeded(7)));
    for (let run = 0; run < 20; run++) {
      const waits = take(b.sequence(), 40);
      expect(waits[0]).toBe(100);
      for (let i = 1; i < waits.length; i++) {
        expect(waits[i]).toBeGreaterThanOrEqual(100);
        expect(waits[i]).toBeLessThan(Math.min(10_000, waits[i - 1]! * 3));
        expect(Number.isInteger(waits[i])).toBe(true);
      }
    }
  });

  it("grows towards maxMs (decorrelated: each wait's range is from the previous one)", () => {
    // random() → just under 1: each wait is (almost) the top of its range.
    const b = jitteredBackoff.create(
      { minMs: 100, maxMs: 5_000 },
      ctx(() => 0.999999),
    );
    expect(take(b.sequence(), 6)).toEqual([100, 299, 896, 2687, 4999, 4999]);
    // random() → 0: the bottom of the range every time.
    const low = jitteredBackoff.create(
      { minMs: 100, maxMs: 5_000 },
      ctx(() => 0),
    );
    expect(take(low.sequence(), 3)).toEqual([100, 100, 100]);
  });

  it("grows on average with a seeded RNG (about × 1.5 a step while far below maxMs)", () => {
    const b = jitteredBackoff.create({ minMs: 10, maxMs: 10_000_000 }, ctx(seeded(42)));
    const runs = Array.from({ length: 500 }, () => take(b.sequence(), 21));
    const mean = (i: number) => runs.reduce((sum, w) => sum + w[i]!, 0) / runs.length;
    expect(mean(0)).toBe(10);
    expect(mean(10)).toBeGreaterThan(10 * mean(0));
    expect(mean(20)).toBeGreaterThan(10 * mean(10));
  });

  it("starts every sequence afresh", () => {
    const b = jitteredBackoff.create(
      { minMs: 100, maxMs: 5_000 },
      ctx(() => 0.999999),
    );
    const first = b.sequence();
    take(first, 4);
    expect(take(b.sequence(), 3)).toEqual([100, 299, 896]);
    expect(first.next()).toBe(4999);
  });

  it("is the same sequence for the same seed", () => {
    const a = jitteredBackoff.create({ minMs: 50, maxMs: 60_000 }, ctx(seeded(3)));
    const b = jitteredBackoff.create({ minMs: 50, maxMs: 60_000 }, ctx(seeded(3)));
    expect(take(a.sequence(), 20)).toEqual(take(b.sequence(), 20));
  });

  it("waits minMs always when minMs = maxMs", () => {
    const b = jitteredBackoff.create({ minMs: 300, maxMs: 300 }, ctx(seeded(5)));
    expect(take(b.sequence(), 5)).toEqual([300, 300, 300, 300, 300]);
  });

  it("still grows from minMs 0", () => {
    const b = jitteredBackoff.create(
      { minMs: 0, maxMs: 1_000 },
      ctx(() => 0.999999),
    );
    expect(take(b.sequence(), 5)).toEqual([0, 2, 5, 14, 41]);
  });
});

describe("DEFAULT_ACCRUAL_BACKOFF", () => {
  it("is Linkerd's equal jitter: 5 s, then [5, 10) s, [10, 20) s, … capped at 300 s", () => {
    const bottom = DEFAULT_ACCRUAL_BACKOFF(() => 0).sequence();
    expect(take(bottom, 10)).toEqual([
      5_000, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000,
    ]);
    const top = DEFAULT_ACCRUAL_BACKOFF(() => 0.999999).sequence();
    expect(take(top, 8)).toEqual([5_000, 9_999, 19_999, 39_999, 79_999, 159_999, 300_000, 300_000]);
  });

  it("stays within 5 s … 300 s with a seeded RNG, afresh per sequence", () => {
    const b = DEFAULT_ACCRUAL_BACKOFF(seeded(11));
    for (let run = 0; run < 5; run++) {
      const waits = take(b.sequence(), 30);
      expect(waits[0]).toBe(5_000);
      for (const w of waits) {
        expect(w).toBeGreaterThanOrEqual(5_000);
        expect(w).toBeLessThanOrEqual(300_000);
      }
      expect(waits.at(-1)).toBe(300_000);
    }
  });
});

describe("response classifiers", () => {
  const METHODS = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH"];
  const STATUSES = [200, 404, 500, 503, 0];

  function classifier(kind: string): ResponseClassifier {
    const { config } = decodeBlock("responseClassifier", { kind });
    return config!.plugin.create(config!.config, ctx());
  }

  /** The class of every method × status, as `METHOD status class` lines. */
  function table(c: ResponseClassifier): string[] {
    return METHODS.flatMap((m) => STATUSES.map((s) => `${m} ${s} ${c.classify(m, s)}`));
  }

  function expected(failedAs: (method: string) => ResponseClass): string[] {
    return METHODS.flatMap((m) =>
      STATUSES.map((s) => `${m} ${s} ${s === 0 || s >= 500 ? failedAs(m) : "success"}`),
    );
  }

  it("io.l5d.http.nonRetryable5XX (the default): 5XX and errors fail, none retryable", () => {
    expect(table(classifier("io.l5d.http.nonRetryable5XX"))).toEqual(expected(() => "failure"));
    expect(table(DEFAULT_CLASSIFIER)).toEqual(expected(() => "failure"));
  });

  it("io.l5d.http.retryableRead5XX: retryable for GET, HEAD, OPTIONS, TRACE", () => {
    const read = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);
    expect(table(classifier("io.l5d.http.retryableRead5XX"))).toEqual(
      expected((m) => (read.has(m) ? "retryable" : "failure")),
    );
  });

  it("io.l5d.http.retryableIdempotent5XX: the read methods plus PUT and DELETE", () => {
    const idempotent = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
    expect(table(classifier("io.l5d.http.retryableIdempotent5XX"))).toEqual(
      expected((m) => (idempotent.has(m) ? "retryable" : "failure")),
    );
  });

  it("io.l5d.http.retryableAll5XX: retryable for every method", () => {
    expect(table(classifier("io.l5d.http.retryableAll5XX"))).toEqual(expected(() => "retryable"));
  });

  it("io.l5d.http.allSuccessful: every answer succeeds; no answer (0) is still a failure", () => {
    const c = classifier("io.l5d.http.allSuccessful");
    expect(table(c)).toEqual(
      METHODS.flatMap((m) => STATUSES.map((s) => `${m} ${s} ${s === 0 ? "failure" : "success"}`)),
    );
  });

  it("treats 599 as a server error and 600 and 499 as answers", () => {
    const c = classifier("io.l5d.http.retryableAll5XX");
    expect([499, 500, 599, 600].map((s) => c.classify("GET", s))).toEqual([
      "success",
      "retryable",
      "retryable",
      "success",
    ]);
  });

  it("matches methods case-sensitively, as HTTP does", () => {
    expect(classifier("io.l5d.http.retryableRead5XX").classify("get", 503)).toBe("failure");
  });
});

describe("RetryBudget", () => {
  const LINKERD = { ttlSecs: 10, minRetriesPerSec: 10, percentCanRetry: 0.2 };

  function withdrawAll(b: RetryBudget): number {
    let n = 0;
    while (b.tryWithdraw()) n++;
    return n;
  }

  it("allows minRetriesPerSec × ttlSecs retries with no traffic, then refuses", () => {
    const b = new RetryBudget(LINKERD, fakeClock());
    expect(b.balance).toBe(100);
    expect(withdrawAll(b)).toBe(100);
    expect(b.balance).toBe(0);
    expect(b.tryWithdraw()).toBe(false);
  });

  it("adds percentCanRetry of the requests on top of the reserve", () => {
    const b = new RetryBudget(LINKERD, fakeClock());
    for (let i = 0; i < 100; i++) b.deposit();
    expect(b.balance).toBe(120);
    expect(withdrawAll(b)).toBe(120);
    expect(b.tryWithdraw()).toBe(false);
    // Four more requests earn nothing yet; the fifth earns a retry.
    for (let i = 0; i < 4; i++) b.deposit();
    expect(b.tryWithdraw()).toBe(false);
    b.deposit();
    expect(b.tryWithdraw()).toBe(true);
  });

  it("gives spent retries back ttlSecs later", () => {
    const clock = fakeClock();
    const b = new RetryBudget(LINKERD, clock);
    expect(withdrawAll(b)).toBe(100);
    clock.advance(8_999);
    expect(b.tryWithdraw()).toBe(false);
    clock.advance(1_001);
    expect(b.balance).toBe(100);
    expect(withdrawAll(b)).toBe(100);
  });

  it("forgets requests ttlSecs after they were made", () => {
    const clock = fakeClock();
    const b = new RetryBudget(LINKERD, clock);
    for (let i = 0; i < 50; i++) b.deposit();
    expect(b.balance).toBe(110);
    clock.advance(5_000);
    for (let i = 0; i < 50; i++) b.deposit();
    expect(b.balance).toBe(120);
    clock.advance(5_000);
    expect(b.balance).toBe(110);
    clock.advance(5_000);
    expect(b.balance).toBe(100);
  });

  it("counts over a sliding window: a retry spent early comes back first", () => {
    const clock = fakeClock();
    const b = new RetryBudget({ ttlSecs: 10, minRetriesPerSec: 1, percentCanRetry: 0.2 }, clock);
    for (let i = 0; i < 5; i++) b.tryWithdraw();
    clock.advance(5_000);
    for (let i = 0; i < 5; i++) b.tryWithdraw();
    expect(b.tryWithdraw()).toBe(false);
    clock.advance(5_000);
    expect(b.balance).toBe(5);
  });

  it("goes below zero when requests age out before the retries they paid for", () => {
    const clock = fakeClock();
    const b = new RetryBudget({ ttlSecs: 10, minRetriesPerSec: 0, percentCanRetry: 0.5 }, clock);
    for (let i = 0; i < 10; i++) b.deposit();
    clock.advance(5_000);
    expect(withdrawAll(b)).toBe(5);
    clock.advance(5_000);
    expect(b.balance).toBe(-5);
    expect(b.tryWithdraw()).toBe(false);
    clock.advance(5_000);
    expect(b.balance).toBe(0);
  });

  it("with percentCanRetry 0 gives only the reserve", () => {
    const b = new RetryBudget({ ttlSecs: 2, minRetriesPerSec: 3, percentCanRetry: 0 }, fakeClock());
    for (let i = 0; i < 1000; i++) b.deposit();
    expect(withdrawAll(b)).toBe(6);
  });

  it("with both 0 never allows a retry", () => {
    const b = new RetryBudget(
      { ttlSecs: 10, minRetriesPerSec: 0, percentCanRetry: 0 },
      fakeClock(),
    );
    b.deposit();
    expect(b.tryWithdraw()).toBe(false);
    expect(b.balance).toBe(0);
  });
});

describe("config decoding", () => {
  it("knows every kind", () => {
    expect(registry().kinds("backoff")).toEqual(["constant", "jittered"]);
    expect(registry().kinds("responseClassifier")).toEqual([
      "io.l5d.h2.allSuccessful",
      "io.l5d.h2.grpc.alwaysRetryable",
      "io.l5d.h2.grpc.compliant",
      "io.l5d.h2.grpc.default",
      "io.l5d.h2.grpc.neverRetryable",
      "io.l5d.h2.grpc.retryableStatusCodes",
      "io.l5d.h2.nonRetryable5XX",
      "io.l5d.h2.retryableAll5XX",
      "io.l5d.h2.retryableIdempotent5XX",
      "io.l5d.h2.retryableRead5XX",
      "io.l5d.http.allSuccessful",
      "io.l5d.http.nonRetryable5XX",
      "io.l5d.http.retryableAll5XX",
      "io.l5d.http.retryableIdempotent5XX",
      "io.l5d.http.retryableRead5XX",
    ]);
  });

  it("decodes a jittered backoff and requires both bounds", () => {
    expect(
      decodeBlock("backoff", { kind: "jittered", minMs: 10, maxMs: 20 }).config?.config,
    ).toEqual({ minMs: 10, maxMs: 20 });
    expect(decodeBlock("backoff", { kind: "jittered", minMs: 10 }).issues).toEqual([
      "block.maxMs: missing (expected an integer of at least 0)",
    ]);
  });

  it("refuses minMs > maxMs at the block, as before", () => {
    expect(decodeBlock("backoff", { kind: "jittered", minMs: 500, maxMs: 100 }).issues).toEqual([
      "block: minMs (500) is larger than maxMs (100)",
    ]);
  });

  it("refuses negative waits and unknown keys", () => {
    expect(decodeBlock("backoff", { kind: "constant", ms: -1 }).issues).toEqual([
      "block.ms: expected an integer of at least 0, got -1",
    ]);
    expect(decodeBlock("backoff", { kind: "constant", msec: 1 }).issues).toHaveLength(1);
  });

  it("takes no fields for a classifier", () => {
    expect(
      decodeBlock("responseClassifier", { kind: "io.l5d.http.retryableRead5XX" }).issues,
    ).toEqual([]);
    expect(
      decodeBlock("responseClassifier", { kind: "io.l5d.http.retryableRead5XX", methods: [] })
        .issues,
    ).toHaveLength(1);
  });

  it("suggests the right spelling of a classifier kind", () => {
    const { issues } = decodeBlock("responseClassifier", { kind: "io.l5d.http.retryableRead5xx" });
    expect(issues[0]).toContain("io.l5d.http.retryableRead5XX");
  });
});

describe("gRPC response classifiers (io.l5d.h2.grpc.*)", () => {
  const make = (block: Record<string, unknown>): ResponseClassifier => {
    const { config } = decodeBlock("responseClassifier", block);
    return config!.plugin.create(config!.config, ctx()) as ResponseClassifier;
  };
  const trailersOnly = (code: number) => [
    "content-type",
    "application/grpc",
    "grpc-status",
    String(code),
  ];
  const streamed = ["content-type", "application/grpc"];

  it("classifies a trailers-only answer at once by its grpc-status", () => {
    const c = make({ kind: "io.l5d.h2.grpc.default" });
    expect([0, 14, 13, 5].map((code) => c.classify("POST", 200, trailersOnly(code)))).toEqual([
      "success",
      "retryable",
      "failure",
      "failure",
    ]);
    expect(c.classifiesAtEnd!(200, trailersOnly(14))).toBe(false);
  });

  it("leaves a streamed answer's class to its trailers", () => {
    const c = make({ kind: "io.l5d.h2.grpc.default" });
    expect(c.classifiesAtEnd!(200, streamed)).toBe(true);
    expect(c.classifyEnd!(["grpc-status", "0"])).toBe("success");
    expect(c.classifyEnd!(["grpc-status", "14", "grpc-message", "x"])).toBe("retryable");
    expect(c.classifyEnd!(["grpc-status", "2"])).toBe("failure");
    // A call that ends without any grpc-status failed.
    expect(c.classifyEnd!(undefined)).toBe("failure");
  });

  it("retries what each kind says, and counts successStatusCodes as successes", () => {
    const codes = [0, 5, 14];
    const classes = (block: Record<string, unknown>) =>
      codes.map((code) => make(block).classify("POST", 200, trailersOnly(code)));
    expect(classes({ kind: "io.l5d.h2.grpc.alwaysRetryable" })).toEqual([
      "success",
      "retryable",
      "retryable",
    ]);
    expect(classes({ kind: "io.l5d.h2.grpc.neverRetryable" })).toEqual([
      "success",
      "failure",
      "failure",
    ]);
    expect(
      classes({ kind: "io.l5d.h2.grpc.retryableStatusCodes", retryableStatusCodes: [5] }),
    ).toEqual(["success", "retryable", "failure"]);
    expect(classes({ kind: "io.l5d.h2.grpc.default", successStatusCodes: [0, 5] })).toEqual([
      "success",
      "success",
      "retryable",
    ]);
    // An HTTP error or no answer at all: a failure, retried as UNAVAILABLE would be.
    expect(make({ kind: "io.l5d.h2.grpc.default" }).classify("POST", 503, streamed)).toBe(
      "retryable",
    );
    expect(make({ kind: "io.l5d.h2.grpc.neverRetryable" }).classify("POST", 0)).toBe("failure");
  });
});
