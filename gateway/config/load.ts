// Loads and checks a config: read the file (env substituted), load plugin modules,
// decode every block, then cross-checks. Errors name the config path and line. This
// module knows the schema language, not the kinds: the registry, the plugin loader and
// the checks of engines and clients come from the composition root (gateway/setup.ts).

import { dirname, resolve } from "node:path";
import type { Registry } from "../plugins/registry.js";
import { configSchema, type LintelConfig } from "./config-schema.js";
import { DecodeContext, type DecodeIssue, INVALID } from "./schema.js";
import { type ConfigSource, parseConfigText, readConfigSource } from "./source.js";

export interface ConfigError {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
}

export type LoadResult =
  | {
      readonly ok: true;
      readonly config: LintelConfig;
      readonly registry: Registry;
      readonly file: string;
      /** The file's text as it was read (workers load the same text). */
      readonly text: string;
    }
  | { readonly ok: false; readonly errors: readonly ConfigError[]; readonly file: string };

export function formatConfigError(e: ConfigError): string {
  const where = e.line !== undefined ? ` (line ${e.line})` : "";
  const [first, ...rest] = e.message.split("\n");
  const head = e.path === "" ? `${first}${where}` : `${e.path}: ${first}${where}`;
  return [head, ...rest].join("\n");
}

function lineOf(source: ConfigSource, issue: DecodeIssue): number | undefined {
  let path = issue.path;
  for (;;) {
    const pos = source.positions.get(path);
    if (pos) {
      if (path !== issue.path) return pos.line;
      if (issue.atKey) return pos.keyLine;
      if (issue.lineInValue !== undefined)
        return pos.line + issue.lineInValue + (pos.block ? 1 : 0);
      return pos.line;
    }
    if (path === "") return undefined;
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    path = cut < 0 ? "" : path.slice(0, cut);
  }
}

/** A check of a decoded config beyond its schema (files load, an engine can do it). */
export type ConfigCheck = (config: LintelConfig, cx: DecodeContext) => void;

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** The config's text, instead of reading `file` (which still anchors relative paths). */
  readonly text?: string;
  /** The kinds; plugin modules named in the config add theirs to it. */
  readonly registry: Registry;
  /** Imports a plugin module (an absolute path) into the registry. */
  readonly loadPlugin: (file: string, registry: Registry) => Promise<unknown>;
  /** Run on a config that decoded, in order. */
  readonly checks?: readonly ConfigCheck[];
}

export async function loadConfig(file: string, opts: LoadOptions): Promise<LoadResult> {
  const abs = resolve(file);
  const env = opts.env ?? process.env;
  const source =
    opts.text === undefined ? readConfigSource(abs, env) : parseConfigText(opts.text, abs, env);
  const fail = (errors: ConfigError[]): LoadResult => ({
    ok: false,
    file: abs,
    errors: [...errors].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)),
  });
  if (source.issues.length > 0) return fail([...source.issues]);

  const registry = opts.registry;
  const cx = new DecodeContext(dirname(abs), registry);
  const raw = source.value as Record<string, unknown> | undefined;
  const pluginErrors: ConfigError[] = [];
  if (raw && typeof raw === "object" && Array.isArray(raw.plugins)) {
    for (const [i, p] of raw.plugins.entries()) {
      if (typeof p !== "string") continue; // reported by the schema
      try {
        await opts.loadPlugin(resolve(cx.baseDir, p), registry);
      } catch (e) {
        const path = `plugins[${i}]`;
        pluginErrors.push({
          path,
          message: `cannot load plugin ${p}: ${(e as Error).message}`,
          line: lineOf(source, { path, message: "" }),
        });
      }
    }
  }
  if (pluginErrors.length > 0) return fail(pluginErrors);

  const decoded = configSchema(registry).decode(source.value, "", cx);
  if (decoded !== INVALID) {
    crossCheck(decoded, cx);
    for (const check of opts.checks ?? []) check(decoded, cx);
  }
  if (decoded === INVALID || cx.issues.length > 0) {
    return fail(
      cx.issues.map((i) => ({ path: i.path, message: i.message, line: lineOf(source, i) })),
    );
  }
  return { ok: true, config: decoded, registry, file: abs, text: source.raw };
}

/** Checks across blocks: router labels are unique, no two listeners share ip:port. */
function crossCheck(config: LintelConfig, cx: DecodeContext): void {
  const labels = new Map<string, number>();
  const binds = new Map<string, string>();
  const bind = (ip: string, port: number, where: string) => {
    if (port === 0) return; // an ephemeral port never collides
    const key = `${ip}:${port}`;
    const wildcard = ip === "0.0.0.0" || ip === "::";
    for (const [other, at] of binds) {
      const [oip, oport] = [
        other.slice(0, other.lastIndexOf(":")),
        other.slice(other.lastIndexOf(":") + 1),
      ];
      if (oport !== String(port)) continue;
      if (other === key || wildcard || oip === "0.0.0.0" || oip === "::") {
        cx.report(where, `listens on ${key}, which ${at} already uses`);
        return;
      }
    }
    binds.set(key, where);
  };
  bind(config.admin.ip, config.admin.port, "admin");
  config.routers.forEach((r, i) => {
    const label = r.label ?? r.protocol;
    const seen = labels.get(label);
    if (seen !== undefined) {
      cx.report(
        `routers[${i}].label`,
        `label "${label}" is already used by routers[${seen}]; give each router its own label`,
      );
    } else {
      labels.set(label, i);
    }
    r.servers.forEach((s, j) => {
      bind(s.ip, s.port, `routers[${i}].servers[${j}]`);
    });
  });
}
