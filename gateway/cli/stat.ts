// `lintel stat`: per service (and per client with --clients) of a running lintel, the
// success rate, requests per second and p50/p95/p99 latency over an interval, as
// `linkerd stat` shows them. Read from two /admin/requestStats.json pages --interval
// seconds apart: rates from the counters' differences, percentiles from the latency
// histograms' bucket differences (not the lifetime percentiles of metrics.json).

import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { REQUEST_STATS_PATH } from "../admin/paths.js";
import type { RequestStatsPage, RequestStatsRow } from "../admin/request-stats-page.js";
import { type HistogramSnapshot, percentile } from "../telemetry/index.js";
import { ADMIN_OPTION, adminRequest, DEFAULT_ADMIN, interruptSignal } from "./admin-request.js";

/** The interval when none is given, in seconds. */
const DEFAULT_INTERVAL_S = 2;

/** A service's or client's figures over one interval; null where there was no traffic. */
export interface StatRow {
  readonly router: string;
  readonly kind: "service" | "client";
  /** The name as routers show it: `/svc/users`, `/$/inet/127.0.0.1/8080`. */
  readonly name: string;
  /** Requests finished in the interval. */
  readonly requests: number;
  /** Successes over successes and failures, as a fraction; null with no request. */
  readonly successRate: number | null;
  readonly rps: number;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
}

/** The buckets `after` has over `before` (a histogram's growth in the interval). */
function bucketDelta(after: HistogramSnapshot, before: HistogramSnapshot | undefined) {
  const earlier = new Map<number, number>();
  if (before)
    for (let i = 0; i < before.buckets.length; i += 2)
      earlier.set(before.buckets[i]!, before.buckets[i + 1]!);
  const buckets: number[] = [];
  let count = 0;
  for (let i = 0; i < after.buckets.length; i += 2) {
    const b = after.buckets[i]!;
    const n = after.buckets[i + 1]! - (earlier.get(b) ?? 0);
    if (n > 0) {
      buckets.push(b, n);
      count += n;
    }
  }
  // The interval's extremes are unknown: percentiles come from the buckets alone.
  return { count, sum: 0, min: 0, max: Number.POSITIVE_INFINITY, buckets };
}

const rowKey = (r: RequestStatsRow) => `${r.router} ${r.kind} ${r.id}`;

/** Milliseconds to the microsecond. */
const micros = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * Each service (and client, with `clients`) of `after`, with what changed since `before`,
 * `seconds` earlier; sorted by router, then name.
 */
export function statRows(
  before: RequestStatsPage,
  after: RequestStatsPage,
  seconds: number,
  opts: { readonly router?: string; readonly clients: boolean },
): StatRow[] {
  const earlier = new Map(before.stats.map((r) => [rowKey(r), r] as const));
  const rows: StatRow[] = [];
  for (const a of after.stats) {
    if (a.kind === "server" || (a.kind === "client" && !opts.clients)) continue;
    if (opts.router !== undefined && a.router !== opts.router) continue;
    const b = earlier.get(rowKey(a));
    const requests = a.requests - (b?.requests ?? 0);
    const success = a.success - (b?.success ?? 0);
    const failures = a.failures - (b?.failures ?? 0);
    const latency = bucketDelta(a.latency, b?.latency);
    const q = (p: number) => (latency.count === 0 ? null : micros(percentile(latency, p)));
    rows.push({
      router: a.router,
      kind: a.kind,
      name: `/${a.id}`,
      requests,
      successRate: success + failures === 0 ? null : success / (success + failures),
      rps: Math.round((requests / seconds) * 10) / 10,
      p50Ms: q(0.5),
      p95Ms: q(0.95),
      p99Ms: q(0.99),
    });
  }
  rows.sort((x, y) =>
    x.router !== y.router
      ? x.router < y.router
        ? -1
        : 1
      : x.kind !== y.kind
        ? x.kind === "service"
          ? -1
          : 1
        : x.name < y.name
          ? -1
          : x.name > y.name
            ? 1
            : 0,
  );
  return rows;
}

const latencyText = (ms: number | null) =>
  ms === null ? "-" : `${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : Math.round(ms)}ms`;

