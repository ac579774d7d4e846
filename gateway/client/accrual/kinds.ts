// The failure accrual kinds (Finagle's FailureAccrualPolicy): when an endpoint's record of
// outcomes says it is dead. As in Finagle, only a failure can mark an endpoint dead; the
// backoff of dead endpoints is the accrual block's `backoff`, given in the context.

import { def, integer, number, object, req } from "../../config/schema.js";
import { type AnyPlugin, definePlugin } from "../../plugins/registry.js";
import { WindowedSum } from "../../policy/windowed-sum.js";
import type { FailureAccrual } from "./accrual.js";

const fraction = () => number({ min: 0, max: 1, expected: "a fraction from 0 to 1" });

/**
 * io.l5d.successRateWindowed judges no endpoint on fewer requests than this in its window
 * (Finagle's FailureAccrualPolicy.DefaultMinimumRequestThreshold, which Linkerd 1 uses).
 */
export const WINDOWED_MIN_REQUESTS = 5;

/** Slices of io.l5d.successRateWindowed's window: a request leaves it within window/10. */
const WINDOW_SLICES = 10;

export const consecutiveFailures = definePlugin({
  category: "failureAccrual",
  kind: "io.l5d.consecutiveFailures",
  schema: object({ failures: def(integer({ min: 1 }), 5) }),
  create: (config, ctx) => ({
    backoff: ctx.backoff,
    make: () => new ConsecutiveFailures(config.failures),
  }),
});

export const successRate = definePlugin({
  category: "failureAccrual",
  kind: "io.l5d.successRate",
  schema: object({ successRate: req(fraction()), requests: req(integer({ min: 1 })) }),
  create(config, ctx) {
    // Finagle's Ema over request counts: each request keeps exp(−1/requests) of the
    // average so far, so the average's memory is about `requests` requests.
    const keep = Math.exp(-1 / config.requests);
    return {
      backoff: ctx.backoff,
      make: () => new EmaSuccessRate(config.successRate, config.requests, keep),
    };
  },
});

export const successRateWindowed = definePlugin({
  category: "failureAccrual",
  kind: "io.l5d.successRateWindowed",
  schema: object({ successRate: req(fraction()), window: req(integer({ min: 1 })) }),
  create: (config, ctx) => ({
    backoff: ctx.backoff,
    make: () => new WindowedSuccessRate(config.successRate, config.window * 1000),
  }),
});

/** Never marks an endpoint dead: one shared, stateless record. */
const NEVER_DEAD: FailureAccrual = { record: () => false, reset() {} };

export const noFailureAccrual = definePlugin({
  category: "failureAccrual",
  kind: "none",
  schema: object({}),
  create: (_config, ctx) => ({ backoff: ctx.backoff, make: () => NEVER_DEAD }),
});

export const FAILURE_ACCRUALS: readonly AnyPlugin[] = [
  consecutiveFailures,
  successRate,
  successRateWindowed,
  noFailureAccrual,
];

/** Dead after `threshold` failures in a row; a success starts the count again. */
class ConsecutiveFailures implements FailureAccrual {
  private failures = 0;

  constructor(private readonly threshold: number) {}

  record(ok: boolean): boolean {
    if (ok) {
      this.failures = 0;
      return false;
    }
    return ++this.failures >= this.threshold;
  }

  reset(): void {
    this.failures = 0;
  }

  describe() {
    return { consecutiveFailures: this.failures, deadAfter: this.threshold };
  }
}

/**
 * Dead on a failure that takes the moving average success rate below `required`, once
 * `window` requests were seen since the start or the last revival (Finagle's
 * FailureAccrualPolicy.successRate).
 */
class EmaSuccessRate implements FailureAccrual {
  /** Requests seen, counted up to `window` only. */
  private seen = 0;
  private rate = 0;

  constructor(
    private readonly required: number,
    private readonly window: number,
    private readonly keep: number,
  ) {}

  record(ok: boolean): boolean {
    const x = ok ? 1 : 0;
    // The first request sets the average (as Finagle's Ema does).
    this.rate = this.seen === 0 ? x : x + (this.rate - x) * this.keep;
    if (this.seen < this.window) this.seen++;
    return !ok && this.seen >= this.window && this.rate < this.required;
  }

  reset(): void {
    this.seen = 0;
    this.rate = 0;
  }

  describe() {
    return {
      // No rate before the first request.
      successRate: this.seen === 0 ? null : round(this.rate),
      // Requests seen since the start or the last revival, counted up to `requests`.
      requests: this.seen,
      minSuccessRate: this.required,
      judgedAfter: this.window,
    };
  }
}

/**
 * Dead on a failure that takes the success rate over the last `windowMs` below
 * `required`, once that window holds at least WINDOWED_MIN_REQUESTS requests. The rate is
 * the plain ratio over a sliding window (Finagle averages over time instead).
 */
class WindowedSuccessRate implements FailureAccrual {
  private readonly requests: WindowedSum;
  private readonly failures: WindowedSum;

  constructor(
    private readonly required: number,
    windowMs: number,
  ) {
    this.requests = new WindowedSum(windowMs, WINDOW_SLICES);
    this.failures = new WindowedSum(windowMs, WINDOW_SLICES);
  }

  record(ok: boolean, now: number): boolean {
    this.requests.add(1, now);
    if (ok) return false;
    this.failures.add(1, now);
    const n = this.requests.sum(now);
    return n >= WINDOWED_MIN_REQUESTS && (n - this.failures.sum(now)) / n < this.required;
  }

  reset(): void {
    this.requests.reset();
    this.failures.reset();
  }

  describe(now: number) {
    const n = this.requests.sum(now);
    const failures = this.failures.sum(now);
    return {
      successRate: n === 0 ? null : round((n - failures) / n),
      requests: n,
      failures,
      minSuccessRate: this.required,
      judgedAfter: WINDOWED_MIN_REQUESTS,
    };
  }
}

/** A rate to four decimals, as the admin server shows it. */
function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
