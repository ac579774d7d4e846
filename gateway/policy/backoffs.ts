// The backoff kinds: `constant` (the same wait each time) and `jittered` (Finagle's
// decorrelated jitter, growing from minMs towards maxMs); and failure accrual's default
// when its block names no backoff (Linkerd 1's: equal jitter, 5 s growing to 300 s).

import { def, integer, object, req } from "../config/schema.js";
import { type AnyPlugin, definePlugin } from "../plugins/registry.js";
import type { Backoff, BackoffSequence } from "./backoff.js";

export const constantBackoff = definePlugin({
  category: "backoff",
  kind: "constant",
  schema: object({ ms: def(integer({ min: 0 }), 0) }),
  create(config) {
    // Nothing to remember between waits: every run shares one sequence.
    const sequence: BackoffSequence = { next: () => config.ms };
    return { sequence: () => sequence };
  },
});

export const jitteredBackoff = definePlugin({
  category: "backoff",
  kind: "jittered",
  schema: object({ minMs: req(integer({ min: 0 })), maxMs: req(integer({ min: 0 })) }),
  validate: (c) =>
    c.minMs > c.maxMs ? [`minMs (${c.minMs}) is larger than maxMs (${c.maxMs})`] : [],
  create: (config, ctx) => ({
    sequence: () => new DecorrelatedJitter(config.minMs, config.maxMs, ctx.random),
  }),
});

export const BACKOFFS: readonly AnyPlugin[] = [constantBackoff, jitteredBackoff];

/** How long a dead endpoint waits for its probe when the failure accrual block names no backoff. */
export function DEFAULT_ACCRUAL_BACKOFF(random: () => number): Backoff {
  // Linkerd 1's FailureAccrualConfig.defaultBackoff: Backoff.equalJittered(5.seconds, 300.seconds).
  return { sequence: () => new EqualJitter(5_000, 300_000, random) };
}

/**
 * minMs first; then each wait is drawn from [minMs, min(maxMs, previous × 3)) (AWS's
 * "decorrelated jitter", Finagle's Backoff.decorrelatedJittered), in whole milliseconds.
 */
class DecorrelatedJitter implements BackoffSequence {
  private previous = -1;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number,
  ) {}

  next(): number {
    // Finagle requires minMs > 0; lintel accepts 0 and grows from 1 ms, so the waits
    // still grow rather than staying at 0.
    const upper =
      this.previous < 0 ? this.minMs : Math.min(this.maxMs, Math.max(this.previous, 1) * 3);
    this.previous = this.minMs + Math.floor(this.random() * (upper - this.minMs));
    return this.previous;
  }
}

/**
 * startMs first; then the n-th wait is half of startMs × 2ⁿ plus a random part of the
 * same size, capped at maxMs (AWS's "equal jitter", Finagle's Backoff.equalJittered).
 */
class EqualJitter implements BackoffSequence {
  /** Half of the current exponential step; 0 until the first wait was given. */
  private half = 0;

  constructor(
    private readonly startMs: number,
    private readonly maxMs: number,
    private readonly random: () => number,
  ) {}

  next(): number {
    if (this.half === 0) {
      this.half = this.startMs;
      return this.startMs;
    }
    const wait = Math.min(this.maxMs, this.half + Math.floor(this.random() * this.half));
    if (this.half < this.maxMs) this.half *= 2;
    return wait;
  }
}
