// A small, strict schema language for config: each schema decodes a plain value into a
// typed one or reports what it expected, at the config path where it was found. Unknown
// keys are errors (with a did-you-mean). Plugins describe their own fields with it.

import { isIP } from "node:net";
import { resolve as resolvePath } from "node:path";
import { parseCidr } from "../http/cidr.js";
import { type Dtab, NameParseError, type Path, readDtab, readPath } from "../naming/index.js";
import type { Registry } from "../plugins/registry.js";
import { didYouMean } from "./suggest.js";

export const INVALID: unique symbol = Symbol("invalid");
export type Decoded<T> = T | typeof INVALID;

export interface DecodeIssue {
  readonly path: string;
  readonly message: string;
  /** Point at the key rather than the value (unknown keys). */
  readonly atKey?: boolean;
  /** Lines into a multi-line value (a dtab) where the problem is. */
  readonly lineInValue?: number;
}

export class DecodeContext {
  readonly issues: DecodeIssue[] = [];
  constructor(
    /** Relative file paths in the config resolve against this directory. */
    readonly baseDir: string,
    /** The kinds known to this load, for a kind's fields that are kinds themselves. */
    readonly registry?: Registry,
  ) {}

  report(path: string, message: string, extra: Partial<DecodeIssue> = {}): typeof INVALID {
    this.issues.push({ path, message, ...extra });
    return INVALID;
  }
}

