// What a rateLimit layer counts in: a `rateLimitStore` kind (`local`, `redis`, or a
// plugin's) makes one limiter per limit, which counts one request of a key at a time.

import type { Counter } from "../../telemetry/registry.js";

/** A key's count after one request: allowed or not, and what the RateLimit fields say. */
export interface Taken {
  readonly ok: boolean;
  /** Requests the key may still make now. */
  readonly remaining: number;
  /** Milliseconds until the key's allowance is whole again. */
  readonly resetMs: number;
  /** When refused: milliseconds until one more request is allowed. */
  readonly retryAfterMs: number;
}

/** One limit, as the layer configures it. */
export interface RateLimitSpec {
  /** Names the limit (unique within its router with its settings). */
  readonly name: string;
  readonly requests: number;
  readonly intervalSecs: number;
  /** Requests a key may make at once. */
  readonly burst: number;
  /** Counts the requests the store could not count (and answered as configured). */
  readonly errors: Counter;
}

export interface Limiter {
  /** Counts one request of `key`; a shared store answers later. */
  take(key: string): Taken | Promise<Taken>;
}

export interface RateLimitStore {
  limiter(spec: RateLimitSpec): Limiter;
}
