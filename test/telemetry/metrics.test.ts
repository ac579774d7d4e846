// The metrics core: histogram buckets and percentiles, merging histograms and snapshots
// of several threads, request stats, and the two admin renderings.

import { describe, expect, it } from "vitest";
import { metricsJson } from "../../gateway/admin/metrics.js";
import { PrometheusExposition } from "../../gateway/admin/prometheus/exposition.js";
import {
  BUCKETS,
  bucketOf,
  bucketValue,
  CLIENT_CLOSED,
  Histogram,
  MAX_SERVICES,
  type MetricsSnapshot,
  mergeHistograms,
  mergeSnapshots,
  percentile,
  Registry,
  RouterMetrics,
  summarize,
  withoutGauges,
} from "../../gateway/telemetry/index.js";

/** Records 1, 2, …, n ms. */
function ramp(n: number, from = 1): Histogram {
  const h = new Histogram();
  for (let i = 0; i < n; i++) h.record(from + i);
  return h;
}

describe("histogram", () => {
  it("buckets: exact below 32 µs, then 32 per power of two, in order", () => {
    for (let us = 0; us < 32; us++) expect(bucketOf(us)).toBe(us);
    let last = -1;
    const wrong: number[] = [];
    for (let us = 0; us < 0x7fffffff; us += 1 + Math.floor(us / 1000)) {
      const b = bucketOf(us);
      // Never a smaller bucket for a larger value, and the value a bucket reports is
      // within 1/64 of what was recorded.
      const v = bucketValue(b) * 1000;
      if (b < last || Math.abs(v - us) > Math.max(0.5, us / 64)) wrong.push(us);
      last = b;
    }
    expect(wrong).toEqual([]);
    expect(bucketOf(0x7fffffff)).toBe(BUCKETS - 1);
    expect(bucketOf(32)).toBe(32);
    expect(bucketOf(64)).toBe(64);
    expect(bucketValue(64)).toBe(0.0645);
  });

  it("percentiles from 1..1000 ms are within the bucket resolution", () => {
    const s = summarize(ramp(1000).snapshot());
    expect(s.count).toBe(1000);
    expect(s.sum).toBe(500_500);
    expect(s.avg).toBe(500.5);
    expect(s.min).toBe(1);
    expect(s.max).toBe(1000);
    const near = (got: number, want: number) =>
      expect(Math.abs(got - want) / want).toBeLessThanOrEqual(1 / 64);
    near(s.p50, 500);
    near(s.p90, 900);
    near(s.p95, 950);
    near(s.p99, 990);
    near(s.p9990, 999);
    expect(s.p9999).toBe(1000);
  });

  it("exact for values below 32 µs, and kept within min and max", () => {
    const h = new Histogram();
    for (const ms of [0.003, 0.003, 0.003, 0.02]) h.record(ms);
    const snap = h.snapshot();
    expect(percentile(snap, 0.5)).toBe(0.003);
    expect(percentile(snap, 1)).toBe(0.02);
    expect(percentile(snap, 0)).toBe(0.003);
    const one = new Histogram();
    one.record(7.77);
    expect(summarize(one.snapshot()).p99).toBe(7.77);
  });

  it("is empty as zeros, and ignores NaN and negatives as 0 µs", () => {
    const s = summarize(new Histogram().snapshot());
    expect(s).toEqual({
      count: 0,
      sum: 0,
      avg: 0,
      min: 0,
      max: 0,
      p50: 0,
      p90: 0,
      p95: 0,
      p99: 0,
      p9990: 0,
      p9999: 0,
    });
    const h = new Histogram();
    h.record(-1);
    expect(h.snapshot().buckets).toEqual([0, 1]);
  });

  it("merges by adding buckets: the same as recording everything in one", () => {
    const a = ramp(500, 1);
    const b = ramp(500, 501);
    const merged = mergeHistograms([a.snapshot(), b.snapshot(), new Histogram().snapshot()]);
    expect(merged).toEqual(ramp(1000).snapshot());
    expect(summarize(merged).p50).toBe(summarize(ramp(1000).snapshot()).p50);
  });
});