export interface Schema<T> {
  /** What a valid value looks like, for messages: "a port number". */
  readonly expected: string;
  decode(value: unknown, path: string, cx: DecodeContext): Decoded<T>;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

export const keyPath = (path: string, key: string) => (path === "" ? key : `${path}.${key}`);
export const indexPath = (path: string, i: number) => `${path}[${i}]`;

/** Renders a value the way the user wrote it, for "got ..." in messages. */
export function show(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

function mismatch(
  cx: DecodeContext,
  path: string,
  expected: string,
  value: unknown,
): typeof INVALID {
  return cx.report(path, `expected ${expected}, got ${show(value)}`);
}

export function string(expected = "a string"): Schema<string> {
  return {
    expected,
    decode: (v, path, cx) => (typeof v === "string" ? v : mismatch(cx, path, expected, v)),
  };
}

export function nonEmptyString(expected = "a non-empty string"): Schema<string> {
  return {
    expected,
    decode: (v, path, cx) =>
      typeof v === "string" && v.trim() !== "" ? v : mismatch(cx, path, expected, v),
  };
}

export function boolean(): Schema<boolean> {
  const expected = "true or false";
  return {
    expected,
    decode: (v, path, cx) => (typeof v === "boolean" ? v : mismatch(cx, path, expected, v)),
  };
}

/** Numbers may also be written as numeric strings (handy with `${VAR}` substitution). */
function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

export function integer(
  opts: { min?: number; max?: number; expected?: string } = {},
): Schema<number> {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = opts;
  const expected =
    opts.expected ??
    (opts.min !== undefined && opts.max !== undefined
      ? `an integer from ${min} to ${max}`
      : opts.min !== undefined
        ? `an integer of at least ${min}`
        : "an integer");
  return {
    expected,
    decode: (v, path, cx) => {
      const n = toNumber(v);
      if (n === undefined || !Number.isInteger(n) || n < min || n > max) {
        return mismatch(cx, path, expected, v);
      }
      return n;
    },
  };
}

export function number(
  opts: { min?: number; max?: number; expected?: string } = {},
): Schema<number> {
  const { min = -Infinity, max = Infinity } = opts;
  const expected = opts.expected ?? "a number";
  return {
    expected,
    decode: (v, path, cx) => {
      const n = toNumber(v);
      if (n === undefined || !Number.isFinite(n) || n < min || n > max) {
        return mismatch(cx, path, expected, v);
      }
      return n;
    },
  };
}

export const port = () => integer({ min: 0, max: 65535, expected: "a port number" });

export function oneOf<const T extends string>(values: readonly T[]): Schema<T> {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
  return {
    expected,
    decode: (v, path, cx) => {
      if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
      const hint = typeof v === "string" ? didYouMean(v, values) : "";
      return cx.report(path, `expected ${expected}, got ${show(v)}${hint}`);
    },
  };
}

/** An IP address literal, or a host name. */
export function host(): Schema<string> {
  const expected = "an IP address or host name";
  return {
    expected,
    decode: (v, path, cx) =>
      typeof v === "string" &&
      (isIP(v) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v))
        ? v
        : mismatch(cx, path, expected, v),
  };
}

export function list<T>(
  item: Schema<T>,
  opts: { minItems?: number; expected?: string } = {},
): Schema<T[]> {
  const expected = opts.expected ?? `a list of ${item.expected}`;
  return {
    expected,
    decode: (v, path, cx) => {
      if (!Array.isArray(v)) return mismatch(cx, path, expected, v);
      if (opts.minItems !== undefined && v.length < opts.minItems) {
        return cx.report(path, `expected at least ${opts.minItems} item(s)`);
      }
      const out: T[] = [];
      let bad = false;
      v.forEach((x, i) => {
        const d = item.decode(x, indexPath(path, i), cx);
        if (d === INVALID) bad = true;
        else out.push(d);
      });
      return bad ? INVALID : out;
    },
  };
}

/** One item or a list of them (Linkerd's `identifier`). Always decodes to a list. */
export function oneOrList<T>(item: Schema<T>): Schema<T[]> {
  const many = list(item, { minItems: 1 });
  return {
    expected: `${item.expected} or a list of them`,
    decode: (v, path, cx) => {
      if (Array.isArray(v)) return many.decode(v, path, cx);
      const d = item.decode(v, path, cx);
      return d === INVALID ? INVALID : [d];
    },
  };
}

/** A mapping from free-form keys to values of one schema. */
export function record<T>(value: Schema<T>): Schema<Record<string, T>> {
  const expected = `a mapping of ${value.expected}`;
  return {
    expected,
    decode: (v, path, cx) => {
      if (!isPlainObject(v)) return mismatch(cx, path, expected, v);
      const out: Record<string, T> = {};
      let bad = false;
      for (const [k, x] of Object.entries(v)) {
        const d = value.decode(x, keyPath(path, k), cx);
        if (d === INVALID) bad = true;
        else out[k] = d;
      }
      return bad ? INVALID : out;
    },
  };
}

export function pathString(): Schema<Path> {
  const expected = "a path such as /svc";
  return {
    expected,
    decode: (v, path, cx) => {
      if (typeof v !== "string") return mismatch(cx, path, expected, v);
      try {
        return readPath(v.trim());
      } catch (e) {
        const reason =
          e instanceof NameParseError ? `${e.reason} at offset ${e.offset}` : String(e);
        return cx.report(path, `expected ${expected}, got ${show(v)}: ${reason}`);
      }
    },
  };
}

export interface DtabValue {
  readonly text: string;
  readonly dtab: Dtab;
}

export function dtabString(): Schema<DtabValue> {
  const expected = "a dtab";
  return {
    expected,
    decode: (v, path, cx) => {
      if (typeof v !== "string") return mismatch(cx, path, expected, v);
      try {
        return { text: v, dtab: readDtab(v) };
      } catch (e) {
        if (!(e instanceof NameParseError)) throw e;
        const { line, column } = e.position;
        return cx.report(
          path,
          `invalid dtab: ${e.reason} at column ${column}\n${indent(e.caret)}`,
          {
            lineInValue: line - 1,
          },
        );
      }
    },
  };
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}

/** A file or directory path; relative paths resolve against the config's directory. */
export function filePath(expected = "a file path"): Schema<string> {
  return {
    expected,
    decode: (v, path, cx) =>
      typeof v === "string" && v.trim() !== ""
        ? resolvePath(cx.baseDir, v)
        : mismatch(cx, path, expected, v),
  };
}

/** Adds a check after decoding: `check` returns an error message or undefined. */
export function refine<T, S extends Schema<T>>(
  schema: S & Schema<T>,
  check: (value: T) => string | undefined,
): S {
  return {
    ...schema,
    decode: (v: unknown, path: string, cx: DecodeContext) => {
      const d = schema.decode(v, path, cx);
      if (d === INVALID) return d;
      const problem = check(d);
      return problem === undefined ? d : cx.report(path, problem);
    },
  };
}

/** Maps a decoded value to another type. */
export function transform<A, B>(schema: Schema<A>, f: (a: A) => B): Schema<B> {
  return {
    expected: schema.expected,
    decode: (v, path, cx) => {
      const d = schema.decode(v, path, cx);
      return d === INVALID ? INVALID : f(d as A);
    },
  };
}

// ---- objects ----

interface FieldSpec<T> {
  readonly schema: Schema<T>;
  readonly presence: "required" | "optional" | "default";
  readonly fallback?: unknown;
}

export type Field<T> = FieldSpec<T>;

export const req = <T>(schema: Schema<T>): Field<T> => ({ schema, presence: "required" });
export const opt = <T>(schema: Schema<T>): Field<T | undefined> => ({
  schema: schema as Schema<T | undefined>,
  presence: "optional",
});
/** A field with a default, written as the user would write it (decoded like a user value). */
export const def = <T>(schema: Schema<T>, fallback: unknown): Field<T> => ({
  schema,
  presence: "default",
  fallback,
});

type Fields = Record<string, Field<unknown>>;
export type ObjectOf<F extends Fields> = {
  -readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never;
};

export interface ObjectSchema<T> extends Schema<T> {
  readonly fields: Fields;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface ObjectOptions {
  expected?: string;
  /** Keys accepted and ignored (e.g. `kind`, read by the plugin lookup). */
  ignore?: readonly string[];
  /** Keys that Linkerd has but lintel does not: named as unsupported, not as unknown. */
  unsupported?: Readonly<Record<string, string>>;
}

export function object<F extends Fields>(
  fields: F,
  opts: ObjectOptions = {},
): ObjectSchema<ObjectOf<F>> {
  const expected = opts.expected ?? "a mapping";
  const ignore = new Set(opts.ignore ?? []);
  const known = [...Object.keys(fields), ...ignore];
  return {
    expected,
    fields,
    decode: (v, path, cx) => {
      if (v === null || v === undefined) v = {};
      if (!isPlainObject(v)) return mismatch(cx, path, expected, v);
      let bad = false;
      for (const k of Object.keys(v)) {
        if (k in fields || ignore.has(k)) continue;
        bad = true;
        const why = opts.unsupported?.[k];
        if (why !== undefined)
          cx.report(keyPath(path, k), `not supported by lintel: ${why}`, { atKey: true });
        else cx.report(keyPath(path, k), `unknown key${didYouMean(k, known)}`, { atKey: true });
      }
      const out: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(fields)) {
        const p = keyPath(path, k);
        const raw = v[k];
        if (raw === undefined || raw === null) {
          if (f.presence === "required") {
            bad = true;
            cx.report(p, `missing (expected ${f.schema.expected})`);
          } else if (f.presence === "default") {
            out[k] = decodeDefault(f, p, cx);
          } else {
            out[k] = undefined;
          }
          continue;
        }
        const d = f.schema.decode(raw, p, cx);
        if (d === INVALID) bad = true;
        else out[k] = d;
      }
      return bad ? INVALID : (out as ObjectOf<F>);
    },
  };
}

function decodeDefault(f: Field<unknown>, path: string, cx: DecodeContext): unknown {
  const probe = new DecodeContext(cx.baseDir, cx.registry);
  const d = f.schema.decode(f.fallback, path, probe);
  if (d === INVALID) {
    throw new Error(
      `internal: the default of ${path} does not decode: ${probe.issues[0]?.message}`,
    );
  }
  return d;
}

/** An IP address or CIDR range, e.g. 10.0.0.0/8. */
export function cidr(): Schema<string> {
  const expected = "an IP address or CIDR range such as 10.0.0.0/8";
  return {
    expected,
    decode(v, path, cx) {
      if (typeof v !== "string") return cx.report(path, `expected ${expected}, got ${show(v)}`);
      try {
        parseCidr(v.trim());
        return v.trim();
      } catch (e) {
        return cx.report(path, `expected ${expected}: ${(e as Error).message}`);
      }
    },
  };
}
