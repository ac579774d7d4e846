// The time the ACME code runs on, injected (gateway's clock has this shape), so renewal
// and backoff tests do not sleep. tls/ defines its own because it never imports gateway/.

export interface AcmeClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { unref?(): void };
  clearTimeout(timer: { unref?(): void }): void;
}
