// Failure accrual (a kind: io.l5d.consecutiveFailures, io.l5d.successRate,
// io.l5d.successRateWindowed, none, or a plugin's): per endpoint, it reads the outcome
// of each request (success or failure, as the response classifier says) and decides
// when the endpoint is dead. A dead endpoint gets no requests until its backoff has
// passed; then one request probes it: success revives it, failure starts the next wait.

import type { Backoff } from "../../policy/backoff.js";

/** One endpoint's record of outcomes. */
export interface FailureAccrual {
  /** Records an outcome at `now`; true when the endpoint should be marked dead. */
  record(ok: boolean, now: number): boolean;
  /** Forgets the record (the endpoint came back). */
  reset(): void;
  /**
   * For /admin/clients.json, computed when asked: the record as this kind keeps it (the
   * failures in a row, the success rate and over how many requests). Optional: a kind (a
   * plugin's too) that leaves it out shows no record.
   */
  describe?(now: number): Readonly<Record<string, number | string | boolean | null>>;
}

/** A failure accrual kind's instance: a record per endpoint, and the backoff of dead ones. */
export interface FailureAccrualPolicy {
  make(): FailureAccrual;
  readonly backoff: Backoff;
}
