// The Grafana dashboard in deploy/grafana/lintel.json: it parses, its panels query
// Prometheus, and every metric name its PromQL uses is one the exposition has (as
// Prometheus stores it after an OpenMetrics scrape: counters with `_total`).

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { PrometheusExposition } from "../../gateway/admin/prometheus/exposition.js";
import {
  Registry,
  RouterMetrics,
  type ThreadMetrics,
  threadMetrics,
} from "../../gateway/telemetry/index.js";

const DASHBOARD = new URL("../../deploy/grafana/lintel.json", import.meta.url);

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: readonly { readonly expr: string }[];
}

interface Dashboard {
  readonly title: string;
  readonly uid: string;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly { readonly query?: unknown }[] };
}

/** Every PromQL expression of the dashboard: its panels' targets and its query variables'. */
function dashboardExpressions(d: Dashboard): string[] {
  const out: string[] = [];
  for (const p of d.panels) for (const t of p.targets ?? []) out.push(t.expr);
  for (const v of d.templating.list) {
    const q = v.query as { query?: string } | undefined;
    const m = typeof q?.query === "string" ? /^label_values\((.*), *\w+\)$/.exec(q.query) : null;
    if (m) out.push(m[1]!);
  }
  return out;
}

/** PromQL's functions, aggregations and keywords (the ones a dashboard would use). */
const PROMQL_WORDS = new Set([
  "sum",
  "max",
  "min",
  "avg",
  "count",
  "rate",
  "irate",
  "increase",
  "histogram_quantile",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "topk",
  "bottomk",
  "clamp_min",
  "clamp_max",
  "label_values",
]);

/** The metric names an expression selects: identifiers outside labels, strings, ranges and groupings. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    if (PROMQL_WORDS.has(m[0])) continue;
    names.add(m[0]);
  }
  return [...names];
}

const opened: ThreadMetrics[] = [];
afterEach(() => {
  for (const t of opened.splice(0)) t.close();
});

/** Every sample name lintel exposes to a Prometheus scraping it with OpenMetrics. */
async function exposedNames(): Promise<Set<string>> {
  const reg = new Registry();
  opened.push(threadMetrics(reg, "main", { wholeProcess: true }));
  const rm = new RouterMetrics(reg, "edge");
  rm.server("127.0.0.1", 4140).record(200, 3, "");
  rm.service("/svc/users").record(200, 3, "");
  const client = rm.client("/#/io.l5d.fs/users");
  client.record(200, 3, "");
  const { body } = await new PrometheusExposition(() => reg.snapshot()).render(
    "application/openmetrics-text; version=1.0.0",
  );
  const names = new Set<string>();
  for (const line of body.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    names.add(/^[^{ ]+/.exec(line)![0]);
  }
  return names;
}

describe("the Grafana dashboard", () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;

  it("parses, and covers the edge, the egress pool and the threads", () => {
    expect(dashboard.title).toBe("lintel");
    expect(dashboard.uid).toBe("lintel-edge");
    const titles = dashboard.panels.map((p) => p.title);
    for (const t of ["Request rate", "Success rate", "Latency p50 / p95 / p99"]) {
      expect(titles.filter((x) => x === t)).toHaveLength(2);
    }
    expect(titles).toContain("Connections and load");
    expect(titles).toContain("Event-loop delay p99 by thread");
    const ids = dashboard.panels.map((p) => (p as unknown as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("finds metric names in PromQL", () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (rt, le) (rate(a:b_bucket{job=~"$job",x="y{z}"}[$__rate_interval]))) / c_total',
      ),
    ).toEqual(["a:b_bucket", "c_total"]);
  });

  it("uses only metric names the exposition has", async () => {
    const exposed = await exposedNames();
    const exprs = dashboardExpressions(dashboard);
    expect(exprs.length).toBeGreaterThan(15);
    const used = new Set(exprs.flatMap(metricNames));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !exposed.has(n))).toEqual([]);
    // The percentiles come from the histograms, not from the summaries' quantiles.
    expect(exprs.filter((e) => e.includes("histogram_quantile")).length).toBeGreaterThan(0);
    expect([...used].filter((n) => n.endsWith("_ms"))).toEqual([]);
  });
});
