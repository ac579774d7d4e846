// Schemas for the client and service policy blocks of a router (Linkerd's `client` and
// `service`): connection pools, load balancers, failure accrual, TLS origination,
// retries and response classifiers. Kind-discriminated blocks list their kinds here.

import {
  boolean,
  type DecodeContext,
  def,
  filePath,
  INVALID,
  integer,
  isPlainObject,
  keyPath,
  list,
  nonEmptyString,
  number,
  type ObjectSchema,
  object,
  opt,
  refine,
  req,
  type Schema,
  show,
} from "./schema.js";
import { didYouMean } from "./suggest.js";

/** A `{kind: ...}` block whose kinds and fields are fixed here. */
export function kinded<T extends Record<string, ObjectSchema<unknown>>>(
  what: string,
  kinds: T,
  unsupported: Readonly<Record<string, string>> = {},
): Schema<
  { [K in keyof T]: { kind: K } & (T[K] extends ObjectSchema<infer C> ? C : never) }[keyof T]
> {
  const names = Object.keys(kinds);
  const expected = `a ${what} (a mapping with a kind: ${names.join(", ")})`;
  return {
    expected,
    decode(v: unknown, path: string, cx: DecodeContext) {
      if (!isPlainObject(v)) return cx.report(path, `expected ${expected}, got ${show(v)}`);
      const kind = v.kind;
      if (typeof kind !== "string")
        return cx.report(keyPath(path, "kind"), `missing (expected one of: ${names.join(", ")})`);
      const schema = kinds[kind];
      if (!schema) {
        const why = unsupported[kind];
        return cx.report(
          keyPath(path, "kind"),
          why
            ? `${what} kind "${kind}" is not supported: ${why}`
            : `unknown ${what} kind "${kind}"${didYouMean(kind, names)}; known kinds: ${names.join(", ")}`,
        );
      }
      const { kind: _k, ...rest } = v;
      const d = schema.decode(rest, path, cx);
      return d === INVALID ? INVALID : ({ kind, ...(d as object) } as never);
    },
  };
}

const percent = () => number({ min: 0, max: 1, expected: "a fraction from 0 to 1" });

export const hostConnectionPool = object({
  minSize: def(integer({ min: 0 }), 0),
  /** Unlimited when absent. */
  maxSize: opt(integer({ min: 1 })),
  idleTimeMs: opt(integer({ min: 0 })),
  maxWaiters: opt(integer({ min: 0 })),
});

export const loadBalancer = kinded("load balancer", {
  p2c: object({ maxEffort: def(integer({ min: 1 }), 5) }),
  ewma: object({
    maxEffort: def(integer({ min: 1 }), 5),
    decayTimeMs: def(integer({ min: 1 }), 10_000),
  }),
  aperture: object({
    maxEffort: def(integer({ min: 1 }), 5),
    smoothWindowMs: def(integer({ min: 1 }), 5_000),
    lowLoad: def(number({ min: 0 }), 0.5),
    highLoad: def(number({ min: 0 }), 2),
    minAperture: def(integer({ min: 1 }), 1),
  }),
  heap: object({}),
  roundRobin: object({ maxEffort: def(integer({ min: 1 }), 5) }),
});

const backoff = kinded("backoff", {
  constant: object({ ms: def(integer({ min: 0 }), 0) }),
  jittered: refine(
    object({ minMs: req(integer({ min: 0 })), maxMs: req(integer({ min: 0 })) }),
    (b) => (b.minMs > b.maxMs ? `minMs (${b.minMs}) is larger than maxMs (${b.maxMs})` : undefined),
  ),
});

export const failureAccrual = kinded("failure accrual policy", {
  "io.l5d.consecutiveFailures": object({
    failures: def(integer({ min: 1 }), 5),
    backoff: opt(backoff),
  }),
  "io.l5d.successRate": object({
    successRate: req(percent()),
    requests: req(integer({ min: 1 })),
    backoff: opt(backoff),
  }),
  "io.l5d.successRateWindowed": object({
    successRate: req(percent()),
    window: req(integer({ min: 1 })),
    backoff: opt(backoff),
  }),
  none: object({}),
});

const retryBudget = object({
  minRetriesPerSec: def(integer({ min: 0 }), 10),
  percentCanRetry: def(percent(), 0.2),
  ttlSecs: def(integer({ min: 1 }), 10),
});

export const clientTls = object({
  commonName: opt(nonEmptyString("a name (may use {captures} from the prefix)")),
  trustCerts: opt(list(filePath("a CA certificate file"))),
  trustCertsBundle: opt(filePath("a CA bundle file")),
  disableValidation: def(boolean(), false),
  clientAuth: opt(
    object({
      certPath: req(filePath("a certificate file")),
      keyPath: req(filePath("a key file")),
      intermediateCertsPath: opt(filePath("a certificate chain file")),
    }),
  ),
});

/** Per-client parameters; `prefix` is added for io.l5d.static entries. */
const clientFields = {
  hostConnectionPool: opt(hostConnectionPool),
  loadBalancer: opt(loadBalancer),
  failureAccrual: opt(failureAccrual),
  failFast: opt(boolean()),
  requeueBudget: opt(retryBudget),
  requestAttemptTimeoutMs: opt(integer({ min: 1 })),
  connectTimeoutMs: opt(integer({ min: 1 })),
  tls: opt(clientTls),
};

export const clientParams = object(clientFields);

export const client = kinded("client", {
  "io.l5d.global": object(clientFields),
  "io.l5d.static": object({
    configs: req(
      list(
        object({
          prefix: req(nonEmptyString("a client prefix such as /#/io.l5d.fs/{service}")),
          ...clientFields,
        }),
      ),
    ),
  }),
});

export const responseClassifier = kinded("response classifier", {
  "io.l5d.http.nonRetryable5XX": object({}),
  "io.l5d.http.retryableRead5XX": object({}),
  "io.l5d.http.retryableIdempotent5XX": object({}),
  "io.l5d.http.retryableAll5XX": object({}),
  "io.l5d.http.allSuccessful": object({}),
});

const serviceFields = {
  totalTimeoutMs: opt(integer({ min: 1 })),
  retries: opt(object({ budget: opt(retryBudget), backoff: opt(backoff) })),
  responseClassifier: opt(responseClassifier),
};

export const service = kinded("service", {
  "io.l5d.global": object(serviceFields),
  "io.l5d.static": object({
    configs: req(
      list(
        object({
          prefix: req(nonEmptyString("a service prefix such as /svc/users")),
          ...serviceFields,
        }),
      ),
    ),
  }),
});

/** A client/service block without `kind` means io.l5d.global, as in Linkerd. */
export function defaultKind<T>(schema: Schema<T>, kind: string): Schema<T> {
  return {
    expected: schema.expected,
    decode: (v, path, cx) =>
      isPlainObject(v) && v.kind === undefined
        ? schema.decode({ kind, ...v }, path, cx)
        : schema.decode(v, path, cx),
  };
}
