// `rateLimit`: requests per interval with a burst, counted per key (the client's address,
// a header, the service name, or a JWT claim), answered 429 with Retry-After and the IETF
// RateLimit / RateLimit-Policy fields once a key is over. The count is the process's:
// `store: local` keeps it in memory every thread shares (a GCRA table in the shared
// arena), so a limit means the same with 0 or 8 workers; `store: redis` shares it between
// replicas through rate-limiter-flexible (a fixed window per interval), with its in-memory
// insurance limiter, or an open or closed answer, when Redis is slow or away.

import {
  boolean,
  def,
  type INVALID,
  integer,
  nonEmptyString,
  number,
  object,
  oneOf,
  opt,
  refine,
  req,
  string,
} from "../../config/schema.js";
import { ProxyError } from "../../http/errors.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import {
  type Answerer,
  type ArrivingRequest,
  addResponseHeaders,
  LATER,
  type ServerLayer,
  type Verdict,
} from "../../routing/server-stack/layer.js";
import type { Counter } from "../../telemetry/registry.js";
import { GcraTable } from "./gcra-table.js";
import { keyOf, parseRateKey, type RateKey } from "./rate-key.js";
import { RedisWindow } from "./redis-window.js";

const schema = object({
  /** Names the limit in metrics and in RateLimit-Policy. */
  name: opt(
    refine(nonEmptyString("a limit name"), (v) =>
      /^[A-Za-z0-9_.-]+$/.test(v) ? undefined : "letters, digits, '_', '.' or '-' only",
    ),
  ),
  requests: req(integer({ min: 1 })),
  intervalSecs: def(number({ min: 0.001, expected: "seconds (above 0)" }), 1),
  /** Requests a key may make at once (local store); the steady rate refills them. */
  burst: opt(integer({ min: 1 })),
  key: def(
    refine(string(), (v) => {
      const k = parseRateKey(v);
      return typeof k === "string" ? k : undefined;
    }),
    "client",
  ),
  /** Keys the local store keeps at once; more evict the oldest. */
  maxKeys: def(integer({ min: 8 }), 65_536),
  store: def(oneOf(["local", "redis"] as const), "local"),
  redis: opt(
    object({
      url: req(nonEmptyString("a redis:// URL")),
      passwordEnv: opt(nonEmptyString("an environment variable name")),
      /** The most a request waits for Redis. */
      timeoutMs: def(integer({ min: 1 }), 25),
      /** When Redis is slow or away: count in memory, let requests pass, or refuse them. */
      onFailure: def(oneOf(["insurance", "open", "closed"] as const), "insurance"),
      keyPrefix: def(nonEmptyString("a key prefix"), "lintel:ratelimit"),
    }),
  ),
  /** Send RateLimit and RateLimit-Policy on answers that were allowed, too (429s always have them). */
  headersOnAllowed: def(boolean(), false),
});

type RateLimitConfig = Exclude<ReturnType<typeof schema.decode>, typeof INVALID>;

export const rateLimitLayer = definePlugin({
  category: "serverLayer",
  kind: "rateLimit",
  schema,
  validate(config) {
    const problems = [];
    if (config.store === "redis" && config.redis === undefined)
      problems.push({ field: "redis", message: "store: redis needs a redis block (url)" });
    if (config.store === "redis" && config.burst !== undefined && config.burst !== config.requests)
      problems.push({
        field: "burst",
        message:
          "the redis store counts a fixed window of `requests` per interval: burst is for store: local",
      });
    const env = config.redis?.passwordEnv;
    if (env !== undefined && process.env[env] === undefined)
      problems.push({
        field: "redis.passwordEnv",
        message: `the environment variable ${env} is not set`,
      });
    return problems;
  },
  create: (config, ctx) => new RateLimitLayer(config as RateLimitConfig, ctx),
});

/** A key's count after one request: allowed or not, and what the RateLimit fields say. */
export interface Taken {
  readonly ok: boolean;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;
}

interface Store {
  /** Counts one request of `key` (Redis answers later). */
  take(key: string): Taken | Promise<Taken>;
}

export class RateLimitLayer implements ServerLayer {
  readonly name: string;
  private readonly key: RateKey;
  private readonly store: Store;
  private readonly policy: string;
  private readonly allowed: Counter;
  private readonly limited: Counter;
  private readonly quoted: string;

