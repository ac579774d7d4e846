// The metrics endpoints of the admin server: /admin/metrics.json (Linkerd 1's flat
// object, histograms expanded to .count .sum .avg .min .max .p50 … .p9999) and
// /admin/metrics/prometheus (text format 0.0.4, named and labelled as Linkerd's
// io.l5d.prometheus telemeter does: `rt:server:requests{rt="edge", server="127.0.0.1/4140"}`).

import {
  type HistogramSnapshot,
  type Labels,
  type MetricsSnapshot,
  percentile,
  summarize,
} from "../telemetry/index.js";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Milliseconds to the microsecond, as the histograms resolve them. */
const micros = (ms: number) => Math.round(ms * 1000) / 1000;

/** The flat metrics.json object, keys sorted. */
export function metricsJson(snapshot: MetricsSnapshot): Record<string, number> {
  const out: [string, number][] = [];
  for (const s of snapshot.scopes) {
    for (const [stat, v] of Object.entries(s.counters)) out.push([`${s.flat}/${stat}`, v]);
    for (const [stat, v] of Object.entries(s.gauges)) out.push([`${s.flat}/${stat}`, v]);
    for (const [stat, h] of Object.entries(s.histograms)) {
      const name = `${s.flat}/${stat}`;
      for (const [field, v] of Object.entries(summarize(h))) {
        out.push([`${name}.${field}`, field === "count" ? v : micros(v)]);
      }
    }
  }
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return Object.fromEntries(out);
}

/** Quantile label values as io.l5d.prometheus gives them (0 is the minimum, 1 the maximum). */
const QUANTILES: readonly (readonly [string, number])[] = [
  ["0", 0],
  ["0.5", 0.5],
  ["0.9", 0.9],
  ["0.95", 0.95],
  ["0.99", 0.99],
  ["0.999", 0.999],
  ["0.9999", 0.9999],
  ["1", 1],
];

/** A metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
export function promName(s: string): string {
  const n = s.replace(/[^a-zA-Z0-9_:]/g, "_");
  return /^[0-9]/.test(n) ? `_${n}` : n;
}

const promLabelName = (s: string) => {
  const n = s.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[0-9]/.test(n) ? `_${n}` : n;
};

const promLabelValue = (s: string) =>
  s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function promLabels(labels: Labels, extra?: readonly [string, string]): string {
  const all = extra ? [...labels, extra] : labels;
  if (all.length === 0) return "";
  return `{${all.map(([k, v]) => `${promLabelName(k)}="${promLabelValue(v)}"`).join(", ")}}`;
}

interface Family {
  readonly type: "counter" | "gauge" | "summary";
  readonly lines: string[];
}

/**
 * The Prometheus text: one group per metric name, each after its TYPE line. `prefix`
 * goes in front of every name before it is made valid, as io.l5d.prometheus's `prefix`.
 */
export function prometheusText(snapshot: MetricsSnapshot, prefix = ""): string {
  const families = new Map<string, Family>();
  const family = (name: string, type: Family["type"]): string[] => {
    let f = families.get(name);
    if (!f || f.type !== type) {
      // Two kinds of metric under one name cannot share a group: keep the first.
      if (f) return [];
      f = { type, lines: [] };
      families.set(name, f);
    }
    return f.lines;
  };
  for (const s of snapshot.scopes) {
    const labels = promLabels(s.labels);
    const name = (stat: string) => promName(`${prefix}${s.prom}:${stat.replace(/\//g, ":")}`);
    for (const [stat, v] of Object.entries(s.counters)) {
      const n = name(stat);
      family(n, "counter").push(`${n}${labels} ${v}`);
    }
    for (const [stat, v] of Object.entries(s.gauges)) {
      const n = name(stat);
      family(n, "gauge").push(`${n}${labels} ${v}`);
    }
    for (const [stat, h] of Object.entries(s.histograms)) {
      const n = name(stat);
      summaryLines(family(n, "summary"), n, s.labels, h);
    }
  }
  const out: string[] = [];
  for (const n of [...families.keys()].sort()) {
    const f = families.get(n)!;
    out.push(`# TYPE ${n} ${f.type}`, ...f.lines);
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}

function summaryLines(lines: string[], n: string, labels: Labels, h: HistogramSnapshot): void {
  for (const [q, v] of QUANTILES) {
    lines.push(`${n}${promLabels(labels, ["quantile", q])} ${micros(percentile(h, v))}`);
  }
  const l = promLabels(labels);
  lines.push(`${n}_sum${l} ${micros(h.sum)}`, `${n}_count${l} ${h.count}`);
}
