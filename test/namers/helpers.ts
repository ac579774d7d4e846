// Shared helpers for the namer, transformer and interpreter tests (not a test file itself:
// vitest only picks up *.test.ts). Trees and addresses are compared through plain strings,
// never through toEqual on the raw objects (Path caches its printed form).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DecodeContext, INVALID } from "../../gateway/config/schema.js";
import { silentLogger } from "../../gateway/log.js";
import { DnsResolver } from "../../gateway/namers/dns.js";
import type { DnsLookup } from "../../gateway/namers/dns-cache.js";
import type {
  Activity,
  Addr,
  BoundName,
  Name,
  NameTree,
  State,
  Var,
} from "../../gateway/naming/index.js";
import { showTree } from "../../gateway/naming/index.js";
import type { Category, Plugin } from "../../gateway/plugins/registry.js";

// ---- config decoding ----

/** Decodes a raw config block through the plugin's real schema (defaults applied). */
export function decode<C extends Category, Config>(
  plugin: Plugin<C, Config>,
  raw: unknown,
  baseDir: string = process.cwd(),
): Config {
  const cx = new DecodeContext(baseDir);
  const d = plugin.schema.decode(raw, "", cx);
  if (d === INVALID || cx.issues.length > 0) {
    throw new Error(`config does not decode: ${cx.issues.map((i) => i.message).join("; ")}`);
  }
  return d as Config;
}

/** The issues decoding `raw` reports, as `path: message` strings (empty when it decodes). */
export function decodeIssues<C extends Category, Config>(
  plugin: Plugin<C, Config>,
  raw: unknown,
  baseDir: string = process.cwd(),
): string[] {
  const cx = new DecodeContext(baseDir);
  const d = plugin.schema.decode(raw, "", cx);
  const issues = cx.issues.map((i) => `${i.path}: ${i.message}`);
  if (d === INVALID && issues.length === 0) return ["<invalid without an issue>"];
  return issues;
}

/** A validation problem as text, whether the plugin returns strings or `{field, message}`. */
export function problemText(p: unknown): string {
  if (typeof p === "string") return p;
  const o = p as { field?: string; message?: string };
  return `${o.field ?? ""} ${o.message ?? ""}`.trim();
}

// ---- fake DNS ----

/** An error as node:dns reports it, with its `code`. */
export function dnsError(code: string): NodeJS.ErrnoException {
  const e = new Error(`getaddrinfo ${code}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export interface FakeDns {
  /** Answers with TTL 0, so a resolver's minTtlMs decides how long answers are kept. */
  readonly lookup: DnsLookup;
  /** Every host looked up, in order. */
  readonly calls: string[];
  /** What a host answers from now on: IPs, or an error (thrown). Unknown hosts are ENOTFOUND. */
  set(host: string, answer: readonly string[] | Error): void;
  count(host: string): number;
}

export function fakeDns(initial: Record<string, readonly string[] | Error> = {}): FakeDns {
  const answers = new Map<string, readonly string[] | Error>(Object.entries(initial));
  const calls: string[] = [];
  return {
    calls,
    lookup: async (host) => {
      calls.push(host);
      const a = answers.get(host);
      if (a === undefined) throw dnsError("ENOTFOUND");
      if (a instanceof Error) throw a;
      return { ips: [...a], ttlSecs: 0 };
    },
    set: (host, answer) => {
      answers.set(host, answer);
    },
    count: (host) => calls.filter((h) => h === host).length,
  };
}

/**
 * A resolver on `lookup` that looks names in use up again every 20 ms, and keeps the last
 * answer for a minute when look-ups fail.
 */
export function fakeResolver(lookup: DnsLookup): DnsResolver {
  return new DnsResolver({
    log: silentLogger,
    lookup,
    minTtlMs: 20,
    maxTtlMs: 20,
    negativeTtlMs: 20,
    staleIfErrorMs: 60_000,
    minRefreshMs: 20,
  });
}

// ---- waiting ----

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true; fails with `what` after `timeoutMs`. */
export async function waitUntil(
  probe: () => boolean,
  what: string | (() => string),
  timeoutMs = 4000,
  stepMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (probe()) return;
    if (Date.now() > deadline) {
      const text = typeof what === "string" ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${text}`);
    }
    await sleep(stepMs);
  }
}

/** Observes a Var, recording every value it reports; `stop` ends the observation. */
export interface Live<T> {
  readonly values: T[];
  current(): T;
  stop(): void;
}

export function live<T>(v: Var<T>): Live<T> {
  const values: T[] = [];
  const stop = v.observe((x) => values.push(x));
  return { values, current: () => v.sample(), stop };
}

/** Keeps every observation started through it, so an afterEach can stop them all. */
export class Observations {
  private readonly stops: Array<() => void> = [];
  live<T>(v: Var<T>): Live<T> {
    const l = live(v);
    this.stops.push(l.stop);
    return l;
  }
  add(stop: () => void): void {
    this.stops.push(stop);
  }
  stopAll(): void {
    for (const s of this.stops.splice(0).reverse()) s();
  }
}

// ---- temp directories ----

export class TempDirs {
  private readonly dirs: string[] = [];
  make(prefix = "lintel-test-"): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(d);
    return d;
  }
  cleanup(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

// ---- shapes ----

/** A bound name as `id` or `id residual=/r`. */
export const showBound = (b: BoundName): string =>
  b.residual.isEmpty ? b.id.show : `${b.id.show} residual=${b.residual.show}`;

/** A name (bound or path) as text: bound names via showBound, paths as `path:/x`. */
export const showName = (n: Name): string =>
  n.kind === "bound" ? showBound(n) : `path:${n.path.show}`;

/** A tree in dtab syntax with leaves through showName. */
export const treeText = (t: NameTree<Name>): string => showTree(t, showName);

/** A state as text: `pending`, `failed: msg`, or the tree. */
export function stateText(s: State<NameTree<Name>>): string {
  if (s.status === "pending") return "pending";
  if (s.status === "failed") return `failed: ${s.error.message}`;
  return treeText(s.value);
}

/** Addresses as sorted `host:port*weight` strings, or the Addr kind (`failed: msg`). */
export function addrText(a: Addr): string {
  switch (a.kind) {
    case "bound":
      return a.addresses
        .map((x) => `${x.host.includes(":") ? `[${x.host}]` : x.host}:${x.port}*${x.weight}`)
        .sort()
        .join(",");
    case "failed":
      return `failed: ${a.error.message}`;
    default:
      return a.kind;
  }
}

/** The only leaf of an ok state (fails the caller's expectation otherwise). */
export function onlyLeaf<N extends Name>(s: State<NameTree<N>>): N {
  if (s.status !== "ok" || s.value.kind !== "leaf") {
    throw new Error(`expected a single leaf, got ${stateText(s as State<NameTree<Name>>)}`);
  }
  return s.value.value;
}

/** The only leaf of an ok state, which must be a bound name. */
export function onlyBound(s: State<NameTree<Name>>): BoundName {
  const n = onlyLeaf(s);
  if (n.kind !== "bound") throw new Error(`expected a bound name, got ${showName(n)}`);
  return n;
}

/** Waits until an observed activity's state text equals `want`. */
export async function waitForState(
  a: Activity<NameTree<Name>> | Activity<NameTree<BoundName>>,
  want: string,
  timeoutMs = 4000,
): Promise<void> {
  const v = a as Activity<NameTree<Name>>;
  await waitUntil(
    () => stateText(v.sample()) === want,
    () => `state ${want} (now ${stateText(v.sample())})`,
    timeoutMs,
  );
}
