// Schemas for the client and service policy blocks of a router (Linkerd's `client` and
// `service`): connection pools, limits, TLS origination, retry budgets and timeouts. The
// kinds inside them (load balancers, failure accrual, backoffs, response classifiers)
// come from the registry.

import type { Registry } from "../plugins/registry.js";
import { h2SettingsFields } from "./h2-settings.js";
import { pluginSchema } from "./plugin-schema.js";
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
  oneOf,
  opt,
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

export const retryBudget = object({
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
function clientFields(registry: Registry) {
  return {
    hostConnectionPool: opt(hostConnectionPool),
    loadBalancer: opt(pluginSchema(registry, "loadBalancer")),
    failureAccrual: opt(pluginSchema(registry, "failureAccrual")),
    failFast: opt(boolean()),
    requeueBudget: opt(retryBudget),
    requestAttemptTimeoutMs: opt(integer({ min: 1 })),
    connectTimeoutMs: opt(integer({ min: 1 })),
    /** lintel (Envoy's max_requests): requests in flight to this client at once. */
    maxRequests: opt(integer({ min: 1 })),
    /** lintel (Envoy's max_pending_requests): requests waiting for a connection to one endpoint. */
    maxPendingRequests: opt(integer({ min: 0 })),
    tls: opt(clientTls),
    /**
     * lintel: what this client speaks to its upstreams, `http` (HTTP/1.1) or `h2`
     * (prior knowledge, or ALPN h2 under `tls`); the router's `protocol` when absent.
     */
    protocol: opt(oneOf(["http", "h2"] as const)),
    /** Linkerd's h2 client parameters: the SETTINGS of its HTTP/2 connections upstream. */
    ...h2SettingsFields,
    /**
     * Linkerd: send the downstream's TLS client certificate upstream in
     * x-forwarded-client-cert (`Hash=…;SAN=…;DNS=…;Subject="…"`), replacing any sent.
     */
    forwardClientCert: opt(boolean()),
  };
}

export function clientSchema(registry: Registry) {
  const fields = clientFields(registry);
  return kinded("client", {
    "io.l5d.global": object(fields),
    "io.l5d.static": object({
      configs: req(
        list(
          object({
            prefix: req(nonEmptyString("a client prefix such as /#/io.l5d.fs/{service}")),
            ...fields,
          }),
        ),
      ),
    }),
  });
}

function serviceFields(registry: Registry) {
  return {
    totalTimeoutMs: opt(integer({ min: 1 })),
    retries: opt(
      object({ budget: opt(retryBudget), backoff: opt(pluginSchema(registry, "backoff")) }),
    ),
    responseClassifier: opt(pluginSchema(registry, "responseClassifier")),
    /**
     * Linkerd (h2): how long an answer whose class comes with its end (a gRPC status in
     * trailers) is held, with up to retryBufferSize.responseBytes of its body, so that a
     * retryable one is retried; lintel holds none when neither key is set.
     */
    classificationTimeoutMs: opt(integer({ min: 0 })),
    /** Linkerd (h2): the request and response bytes kept so a request can be retried. */
    retryBufferSize: opt(
      object({
        requestBytes: def(integer({ min: 0 }), 16_383),
        responseBytes: def(integer({ min: 0 }), 16_383),
      }),
    ),
    /** lintel: layers for the service names the entry matches, after identification. */
    layers: opt(list(pluginSchema(registry, "serverLayer"), { expected: "a list of layers" })),
  };
}

export function serviceSchema(registry: Registry) {
  const fields = serviceFields(registry);
  return kinded("service", {
    "io.l5d.global": object(fields),
    "io.l5d.static": object({
      configs: req(
        list(
          object({
            prefix: req(nonEmptyString("a service prefix such as /svc/users")),
            ...fields,
          }),
        ),
      ),
    }),
  });
}

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
