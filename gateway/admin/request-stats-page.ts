// /admin/requestStats.json: each router's servers, services and clients with their
// request counters and latency histogram buckets, merged over every thread. metrics.json
// gives lifetime percentiles only; `lintel stat` subtracts two of these pages to read an
// interval's rates and percentiles.

import type { AdminRouteHandler } from "../telemeters/telemeters.js";
import type { HistogramSnapshot, MetricsSnapshot } from "../telemetry/index.js";

export type StatKind = "server" | "service" | "client";

/** One server, service or client of a router, as the merged metrics count it. */
export interface RequestStatsRow {
  readonly router: string;
  readonly kind: StatKind;
  /** As metrics.json names it: `127.0.0.1/4140`, `svc/users`, `$/inet/127.0.0.1/8080`. */
  readonly id: string;
  readonly requests: number;
  readonly success: number;
  readonly failures: number;
  readonly latency: HistogramSnapshot;
}

export interface RequestStatsPage {
  /** When the page was made (ISO time); the workers' figures are at most a second older. */
  readonly time: string;
  /** Every router's label. */
  readonly routers: readonly string[];
  readonly stats: readonly RequestStatsRow[];
}

const KINDS: Readonly<Record<string, StatKind>> = {
  "rt:server": "server",
  "rt:service": "service",
  "rt:client": "client",
};

const EMPTY: HistogramSnapshot = { count: 0, sum: 0, min: 0, max: 0, buckets: [] };

export function requestStatsPage(
  snapshot: MetricsSnapshot,
  routers: readonly string[],
  now: Date,
): RequestStatsPage {
  const stats: RequestStatsRow[] = [];
  for (const s of snapshot.scopes) {
    const kind = KINDS[s.prom];
    if (kind === undefined) continue;
    const label = (name: string) => s.labels.find(([k]) => k === name)?.[1] ?? "";
    stats.push({
      router: label("rt"),
      kind,
      id: label(kind),
      requests: s.counters.requests ?? 0,
      success: s.counters.success ?? 0,
      failures: s.counters.failures ?? 0,
      latency: s.histograms.request_latency_ms ?? EMPTY,
    });
  }
  return { time: now.toISOString(), routers, stats };
}

export function requestStatsRoute(
  metrics: () => MetricsSnapshot,
  routers: readonly string[],
): AdminRouteHandler {
  return async () => ({
    contentType: "application/json",
    body: `${JSON.stringify(requestStatsPage(metrics(), routers, new Date()))}\n`,
  });
}