/** The rows as tables, services first, in aligned columns ("-" where there was no traffic). */
export function formatStat(rows: readonly StatRow[]): string {
  const tables: string[] = [];
  for (const kind of ["service", "client"] as const) {
    const mine = rows.filter((r) => r.kind === kind);
    if (mine.length === 0 && (kind === "client" || rows.length > 0)) continue;
    const cells = [
      ["ROUTER", kind.toUpperCase(), "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"],
      ...mine.map((r) => [
        r.router,
        r.name,
        r.successRate === null ? "-" : `${(r.successRate * 100).toFixed(2)}%`,
        r.requests === 0 ? "-" : r.rps.toFixed(1),
        latencyText(r.p50Ms),
        latencyText(r.p95Ms),
        latencyText(r.p99Ms),
      ]),
    ];
    const widths = cells[0]!.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
    tables.push(
      cells
        .map((c) =>
          c
            .map((v, i) => v.padEnd(widths[i]!))
            .join("  ")
            .trimEnd(),
        )
        .join("\n"),
    );
  }
  return tables.join("\n\n");
}

async function page(admin: string, signal: AbortSignal): Promise<RequestStatsPage> {
  const r = await adminRequest(admin, "GET", REQUEST_STATS_PATH, { timeoutMs: 5000, signal });
  if (r.status !== 200) {
    throw new Error(
      `the admin server at ${admin} answered ${REQUEST_STATS_PATH} with HTTP ${r.status}: ${r.body.trim()}`,
    );
  }
  return JSON.parse(r.body) as RequestStatsPage;
}

export interface StatOptions {
  readonly admin: string;
  readonly router?: string;
  readonly intervalS: number;
  readonly json: boolean;
  readonly watch: boolean;
  readonly clients: boolean;
}

/** Parses stat's arguments; a message for the user when they are wrong. */
export function parseStat(args: string[]): StatOptions | string {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(args).values;
  } catch (e) {
    return (e as Error).message;
  }
  const intervalS = values.interval === undefined ? DEFAULT_INTERVAL_S : Number(values.interval);
  if (!(intervalS > 0)) return `--interval must be a number of seconds, got "${values.interval}"`;
  return {
    admin: values.admin ?? DEFAULT_ADMIN,
    router: values.router,
    intervalS,
    json: values.json ?? false,
    watch: values.watch ?? false,
    clients: values.clients ?? false,
  };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      ...ADMIN_OPTION,
      router: { type: "string", short: "r" },
      interval: { type: "string", short: "i" },
      json: { type: "boolean" },
      watch: { type: "boolean", short: "w" },
      clients: { type: "boolean" },
    },
  });
}

/**
 * Prints the figures of one interval (with `watch`, of each until `signal`, Ctrl-C by
 * default). 1 when the admin server cannot be read or the router is unknown.
 */
export async function statCommand(
  opts: StatOptions,
  out: (s: string) => void,
  signal?: AbortSignal,
): Promise<number> {
  const interrupt = signal ? undefined : interruptSignal();
  const stop = signal ?? interrupt!.signal;
  try {
    let before = await page(opts.admin, stop);
    if (opts.router !== undefined && !before.routers.includes(opts.router)) {
      out(`no router labelled "${opts.router}"; routers: ${before.routers.join(", ")}`);
      return 1;
    }
    let at = performance.now();
    do {
      await sleep(opts.intervalS * 1000, undefined, { signal: stop });
      const after = await page(opts.admin, stop);
      const now = performance.now();
      const rows = statRows(before, after, (now - at) / 1000, opts);
      if (opts.json) {
        const shown = { time: after.time, intervalS: opts.intervalS, rows };
        out(opts.watch ? JSON.stringify(shown) : JSON.stringify(shown, null, 2));
      } else out(opts.watch ? `${after.time}\n${formatStat(rows)}\n` : formatStat(rows));
      before = after;
      at = now;
    } while (opts.watch);
    return 0;
  } catch (e) {
    // Ctrl-C ends a watch (or a wait) without an error.
    if (stop.aborted) return 0;
    out((e as Error).message);
    return 1;
  } finally {
    interrupt?.release();
  }
}