describe("registry and snapshots", () => {
  it("sums counters and gauges and merges histograms by scope", () => {
    const threads = [new Registry(), new Registry()];
    for (const [i, r] of threads.entries()) {
      const s = r.scope({ flat: "rt/edge/server/127.0.0.1/4140", prom: "rt:server", labels: [] });
      s.counter("requests").n += 10 * (i + 1);
      s.gauge("load").n = i + 1;
      s.histogram("request_latency_ms").record(i + 1);
    }
    const only = threads[1]!.scope({
      flat: "rt/edge/service/svc/a",
      prom: "rt:service",
      labels: [],
    });
    only.counter("requests").n = 5;
    const m = mergeSnapshots(threads.map((r) => r.snapshot()));
    expect(m.scopes.map((s) => s.flat)).toEqual([
      "rt/edge/server/127.0.0.1/4140",
      "rt/edge/service/svc/a",
    ]);
    const server = m.scopes[0]!;
    expect(server.counters).toEqual({ requests: 30 });
    expect(server.gauges).toEqual({ load: 3 });
    expect(server.histograms.request_latency_ms!.count).toBe(2);
    expect(server.histograms.request_latency_ms!.min).toBe(1);
    expect(server.histograms.request_latency_ms!.max).toBe(2);
    expect(m.scopes[1]!.counters).toEqual({ requests: 5 });
  });

  it("a thread that ended keeps its counters but not its gauges", () => {
    const r = new Registry();
    const s = r.scope({ flat: "x", prom: "x", labels: [] });
    s.counter("requests").n = 7;
    s.gauge("load").n = 2;
    const carried = withoutGauges(r.snapshot());
    const m = mergeSnapshots([carried, r.snapshot()]);
    expect(m.scopes[0]!.counters).toEqual({ requests: 14 });
    expect(m.scopes[0]!.gauges).toEqual({ load: 2 });
  });

  it("gauges read at snapshot time", () => {
    const r = new Registry();
    let v = 1;
    r.scope({ flat: "process", prom: "process", labels: [] }).gauge("uptime_ms", () => v);
    v = 42;
    expect(r.snapshot().scopes[0]!.gauges).toEqual({ uptime_ms: 42 });
  });
});

describe("request stats", () => {
  it("count success, failures with reasons, status codes and classes", () => {
    const reg = new Registry();
    const rm = new RouterMetrics(reg, "edge");
    const server = rm.server("127.0.0.1", 4140);
    server.record(200, 1, "");
    server.record(404, 1, "");
    server.record(503, 1, "");
    server.record(502, 1, "LINTEL_CONNECT");
    server.record(0, 1, CLIENT_CLOSED);
    const m = metricsJson(reg.snapshot());
    const p = "rt/edge/server/127.0.0.1/4140";
    expect(m[`${p}/requests`]).toBe(5);
    expect(m[`${p}/success`]).toBe(2);
    expect(m[`${p}/failures`]).toBe(3);
    expect(m[`${p}/failures/LINTEL_CONNECT`]).toBe(1);
    expect(m[`${p}/failures/client_closed`]).toBe(1);
    expect(m[`${p}/status/200`]).toBe(1);
    expect(m[`${p}/status/2XX`]).toBe(1);
    expect(m[`${p}/status/4XX`]).toBe(1);
    expect(m[`${p}/status/5XX`]).toBe(2);
    expect(m[`${p}/status/0`]).toBeUndefined();
    expect(m[`${p}/request_latency_ms.count`]).toBe(5);
    expect(m[`${p}/load`]).toBe(0);
  });

  it("names services and clients as Linkerd does, and caps how many", () => {
    const reg = new Registry();
    const rm = new RouterMetrics(reg, "edge", { services: 2, clients: 1 });
    expect(rm.service("/svc/users")).toBe(rm.service("/svc/users"));
    rm.service("/svc/users").record(200, 1, "");
    rm.service("/svc/b").record(200, 1, "");
    rm.service("/svc/c").record(200, 1, "");
    rm.service("/svc/d").record(200, 1, "");
    rm.client("/$/inet/127.1/8080").record(200, 1, "");
    rm.client("/$/inet/127.1/8081").record(200, 1, "");
    const m = metricsJson(reg.snapshot());
    expect(m["rt/edge/service/svc/users/requests"]).toBe(1);
    expect(m["rt/edge/service/svc/c/requests"]).toBeUndefined();
    expect(m["rt/edge/overflow/service/requests"]).toBe(2);
    expect(m["rt/edge/client/$/inet/127.1/8080/requests"]).toBe(1);
    expect(m["rt/edge/overflow/client/requests"]).toBe(1);
    expect(MAX_SERVICES).toBe(1000);
  });
});

