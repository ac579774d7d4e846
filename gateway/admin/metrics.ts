// The metrics endpoints of the admin server: /admin/metrics.json (Linkerd 1's flat
// object, histograms expanded to .count .sum .avg .min .max .p50 … .p9999) and the
// Prometheus exposition's metric families (rendered by ./prometheus/exposition.ts with
// prom-client), named and labelled as Linkerd's io.l5d.prometheus telemeter does:
// `rt:server:requests{rt="edge",server="127.0.0.1/4140"}`, plus latency histograms with
// buckets (`rt:server:request_latency_seconds_bucket{…,le="0.005"}`).

import {
  cumulativeCounts,
  type HistogramSnapshot,
  type Labels,
  type MetricsSnapshot,
  PROMETHEUS_BUCKETS_SECONDS,
  percentile,
  summarize,
} from "../telemetry/index.js";

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

/** One sample: `metricName` is the family's name, or it with a suffix (`_bucket`, `_sum`). */
export interface PromSample {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type PromType = "counter" | "gauge" | "summary" | "histogram";

/** A metric family: one name, one type, its samples over every scope. */
export interface PromFamily {
  readonly name: string;
  readonly type: PromType;
  readonly help: string;
  readonly samples: PromSample[];
}

/** HELP texts by the first part of a stat's name; others get a generic one. */
const HELP: Readonly<Record<string, string>> = {
  requests: "Requests (Linkerd 1 counter)",
  success: "Requests the response classifier called a success",
  failures: "Requests the response classifier called a failure, by error code",
  status: "Responses by status code and class",
  load: "Requests in flight",
  connections: "Open connections",
  request_latency_ms: "Request latency in milliseconds, quantiles over every thread",
  request_latency_seconds:
    "Request latency in seconds, as a histogram that adds up across threads and replicas",
  heap_used_bytes: "V8 heap in use, per thread",
  heap_total_bytes: "V8 heap size, per thread",
  event_loop_delay_p50_seconds: "Event-loop delay, median over the last window, per thread",
  event_loop_delay_p99_seconds:
    "Event-loop delay, 99th percentile over the last window, per thread",
  event_loop_delay_max_seconds: "Event-loop delay, maximum over the last window, per thread",
  event_loop_delay_mean_seconds: "Event-loop delay, mean over the last window, per thread",
  collections: "Garbage collections, per thread and kind",
  duration_seconds: "Time spent in garbage collection, per thread and kind",
  rss_bytes: "Resident set size of the process",
  cpu_seconds: "CPU time of the process (user and system)",
};

const labelObject = (labels: Labels, extra?: readonly [string, string]) => {
  const o: Record<string, string> = {};
  for (const [k, v] of labels) o[promLabelName(k)] = v;
  if (extra) o[extra[0]] = extra[1];
  return o;
};

/**
 * Every metric family of a snapshot, in order of first appearance. `prefix` goes in front
 * of every name before it is made valid, as io.l5d.prometheus's `prefix`. Counters and
 * gauges keep Linkerd's names; a histogram gives a summary under its Linkerd name (in ms)
 * and, when its stat ends in `_ms`, a Prometheus histogram in seconds beside it
 * (`request_latency_ms` → `request_latency_seconds`). A name two kinds of metric would
 * share keeps the first.
 */
export function prometheusFamilies(
  snapshot: MetricsSnapshot,
  prefix = "",
): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const family = (name: string, type: PromType, stat: string): PromSample[] | undefined => {
    let f = families.get(name);
    if (!f) {
      const head = stat.split("/")[0]!;
      f = { name, type, help: HELP[head] ?? `lintel ${type} ${stat}`, samples: [] };
      families.set(name, f);
    }
    return f.type === type ? f.samples : undefined;
  };
  for (const s of snapshot.scopes) {
    const name = (stat: string) => promName(`${prefix}${s.prom}:${stat.replace(/\//g, ":")}`);
    const labels = labelObject(s.labels);
    for (const [stat, v] of Object.entries(s.counters)) {
      const n = name(stat);
      family(n, "counter", stat)?.push({ metricName: n, labels, value: v });
    }
    for (const [stat, v] of Object.entries(s.gauges)) {
      const n = name(stat);
      family(n, "gauge", stat)?.push({ metricName: n, labels, value: v });
    }
    for (const [stat, h] of Object.entries(s.histograms)) {
      const n = name(stat);
      const summary = family(n, "summary", stat);
      if (summary) summarySamples(summary, n, s.labels, h);
      if (stat.endsWith("_ms")) {
        const secondsStat = `${stat.slice(0, -3)}_seconds`;
        const hn = name(secondsStat);
        const histogram = family(hn, "histogram", secondsStat);
        if (histogram) histogramSamples(histogram, hn, s.labels, h);
      }
    }
  }
  return families;
}

function summarySamples(out: PromSample[], n: string, labels: Labels, h: HistogramSnapshot): void {
  for (const [q, v] of QUANTILES) {
    out.push({
      metricName: n,
      labels: labelObject(labels, ["quantile", q]),
      value: micros(percentile(h, v)),
    });
  }
  const l = labelObject(labels);
  out.push({ metricName: `${n}_sum`, labels: l, value: micros(h.sum) });
  out.push({ metricName: `${n}_count`, labels: l, value: h.count });
}

/** The bucket bounds in ms, as the histograms record. */
const BOUNDS_MS = PROMETHEUS_BUCKETS_SECONDS.map((s) => s * 1000);

/** `_bucket` per bound and +Inf (cumulative), `_sum` (seconds) and `_count`. */
function histogramSamples(
  out: PromSample[],
  n: string,
  labels: Labels,
  h: HistogramSnapshot,
): void {
  const counts = cumulativeCounts(h, BOUNDS_MS);
  for (const [i, le] of PROMETHEUS_BUCKETS_SECONDS.entries()) {
    out.push({
      metricName: `${n}_bucket`,
      labels: labelObject(labels, ["le", `${le}`]),
      value: counts[i]!,
    });
  }
  out.push({
    metricName: `${n}_bucket`,
    labels: labelObject(labels, ["le", "+Inf"]),
    value: h.count,
  });
  const l = labelObject(labels);
  out.push({ metricName: `${n}_sum`, labels: l, value: Math.round(h.sum * 1000) / 1e6 });
  out.push({ metricName: `${n}_count`, labels: l, value: h.count });
}
