// When to renew a certificate and when to try again after a failure: pure functions of
// the certificate's dates, the CA's renewal window (ARI) and a random source, so tests
// can check them without waiting.

/** Renew when this share of the lifetime is left (Let's Encrypt's own advice). */
export const RENEW_REMAINING_FRACTION = 1 / 3;

/**
 * The time to renew: a random point in the CA's suggested window when it gave one (RFC
 * 9773: spread over the window so replicas and clients do not all renew at once; a
 * window already past means now), else when a third of the lifetime is left.
 */
export function renewalTime(
  cert: { readonly notBefore: number; readonly notAfter: number },
  window: { readonly start: number; readonly end: number } | undefined,
  now: number,
  random: () => number,
): number {
  if (window && window.end > window.start) {
    if (window.end <= now) return now;
    const start = Math.max(window.start, now);
    return start + random() * (window.end - start);
  }
  const lifetime = cert.notAfter - cert.notBefore;
  return cert.notAfter - lifetime * RENEW_REMAINING_FRACTION;
}

/** The longest wait between two tries of a failing name. */
export const RETRY_MAX_MS = 24 * 3600_000;

/**
 * When to try a failing name again: exponential backoff from `minMs` (doubling per
 * failure) with jitter (half to all of the step), and never sooner than the CA's
 * Retry-After.
 */
export function retryDelay(
  failures: number,
  retryAfterMs: number | undefined,
  random: () => number,
  minMs: number,
): number {
  const step = Math.min(RETRY_MAX_MS, minMs * 2 ** Math.max(0, failures - 1));
  const jittered = step / 2 + random() * (step / 2);
  return Math.max(jittered, retryAfterMs ?? 0);
}