  constructor(config: RateLimitConfig, ctx: ServerLayerContext) {
    const key = parseRateKey(config.key) as RateKey;
    this.key = key;
    const limitName =
      config.name ??
      `${config.requests}-per-${config.intervalSecs}s-by-${config.key.replace(/[^A-Za-z0-9_.-]/g, "-")}`;
    this.name = `rateLimit ${limitName}`;
    this.quoted = `"${limitName}"`;
    this.policy = `${this.quoted};q=${config.requests};w=${Math.ceil(config.intervalSecs)}`;
    const scope = ctx.metrics.scope({
      flat: `rt/${ctx.routerLabel}/ratelimit/${limitName}`,
      prom: "rt:ratelimit",
      labels: [
        ["rt", ctx.routerLabel],
        ["limit", limitName],
      ],
    });
    this.allowed = scope.counter("allowed");
    this.limited = scope.counter("limited");
    if (config.store === "redis") {
      const r = config.redis!;
      this.store = new RedisWindow({
        client: ctx.redis.get({
          url: r.url,
          password: r.passwordEnv === undefined ? undefined : process.env[r.passwordEnv],
          commandTimeoutMs: r.timeoutMs,
        }),
        keyPrefix: `${r.keyPrefix}:${ctx.routerLabel}:${limitName}`,
        requests: config.requests,
        intervalSecs: config.intervalSecs,
        onFailure: r.onFailure,
        timeoutMs: r.timeoutMs,
        errors: scope.counter("store_errors"),
        log: ctx.log,
      });
    } else {
      // Named by router, limit and settings: every thread (and every layer with the same
      // name and settings in this router) counts in the same table.
      const table = new GcraTable(
        ctx.arena,
        `${ctx.routerLabel}/${limitName}/${JSON.stringify(config)}`,
        config.maxKeys,
      );
      scope.gauge("evictions", () => table.evictions);
      this.store = new LocalStore(table, ctx, {
        emissionMs: (config.intervalSecs * 1000) / config.requests,
        burst: config.burst ?? config.requests,
      });
    }
    this.headersOnAllowed = config.headersOnAllowed;
  }

  private readonly headersOnAllowed: boolean;

  arrive(req: ArrivingRequest, answerer: Answerer): Verdict {
    const key = keyOf(this.key, req);
    // A request without the key's value (no such header, no claim) is not counted.
    if (key === undefined) return false;
    const taken = this.store.take(key);
    if (!(taken instanceof Promise)) return this.decide(req, taken);
    taken.then(
      (t) => {
        try {
          if (!this.decide(req, t)) answerer.proceed(req);
        } catch (e) {
          answerer.refuse(req, e as ProxyError);
        }
      },
      (e: ProxyError) => answerer.refuse(req, e),
    );
    return LATER;
  }

  /** False to let the request pass (with the fields), else throws the 429. */
  private decide(req: ArrivingRequest, s: Taken): false {
    const state = `${this.quoted};r=${s.remaining};t=${Math.ceil(s.resetMs / 1000)}`;
    if (s.ok) {
      this.allowed.n++;
      if (this.headersOnAllowed)
        addResponseHeaders(req, ["ratelimit-policy", this.policy, "ratelimit", state]);
      return false;
    }
    this.limited.n++;
    throw new ProxyError(
      "LINTEL_RATE_LIMITED",
      `over the rate limit ${this.quoted} (${this.policy}) for this ${this.key.by}`,
      [
        "retry-after",
        String(Math.max(1, Math.ceil(s.retryAfterMs / 1000))),
        "ratelimit-policy",
        this.policy,
        "ratelimit",
        state,
      ],
    );
  }
}

/**
 * The process's count: the shared GCRA table, read with the thread's clock. Its answer is
 * one object per layer, reused: it is read before the next request of this thread.
 */
class LocalStore implements Store, Taken {
  ok = false;
  remaining = 0;
  resetMs = 0;
  retryAfterMs = 0;

  constructor(
    private readonly table: GcraTable,
    private readonly ctx: ServerLayerContext,
    private readonly rates: { emissionMs: number; burst: number },
  ) {}

  take(key: string): Taken {
    const t = this.table;
    this.ok = t.take(key, this.ctx.clock.now(), this.rates);
    this.remaining = t.remaining;
    this.resetMs = t.resetMs;
    this.retryAfterMs = t.retryAfterMs;
    return this;
  }
}
