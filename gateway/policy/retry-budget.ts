// Finagle's retry budget (a service's `retries.budget`, a client's `requeueBudget`): how
// many retries may go out now, so that retries stay a share of the traffic of the last
// ttlSecs on top of a small reserve for quiet or just-started services.

import type { Clock } from "../clock.js";
import { WindowedSum } from "./windowed-sum.js";

export interface RetryBudgetConfig {
  /** Deposits and withdrawals count for this long (Linkerd: 10). */
  readonly ttlSecs: number;
  /** The reserve: minRetriesPerSec × ttlSecs retries per ttlSecs, whatever the traffic (10). */
  readonly minRetriesPerSec: number;
  /** Retries each request earns, on top of the reserve (0.2: one per five requests). */
  readonly percentCanRetry: number;
}

/**
 * Finagle's scale: a deposit is 1000 tokens and a retry costs 1000 / percentCanRetry, so
 * the window holds whole numbers and never drifts.
 */
const SCALE = 1000;
/** Finagle's TokenBucket.newLeakyBucket: 10 slices, so tokens leave within ttl/10. */
const SLICES = 10;

/**
 * balance = reserve + percentCanRetry × requests − retries, the last two counted over the
 * last ttlSecs. As in Finagle the reserve is not paced per second: minRetriesPerSec ×
 * ttlSecs retries may go at once, and each comes back ttlSecs after it was spent.
 */
export class RetryBudget {
  private readonly tokens: WindowedSum;
  private readonly depositTokens: number;
  private readonly retryTokens: number;
  private readonly reserveTokens: number;

  constructor(
    config: RetryBudgetConfig,
    private readonly clock: Pick<Clock, "now">,
  ) {
    const { ttlSecs, minRetriesPerSec, percentCanRetry } = config;
    // With percentCanRetry 0 requests earn nothing and a retry costs 1 token (Finagle).
    this.depositTokens = percentCanRetry === 0 ? 0 : SCALE;
    this.retryTokens = percentCanRetry === 0 ? 1 : Math.floor(SCALE / percentCanRetry);
    this.reserveTokens = minRetriesPerSec * ttlSecs * this.retryTokens;
    this.tokens = new WindowedSum(ttlSecs * 1000, SLICES);
  }

  /** Once per request (not per retry). */
  deposit(): void {
    this.tokens.add(this.depositTokens, this.clock.now());
  }

  /** Before a retry: true, and the retry is counted, when the balance allows one. */
  tryWithdraw(): boolean {
    const now = this.clock.now();
    if (this.reserveTokens + this.tokens.sum(now) < this.retryTokens) return false;
    this.tokens.add(-this.retryTokens, now);
    return true;
  }

  /** Retries allowed now; below 0 when requests aged out faster than the retries they paid. */
  get balance(): number {
    return Math.trunc((this.reserveTokens + this.tokens.sum(this.clock.now())) / this.retryTokens);
  }
}
