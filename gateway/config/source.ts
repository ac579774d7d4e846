// Reads a config file (YAML or JSON) into plain values plus a map from each value's
// config path (e.g. `routers[0].servers[0].port`) to its line, so every error can say
// where it is. `${VAR}` and `${VAR:-default}` are replaced from the environment first.

import { readFileSync } from "node:fs";
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  parse as parseYaml,
} from "yaml";

export interface Position {
  /** 1-based line of the value. */
  readonly line: number;
  /** 1-based line of the key that holds the value (same as `line` for list items). */
  readonly keyLine: number;
  /** For block scalars (`|`, `>`): the value's text starts on the next line. */
  readonly block: boolean;
}

export interface SourceIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
}

export interface ConfigSource {
  readonly file: string;
  /** The file's text as read (before `${VAR}` substitution). */
  readonly raw: string;
  readonly value: unknown;
  readonly positions: ReadonlyMap<string, Position>;
  readonly issues: readonly SourceIssue[];
}

const ENV_REF = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Substitutes `${VAR}` / `${VAR:-default}`; `$${VAR}` stays as the literal `${VAR}`. */
export function substituteEnv(
  text: string,
  env: NodeJS.ProcessEnv,
): { text: string; issues: SourceIssue[] } {
  const issues: SourceIssue[] = [];
  const lines = text.split("\n");
  const out = lines.map((line, i) => {
    const commentOnly = /^\s*#/.test(line);
    return line.replace(ENV_REF, (whole, escaped: string, name: string, fallback?: string) => {
      if (escaped) return whole.slice(1);
      const v = env[name];
      // As in the shell: `:-` takes the default when the variable is unset or empty.
      if (fallback !== undefined) return v === undefined || v === "" ? fallback : v;
      if (v !== undefined) return v;
      if (!commentOnly) {
        issues.push({
          path: "",
          message: `environment variable ${name} is not set (use \${${name}:-default} for a default)`,
          line: i + 1,
        });
      }
      return whole;
    });
  });
  return { text: out.join("\n"), issues };
}

export function readConfigSource(file: string, env: NodeJS.ProcessEnv = process.env): ConfigSource {
  let raw: string;
  try {
    raw = readFileSync(file, "utf8");
  } catch (e) {
    const msg =
      (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message;
    return {
      file,
      raw: "",
      value: undefined,
      positions: new Map(),
      issues: [{ path: "", message: `cannot read ${file}: ${msg}` }],
    };
  }
  return parseConfigText(raw, file, env);
}

export function parseConfigText(
  raw: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): ConfigSource {
  const { text, issues } = substituteEnv(raw, env);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const line = (offset: number) => lineCounter.linePos(offset).line;
  for (const e of doc.errors) {
    issues.push({
      path: "",
      message: `not valid YAML: ${e.message.split("\n")[0]}`,
      line: line(e.pos[0]),
    });
  }
  if (doc.errors.length > 0) return { file, raw, value: undefined, positions: new Map(), issues };

  const positions = new Map<string, Position>();
  const walk = (node: Node | null | undefined, path: string, keyLine: number) => {
    if (!node || isAlias(node)) return;
    const start = node.range?.[0] ?? 0;
    const block = isScalar(node) && (node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED");
    positions.set(path, { line: line(start), keyLine, block });
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const kl = isScalar(pair.key) && pair.key.range ? line(pair.key.range[0]) : line(start);
        const childPath = path === "" ? key : `${path}.${key}`;
        if (pair.value) walk(pair.value as Node, childPath, kl);
        else positions.set(childPath, { line: kl, keyLine: kl, block: false });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const il = (item as Node | null)?.range ? line((item as Node).range![0]) : line(start);
        walk(item as Node, `${path}[${i}]`, il);
      });
    }
  };
  walk(doc.contents as Node | null, "", 1);
  return { file, raw, value: doc.toJS({ maxAliasCount: 100 }), positions, issues };
}

/** Keys whose values are secrets when written inline (the admin token): never displayed. */
const SECRET_KEYS: ReadonlySet<string> = new Set(["token"]);
const REDACTED = "(redacted)";

/**
 * The config as written, for display (/config.json): `${VAR}` references stay as they
 * are, so secrets passed through the environment are not shown, and a secret written
 * inline (SECRET_KEYS) is redacted. References are swapped for placeholders while
 * parsing, so they may sit anywhere a value can (flow mappings too).
 */
export function readConfigAsWritten(file: string): unknown {
  const refs: string[] = [];
  const text = readFileSync(file, "utf8").replace(ENV_REF, (whole: string) => {
    refs.push(whole);
    return `__lintel_env_${refs.length - 1}__`;
  });
  const restore = (v: unknown): unknown => {
    if (typeof v === "string")
      return v.replace(/__lintel_env_(\d+)__/g, (_m, i: string) => refs[Number(i)]!);
    if (Array.isArray(v)) return v.map(restore);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v).map(([k, x]) => {
          const key = restore(k) as string;
          const value = restore(x);
          const inline = typeof value === "string" && !/^\$\{[^}]+\}$/.test(value);
          return [key, SECRET_KEYS.has(key) && inline ? REDACTED : value];
        }),
      );
    }
    return v;
  };
  return restore(parseYaml(text, { maxAliasCount: 100 }));
}
