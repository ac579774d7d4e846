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

/** How far coarseClock may lag behind Date.now(). */
const COARSE_MS = 20;
let coarseNow = 0;
let coarseTicker: NodeJS.Timeout | undefined;

/**
 * Date.now() to within COARSE_MS, for per-request bookkeeping that needs no finer time
 * (retry budgets, failure accrual windows and backoffs, idle stamps): a field read
 * instead of a call into the runtime on every request. The ticker starts on first use
 * and never keeps the process alive.
 */
export const coarseClock: Pick<Clock, "now"> = {
  now() {
    if (coarseTicker === undefined) {
      coarseNow = Date.now();
      coarseTicker = setInterval(() => {
        coarseNow = Date.now();
      }, COARSE_MS);
      coarseTicker.unref();
    }
    return coarseNow;
  },
};
