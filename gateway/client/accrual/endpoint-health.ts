// One endpoint's liveness under failure accrual: alive until its record says dead, then
// dead for the next backoff wait; then exactly one request probes it: success revives it
// (fresh record, fresh backoff), failure starts the next wait. No timers: reads the clock.

import type { Clock } from "../../clock.js";
import type { Backoff, BackoffSequence } from "../../policy/backoff.js";
import type { FailureAccrual } from "./accrual.js";

export type HealthState = "alive" | "dead" | "probing";

/** For metrics; one per client, shared by its endpoints (Finagle's removals and revivals). */
export interface AccrualCounters {
  /** Times an endpoint was marked dead, a failed probe included. */
  markedDead: number;
  /** Times a probe succeeded and brought an endpoint back. */
  revived: number;
}

export function accrualCounters(): AccrualCounters {
  return { markedDead: 0, revived: 0 };
}

/**
 * The caller asks `available` before picking the endpoint, calls `admit()` when it sends
 * a request there, and `record(ok)` with the outcome of every request it sent (a cancelled
 * one too), as the response classifier says.
 */
export class EndpointHealth {
  private current: HealthState = "alive";
  private until = 0;
  private waits: BackoffSequence;
  /** When the last outcome was recorded (clock ms; -Infinity: none yet), and whether it was a success. */
  private lastAt = Number.NEGATIVE_INFINITY;
  private lastOk = false;

  constructor(
    private readonly accrual: FailureAccrual,
    private readonly backoff: Backoff,
    private readonly clock: Pick<Clock, "now">,
    readonly counters: AccrualCounters = accrualCounters(),
  ) {
    this.waits = backoff.sequence();
  }

  get state(): HealthState {
    return this.current;
  }

  /** When the current (or last) dead period ends, in clock milliseconds. */
  get deadUntil(): number {
    return this.until;
  }

  /** The last outcome recorded (a failFast connection failure included), or undefined. */
  get lastOutcome(): { readonly at: number; readonly ok: boolean } | undefined {
    return this.lastAt === Number.NEGATIVE_INFINITY
      ? undefined
      : { at: this.lastAt, ok: this.lastOk };
  }

  /** The accrual kind's record, as it describes it (for the admin server), or undefined. */
  describeRecord(): Readonly<Record<string, number | string | boolean | null>> | undefined {
    return this.accrual.describe?.(this.clock.now());
  }

  /** Alive, or dead with its wait over (the next request will be its probe). */
  get available(): boolean {
    return this.current === "alive" || (this.current === "dead" && this.clock.now() >= this.until);
  }

  /** A request goes to this endpoint. True: it is the probe of a dead endpoint. */
  admit(): boolean {
    if (this.current !== "dead" || this.clock.now() < this.until) return false;
    this.current = "probing";
    return true;
  }

  record(ok: boolean): void {
    const now = this.clock.now();
    this.lastAt = now;
    this.lastOk = ok;
    switch (this.current) {
      case "alive":
        if (this.accrual.record(ok, now)) this.markDead();
        return;
      case "probing":
        // The first outcome while probing settles it, even a late one of a request sent
        // before the endpoint died: either way it is news of the endpoint.
        if (ok) this.revive();
        else this.markDead();
        return;
      case "dead":
        // Late outcomes of requests sent before it died: the record starts afresh on
        // revival, and the wait is not stretched (as in Finagle).
        return;
    }
  }

  /**
   * A request sent here ended with no outcome (the client left, a deadline or a retry cut
   * it). A probe that ends so settles nothing: the next request probes again.
   */
  abandon(): void {
    if (this.current === "probing") this.current = "dead";
  }

  /**
   * Marks it dead now, for the next wait, whatever its record says (failFast: a connection
   * failure). Does nothing while it is dead already: the wait is not stretched.
   */
  markDead(): void {
    const now = this.clock.now();
    this.lastAt = now;
    this.lastOk = false;
    if (this.current === "dead") return;
    this.current = "dead";
    this.until = now + this.waits.next();
    this.counters.markedDead++;
  }

  private revive(): void {
    this.current = "alive";
    this.accrual.reset();
    this.waits = this.backoff.sequence();
    this.counters.revived++;
  }
}
