// Decodes `{kind: ..., ...}` blocks: finds the plugin for the kind in the registry and
// lets its schema decode the rest, adding the fields every plugin of the category has
// (namers: prefix and transformers; transformers: prefix; interpreters: transformers).

import type { Path } from "../naming/index.js";
import { readPath } from "../naming/index.js";
import type { AnyPlugin, Category, Plugin, Registry } from "../plugins/registry.js";
import {
  boolean,
  type DecodeContext,
  type Field,
  INVALID,
  isPlainObject,
  keyPath,
  list,
  type ObjectSchema,
  object,
  opt,
  pathString,
  type Schema,
  show,
} from "./schema.js";
import { didYouMean } from "./suggest.js";

export interface PluginConfig<C extends Category = Category> {
  readonly kind: string;
  readonly plugin: Plugin<C>;
  /** The plugin's own decoded fields. */
  readonly config: unknown;
  /** Namers: where they are mounted, `/#/<prefix>`. Transformers: `/%/<prefix>`. */
  readonly prefix?: Path;
  readonly transformers?: readonly PluginConfig<"transformer">[];
  /** Failure accrual: the backoff of dead endpoints (its `backoff` block). */
  readonly backoff?: PluginConfig<"backoff">;
}

/** Kinds Linkerd has that lintel names as unsupported rather than unknown, by category. */
const UNSUPPORTED_KINDS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  namer: {
    "io.l5d.consul": "the Consul namer is not built in; use io.l5d.fs or a plugin",
    "io.l5d.marathon": "the Marathon namer is not built in",
    "io.l5d.zk": "the ZooKeeper namer is not built in",
    "io.l5d.serversets": "the ZooKeeper serversets namer is not built in",
    "io.l5d.curator": "the Curator namer is not built in",
    "io.l5d.dnssrv": "the DNS SRV namer is not built in",
    "io.l5d.k8s.istio": "Linkerd's Istio integration is not supported",
  },
  identifier: {
    "io.l5d.k8s.istio": "Linkerd's Istio integration is not supported",
    "io.l5d.k8s.istio-ingress": "Linkerd's Istio integration is not supported",
  },
  interpreter: {
    "io.l5d.namerd": "the namerd thrift interpreter is not supported",
    "io.l5d.mesh": "the namerd mesh (gRPC) interpreter is not supported",
  },
  telemeter: {
    "io.l5d.statsd": "statsd is not supported; scrape /admin/metrics/prometheus",
    "io.l5d.influxdb": "InfluxDB is not supported; scrape /admin/metrics/prometheus",
    "io.l5d.tracelog": "the trace log telemeter is not supported",
    "io.l5d.commonMetrics": "metrics are always on; scrape /admin/metrics/prometheus",
  },
};

/** How messages name a category. */
const CATEGORY_NAMES: Readonly<Partial<Record<Category, string>>> = {
  acmeStorage: "ACME storage",
  dnsProvider: "DNS provider",
  loadBalancer: "load balancer",
  failureAccrual: "failure accrual policy",
  responseClassifier: "response classifier",
  certSource: "certificate source",
  serverLayer: "server layer",
  rateLimitStore: "rate limit store",
};

