// A rate limit's count shared by every replica: rate-limiter-flexible's Redis limiter, a
// fixed window of `requests` per interval per key. Redis is asked with a bound: a command
// fails after `timeoutMs` (the connection's command timeout, and a timer here besides),
// and a connection that is not up fails at once. Then, as configured: rate-limiter-
// flexible's in-memory insurance limiter counts in this thread until Redis is back
// (`insurance`), the request passes (`open`), or it is refused with 503 (`closed`).

import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { ProxyError } from "../../http/errors.js";
import type { Logger } from "../../log.js";
import type { Counter } from "../../telemetry/registry.js";
import type { Limiter, Taken } from "./store.js";

export interface RedisWindowOptions {
  readonly client: Redis;
  readonly keyPrefix: string;
  readonly requests: number;
  readonly intervalSecs: number;
  readonly onFailure: "insurance" | "open" | "closed";
  readonly timeoutMs: number;
  /** Counts the requests Redis did not answer in time. */
  readonly errors: Counter;
  readonly log: Logger;
}

/** Logs that Redis is away at most this often. */
const LOG_EVERY_MS = 10_000;

export class RedisWindow implements Limiter {
  private readonly limiter: RateLimiterRedis;
  private readonly insurance: RateLimiterMemory | undefined;
  private lastLog = 0;

  constructor(private readonly o: RedisWindowOptions) {
    const window = { points: o.requests, duration: o.intervalSecs };
    this.insurance = o.onFailure === "insurance" ? new RateLimiterMemory(window) : undefined;
    this.limiter = new RateLimiterRedis({
      ...window,
      storeClient: o.client,
      keyPrefix: o.keyPrefix,
      rejectIfRedisNotReady: true,
      insuranceLimiter: this.insurance,
    });
  }

  take(key: string): Promise<Taken> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const failed = (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.o.errors.n++;
        this.logDown(e);
        if (this.o.onFailure === "closed")
          reject(new ProxyError("LINTEL_UNAVAILABLE", "the rate limit's Redis is not answering"));
        else if (this.insurance === undefined)
          resolve({ ok: true, remaining: this.o.requests, resetMs: 0, retryAfterMs: 0 });
        else
          this.insurance.consume(key).then(
            (res) => resolve(taken(res, true)),
            (res: RateLimiterRes) => resolve(taken(res, false)),
          );
      };
      // The bound holds even if a command outlives the connection's timeout (which fails it
      // first, and rate-limiter-flexible turns to its insurance then).
      const timer = setTimeout(() => failed(new Error("timed out")), this.o.timeoutMs + 5);
      const answered = (res: RateLimiterRes, ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(taken(res, ok));
      };
      this.limiter.consume(key).then(
        (res) => answered(res, true),
        (e: unknown) => (e instanceof RateLimiterRes ? answered(e, false) : failed(e)),
      );
    });
  }

  private logDown(e: unknown): void {
    const now = Date.now();
    if (now - this.lastLog < LOG_EVERY_MS) return;
    this.lastLog = now;
    this.o.log.warn("rate limit: Redis is not answering", {
      failure: this.o.onFailure,
      error: e instanceof Error ? e.message : String(e),
    });
  }
}

function taken(res: RateLimiterRes, ok: boolean): Taken {
  return {
    ok,
    remaining: Math.max(0, res.remainingPoints),
    resetMs: res.msBeforeNext,
    retryAfterMs: ok ? 0 : res.msBeforeNext,
  };
}