/** name{labels} value lines: every sample, keyed by name and labels. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/;
  for (const l of text.split("\n")) {
    if (l === "" || l.startsWith("#")) continue;
    const m = line.exec(l);
    if (!m) throw new Error(`not a sample: ${l}`);
    if (m[3])
      for (const kv of m[3].split(/,(?=[a-zA-Z_]+=")/)) if (!label.test(kv)) throw new Error(kv);
    samples.set(`${m[1]}${m[2] ?? ""}`, Number(m[4]));
  }
  return samples;
}

describe("prometheus text", () => {
  it("names, labels and summaries as io.l5d.prometheus, grouped by name", async () => {
    const reg = new Registry();
    const rm = new RouterMetrics(reg, "edge");
    rm.server("127.0.0.1", 4140).record(200, 3, "");
    rm.server("127.0.0.1", 4141).record(502, 5, "LINTEL_NO_ROUTE");
    rm.service("/svc/users").record(200, 3, "");
    rm.client('/$/inet/we"ird/80').record(200, 3, "");
    const snap: MetricsSnapshot = reg.snapshot();
    const { body: text } = await new PrometheusExposition(() => snap).render(undefined);
    const s = parsePrometheus(text);
    expect(s.get('rt:server:requests{rt="edge",server="127.0.0.1/4140"}')).toBe(1);
    expect(s.get('rt:server:status:2XX{rt="edge",server="127.0.0.1/4140"}')).toBe(1);
    expect(s.get('rt:server:failures:LINTEL_NO_ROUTE{rt="edge",server="127.0.0.1/4141"}')).toBe(1);
    expect(s.get('rt:service:success{rt="edge",service="svc/users"}')).toBe(1);
    expect(s.get('rt:client:requests{rt="edge",client="$/inet/we\\"ird/80"}')).toBe(1);
    expect(
      s.get('rt:server:request_latency_ms{rt="edge",server="127.0.0.1/4141",quantile="0.99"}'),
    ).toBe(5);
    expect(s.get('rt:server:request_latency_ms_count{rt="edge",server="127.0.0.1/4141"}')).toBe(1);
    expect(s.get('rt:server:request_latency_ms_sum{rt="edge",server="127.0.0.1/4141"}')).toBe(5);
    expect(s.get('rt:bindcache:path:misses{rt="edge"}')).toBe(0);
    // Each name's samples come together, after one TYPE line.
    const names = text
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"))
      .map((l) => /^[^{ ]+/.exec(l)![0].replace(/_(sum|count|bucket)$/, ""));
    const runs = names.filter((n, i) => i === 0 || names[i - 1] !== n);
    expect(new Set(runs).size).toBe(runs.length);
    expect(text.match(/^# TYPE rt:server:requests counter$/gm)).toHaveLength(1);
    expect(text).toMatch(/^# TYPE rt:server:request_latency_ms summary$/m);
    expect(text).toMatch(/^# TYPE rt:server:load gauge$/m);
  });
});