export function pluginSchema<C extends Category>(
  registry: Registry,
  category: C,
): Schema<PluginConfig<C>> {
  const what = CATEGORY_NAMES[category] ?? category;
  const expected = `${/^[aeiouAEIOU]/.test(what) ? "an" : "a"} ${what} (a mapping with a kind)`;
  const combined = new Map<string, ObjectSchema<Record<string, unknown>>>();
  // The category's common fields are not the plugin's (a telemeter's own `prefix` is).
  const common = new Set(Object.keys(commonFields(registry, category)));
  const schemaFor = (plugin: AnyPlugin) => {
    let s = combined.get(plugin.kind);
    if (!s) {
      s = object(
        { ...plugin.schema.fields, ...commonFields(registry, category) },
        { ignore: ["kind"] },
      );
      combined.set(plugin.kind, s);
    }
    return s;
  };
  return {
    expected,
    decode(v: unknown, path: string, cx: DecodeContext) {
      if (!isPlainObject(v)) return cx.report(path, `expected ${expected}, got ${show(v)}`);
      const kind = v.kind;
      if (typeof kind !== "string" || kind === "") {
        return cx.report(
          keyPath(path, "kind"),
          `missing (expected one of: ${registry.kinds(category).join(", ")})`,
        );
      }
      const plugin = registry.get(category, kind);
      if (!plugin) {
        const known = registry.kinds(category);
        const why = UNSUPPORTED_KINDS[category]?.[kind];
        return cx.report(
          keyPath(path, "kind"),
          why
            ? `${what} kind "${kind}" is not supported: ${why}`
            : `unknown ${what} kind "${kind}"${didYouMean(kind, known)}; known kinds: ${known.join(", ")}`,
        );
      }
      const decoded = schemaFor(plugin).decode(v, path, cx);
      if (decoded === INVALID) return INVALID;
      const { prefix, transformers, backoff } = decoded as Record<string, unknown>;
      const config = pickOwn(plugin, decoded as Record<string, unknown>, common);
      for (const problem of plugin.validate?.(config) ?? []) {
        if (typeof problem === "string") cx.report(path, problem);
        else cx.report(keyPath(path, problem.field), problem.message);
      }
      const defaultPrefix = () => readPath(plugin.defaultPrefix?.(config) ?? `/${kind}`);
      return {
        kind,
        plugin: plugin as Plugin<C>,
        config,
        prefix:
          category === "namer" || category === "transformer"
            ? ((prefix as Path | undefined) ?? defaultPrefix())
            : undefined,
        transformers: transformers as PluginConfig<"transformer">[] | undefined,
        backoff: backoff as PluginConfig<"backoff"> | undefined,
      };
    },
  };
}

/**
 * A field of a kind's config that is itself a kind of `category` (a rate limit's store):
 * decoded against the registry of the load (kinds' schemas are made before it exists).
 */
export function nestedPlugin<C extends Category>(category: C): Schema<PluginConfig<C>> {
  const schemas = new WeakMap<Registry, Schema<PluginConfig<C>>>();
  const what = CATEGORY_NAMES[category] ?? category;
  return {
    expected: `a ${what} (a mapping with a kind)`,
    decode(v, path, cx) {
      const registry = cx.registry;
      if (registry === undefined) throw new Error(`internal: no registry to decode ${path}`);
      let s = schemas.get(registry);
      if (s === undefined) {
        s = pluginSchema(registry, category);
        schemas.set(registry, s);
      }
      return s.decode(v, path, cx);
    },
  };
}

function pickOwn(
  plugin: AnyPlugin,
  decoded: Record<string, unknown>,
  common: ReadonlySet<string>,
): unknown {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(plugin.schema.fields)) if (!common.has(k)) out[k] = decoded[k];
  return out;
}

function commonFields(registry: Registry, category: Category): Record<string, Field<unknown>> {
  // Linkerd 1 let any kind say `experimental: true` (required for its experimental kinds);
  // lintel has no such gate and accepts the key so those configs load unchanged.
  const experimental = { experimental: opt(boolean()) };
  switch (category) {
    case "namer":
      return {
        ...experimental,
        prefix: opt(pathString()),
        transformers: opt(list(lazyTransformer(registry))),
      };
    case "transformer":
      return { ...experimental, prefix: opt(pathString()) };
    case "interpreter":
      return { ...experimental, transformers: opt(list(lazyTransformer(registry))) };
    case "failureAccrual":
      return { ...experimental, backoff: opt(pluginSchema(registry, "backoff")) };
    default:
      return experimental;
  }
}

function lazyTransformer(registry: Registry): Schema<PluginConfig<"transformer">> {
  let s: Schema<PluginConfig<"transformer">> | undefined;
  return {
    expected: "a transformer (a mapping with a kind)",
    decode: (v, path, cx) => {
      s ??= pluginSchema(registry, "transformer");
      return s.decode(v, path, cx);
    },
  };
}
