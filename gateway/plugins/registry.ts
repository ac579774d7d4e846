// The plugin registry: every configurable kind (identifier, namer, transformer,
// interpreter, …) is one module exporting `{ category, kind, schema, create }`.
// Built-ins register through ./builtins.ts; users load their own modules the same way.

import type { ObjectSchema } from "../config/schema.js";
import type { PluginContexts, PluginInstances } from "./types.js";

export const CATEGORIES = [
  "identifier",
  "namer",
  "transformer",
  "interpreter",
  "acmeStorage",
  "dnsProvider",
  "loadBalancer",
  "failureAccrual",
  "backoff",
  "responseClassifier",
  "telemeter",
  "certSource",
  "serverLayer",
  "rateLimitStore",
] as const;
export type Category = (typeof CATEGORIES)[number];

/** A problem with the whole block, or with one of its fields. */
export type ValidationProblem = string | { readonly field: string; readonly message: string };

export interface Plugin<C extends Category = Category, Config = unknown> {
  readonly category: C;
  /** The `kind` users write in the config, e.g. `io.l5d.header.token`. */
  readonly kind: string;
  /** The plugin's own fields (`kind` and the category's common fields are added for it). */
  readonly schema: ObjectSchema<Config>;
  /** Checks beyond the schema (files exist, fields agree); returns the problems found. */
  validate?(config: Config): ValidationProblem[];
  create(config: Config, ctx: PluginContexts[C]): PluginInstances[C];
  /** Namers and transformers: the prefix used when the config gives none (default `/<kind>`). */
  defaultPrefix?(config: Config): string;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds plugins of every config type
export type AnyPlugin = Plugin<Category, any>;

/** Helps TypeScript infer a plugin's config type from its schema. */
export function definePlugin<C extends Category, Config>(p: Plugin<C, Config>): Plugin<C, Config> {
  return p;
}

export class Registry {
  private readonly byCategory = new Map<Category, Map<string, AnyPlugin>>();

  register(plugin: AnyPlugin): void {
    if (!CATEGORIES.includes(plugin.category)) {
      throw new Error(
        `plugin ${plugin.kind}: unknown category "${plugin.category}" (one of ${CATEGORIES.join(", ")})`,
      );
    }
    let m = this.byCategory.get(plugin.category);
    if (!m) {
      m = new Map();
      this.byCategory.set(plugin.category, m);
    }
    if (m.has(plugin.kind)) {
      throw new Error(`a ${plugin.category} of kind "${plugin.kind}" is already registered`);
    }
    m.set(plugin.kind, plugin);
  }

  get<C extends Category>(category: C, kind: string): Plugin<C> | undefined {
    return this.byCategory.get(category)?.get(kind) as Plugin<C> | undefined;
  }

  kinds(category: Category): string[] {
    return [...(this.byCategory.get(category)?.keys() ?? [])].sort();
  }
}
