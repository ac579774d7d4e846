// Time, injected: watches, backoffs and renewals take a Clock so tests can drive them
// with a fake one instead of sleeping.

export interface Timer {
  /** Lets the process exit while the timer is pending (a real timer's unref). */
  unref?(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
