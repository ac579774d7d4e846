// `rateLimit`: requests per interval with a burst, counted per key (the client's address,
// a header, the service name, or a JWT claim), answered 429 with Retry-After and the IETF
// RateLimit / RateLimit-Policy fields once a key is over. Where the count lives is its
// `store`, a kind: `local` (every thread of the process, so a limit means the same with
// 0 or 8 workers) by default, `redis` (every replica), or a plugin's.

import { nestedPlugin } from "../../config/plugin-schema.js";
import {
  boolean,
  def,
  type INVALID,
  integer,
  nonEmptyString,
  number,
  object,
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
import { keyOf, parseRateKey, type RateKey } from "./rate-key.js";
import type { Limiter, Taken } from "./store.js";
import { limitScope } from "./stores.js";

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
  /** Where the count lives: `{kind: local}` (this process) or `{kind: redis, url}` (replicas). */
  store: def(nestedPlugin("rateLimitStore"), { kind: "local" }),
  /** Send RateLimit and RateLimit-Policy on allowed answers too (429s always have them). */
  headersOnAllowed: def(boolean(), false),
});

type RateLimitConfig = Exclude<ReturnType<typeof schema.decode>, typeof INVALID>;

export const rateLimitLayer = definePlugin({
  category: "serverLayer",
  kind: "rateLimit",
  schema,
  validate: (config) =>
    config.store.kind === "redis" && config.burst !== undefined && config.burst !== config.requests
      ? [
          {
            field: "burst",
            message:
              "the redis store counts a fixed window of `requests` per interval: burst is for the local store",
          },
        ]
      : [],
  create: (config, ctx) => new RateLimitLayer(config as RateLimitConfig, ctx),
});

export class RateLimitLayer implements ServerLayer {
  readonly name: string;
  private readonly key: RateKey;
  private readonly limiter: Limiter;
  private readonly policy: string;
  private readonly quoted: string;
  private readonly allowed: Counter;
  private readonly limited: Counter;
  private readonly headersOnAllowed: boolean;

  constructor(config: RateLimitConfig, ctx: ServerLayerContext) {
    this.key = parseRateKey(config.key) as RateKey;
    const limitName =
      config.name ??
      `${config.requests}-per-${config.intervalSecs}s-by-${config.key.replace(/[^A-Za-z0-9_.-]/g, "-")}`;
    this.name = `rateLimit ${limitName}`;
    this.quoted = `"${limitName}"`;
    this.policy = `${this.quoted};q=${config.requests};w=${Math.ceil(config.intervalSecs)}`;
    this.headersOnAllowed = config.headersOnAllowed;
    const scope = ctx.metrics.scope(limitScope(ctx, limitName));
    this.allowed = scope.counter("allowed");
    this.limited = scope.counter("limited");
    const store = config.store.plugin.create(config.store.config, ctx);
    this.limiter = store.limiter({
      name: limitName,
      requests: config.requests,
      intervalSecs: config.intervalSecs,
      burst: config.burst ?? config.requests,
      errors: scope.counter("store_errors"),
    });
  }

  arrive(req: ArrivingRequest, answerer: Answerer): Verdict {
    const key = keyOf(this.key, req);
    // A request without the key's value (no such header, no claim) is not counted.
    if (key === undefined) return false;
    const taken = this.limiter.take(key);
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

  /** False to let the request pass (with the fields, when asked), else throws the 429. */
  private decide(req: ArrivingRequest, t: Taken): false {
    if (t.ok) {
      this.allowed.n++;
      if (this.headersOnAllowed)
        addResponseHeaders(req, ["ratelimit-policy", this.policy, "ratelimit", this.state(t)]);
      return false;
    }
    this.limited.n++;
    throw new ProxyError(
      "LINTEL_RATE_LIMITED",
      `over the rate limit ${this.quoted} (${this.policy}) for this ${this.key.by}`,
      [
        "retry-after",
        String(Math.max(1, Math.ceil(t.retryAfterMs / 1000))),
        "ratelimit-policy",
        this.policy,
        "ratelimit",
        this.state(t),
      ],
    );
  }

  private state(t: Taken): string {
    return `${this.quoted};r=${t.remaining};t=${Math.ceil(t.resetMs / 1000)}`;
  }
}
