// The built-in rate limit stores. `local`: the count of this process, every thread
// included (a GCRA table in the shared arena). `redis`: the count of every replica using
// the same Redis (rate-limiter-flexible's fixed window), bounded waits, and an answer
// of its own when Redis is slow or away.

import { def, integer, nonEmptyString, object, oneOf, opt, req } from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import { GcraTable } from "./gcra-table.js";
import { RedisWindow } from "./redis-window.js";
import type { Limiter, RateLimitSpec, RateLimitStore, Taken } from "./store.js";

export const localStore = definePlugin({
  category: "rateLimitStore",
  kind: "local",
  schema: object({
    /** Keys counted at once; a new key in a full part of the table evicts the oldest. */
    maxKeys: def(integer({ min: 8 }), 65_536),
  }),
  create: (config, ctx): RateLimitStore => ({
    limiter: (spec) => {
      // Named by router, limit and settings: every thread (and every layer of the router
      // with the same name and settings) counts in the same table.
      const table = new GcraTable(
        ctx.arena,
        `${ctx.routerLabel}/${spec.name}/${spec.requests}/${spec.intervalSecs}/${spec.burst}/${config.maxKeys}`,
        config.maxKeys,
      );
      ctx.metrics.scope(limitScope(ctx, spec.name)).gauge("evictions", () => table.evictions);
      return new LocalLimiter(table, ctx, spec);
    },
  }),
});

export const redisStore = definePlugin({
  category: "rateLimitStore",
  kind: "redis",
  schema: object({
    url: req(nonEmptyString("a redis:// URL")),
    passwordEnv: opt(nonEmptyString("an environment variable name")),
    /** The most a request waits for Redis. */
    timeoutMs: def(integer({ min: 1 }), 25),
    /** When Redis is slow or away: count in memory, let requests pass, or refuse them. */
    onFailure: def(oneOf(["insurance", "open", "closed"] as const), "insurance"),
    keyPrefix: def(nonEmptyString("a key prefix"), "lintel:ratelimit"),
  }),
  validate: (config) =>
    config.passwordEnv !== undefined && process.env[config.passwordEnv] === undefined
      ? [
          {
            field: "passwordEnv",
            message: `the environment variable ${config.passwordEnv} is not set`,
          },
        ]
      : [],
  create: (config, ctx): RateLimitStore => {
    const client = ctx.redis.get({
      url: config.url,
      password: config.passwordEnv === undefined ? undefined : process.env[config.passwordEnv],
      commandTimeoutMs: config.timeoutMs,
    });
    return {
      limiter: (spec: RateLimitSpec): Limiter => {
        if (spec.burst !== spec.requests)
          throw new Error(
            "the redis store counts a fixed window of `requests` per interval: burst is for the local store",
          );
        return new RedisWindow({
          client,
          keyPrefix: `${config.keyPrefix}:${ctx.routerLabel}:${spec.name}`,
          requests: spec.requests,
          intervalSecs: spec.intervalSecs,
          onFailure: config.onFailure,
          timeoutMs: config.timeoutMs,
          errors: spec.errors,
          log: ctx.log,
        });
      },
    };
  },
});

/** Where a limit's metrics are reported (the layer's and its store's). */
export function limitScope(ctx: ServerLayerContext, name: string) {
  return {
    flat: `rt/${ctx.routerLabel}/ratelimit/${name}`,
    prom: "rt:ratelimit",
    labels: [
      ["rt", ctx.routerLabel],
      ["limit", name],
    ] as const,
  };
}

/**
 * The shared GCRA table read with the thread's clock. Its answer is one object per
 * limiter, reused: the layer reads it before this thread counts the next request.
 */
class LocalLimiter implements Limiter, Taken {
  ok = false;
  remaining = 0;
  resetMs = 0;
  retryAfterMs = 0;
  private readonly rates: { emissionMs: number; burst: number };

  constructor(
    private readonly table: GcraTable,
    private readonly ctx: ServerLayerContext,
    spec: RateLimitSpec,
  ) {
    this.rates = { emissionMs: (spec.intervalSecs * 1000) / spec.requests, burst: spec.burst };
  }

  take(key: string): Taken {
    const t = this.table;
    this.ok = t.take(key, this.ctx.clock.now(), this.rates);
    this.remaining = t.remaining;
    this.resetMs = t.resetMs;
    this.retryAfterMs = t.retryAfterMs;
    return this;
  }
}
