// Loads user plugin modules named in the config's `plugins:` list. A module's default
// export is a plugin, a list of plugins, or a function given lintel's plugin API that
// returns either (so a plugin file needs no import path to lintel).

import { pathToFileURL } from "node:url";
import * as api from "./api.js";
import { type AnyPlugin, CATEGORIES, type Registry } from "./registry.js";

function checkShape(p: unknown, file: string): AnyPlugin {
  const o = p as Partial<AnyPlugin> | null;
  const problems: string[] = [];
  if (typeof o !== "object" || o === null) throw new Error(`${file}: a plugin must be an object`);
  if (!CATEGORIES.includes(o.category as never))
    problems.push(`category must be one of ${CATEGORIES.join(", ")}`);
  if (typeof o.kind !== "string" || o.kind === "") problems.push("kind must be a non-empty string");
  if (typeof o.schema?.decode !== "function" || typeof o.schema?.fields !== "object") {
    problems.push("schema must be an object schema (api.schema.object({...}))");
  }
  if (typeof o.create !== "function") problems.push("create must be a function");
  if (problems.length > 0)
    throw new Error(`${file}: plugin ${o.kind ?? "(no kind)"}: ${problems.join("; ")}`);
  return o as AnyPlugin;
}

/** Imports `file` and registers what it exports. Returns the kinds it added. */
export async function loadPluginModule(file: string, registry: Registry): Promise<string[]> {
  const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  let exported = mod.default;
  if (typeof exported === "function") exported = (exported as (a: typeof api) => unknown)(api);
  if (exported === undefined)
    throw new Error(`${file}: no default export (export a plugin or a list of plugins)`);
  const plugins = (Array.isArray(exported) ? exported : [exported]).map((p) => checkShape(p, file));
  for (const p of plugins) registry.register(p);
  return plugins.map((p) => `${p.category} ${p.kind}`);
}
