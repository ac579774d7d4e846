// Backoffs (a kind: constant, jittered, or a plugin's): the waits between attempts of
// something that keeps failing (a dead endpoint's probes, a request's retries). Each
// run of failures draws from a fresh sequence.

export interface BackoffSequence {
  /** The next wait, in milliseconds. */
  next(): number;
}

export interface Backoff {
  sequence(): BackoffSequence;
}
