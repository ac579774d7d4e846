// The Prometheus exposition (gateway/admin/prometheus/exposition.ts and the families of
// gateway/admin/metrics.ts): content negotiation, OpenMetrics, histogram buckets read
// from the log-scale latency buckets and added up across threads, each thread's process
// metrics, and promtool's verdict on the text.

import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import {
  negotiate,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
  PrometheusExposition,
} from "../../gateway/admin/prometheus/exposition.js";
import {
  cumulativeCounts,
  Histogram,
  type MetricsSnapshot,
  mergeSnapshots,
  PROMETHEUS_BUCKETS_SECONDS,
  Registry,
  RouterMetrics,
  type ThreadMetrics,
  threadMetrics,
} from "../../gateway/telemetry/index.js";
import { requireBinary } from "../e2e/harness.js";

const promtool = requireBinary("promtool", "prometheus", "promtool check of the exposition");

const opened: ThreadMetrics[] = [];
afterEach(() => {
  for (const t of opened.splice(0)) t.close();
});

/** A thread's registry: an edge router's server with `latencies` recorded, and process metrics. */
function thread(name: string, latencies: readonly number[]): MetricsSnapshot {
  const reg = new Registry();
  opened.push(threadMetrics(reg, name, { wholeProcess: name === "main" }));
  const server = new RouterMetrics(reg, "edge").server("127.0.0.1", 4140);
  for (const ms of latencies) server.record(200, ms, "");
  return reg.snapshot();
}

/** `name{labels}` → value for every sample line (labels as written). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    const v = line.slice(i + 1);
    out.set(line.slice(0, i), v === "+Inf" ? Number.POSITIVE_INFINITY : Number(v));
  }
  return out;
}

const SRV = 'rt="edge",server="127.0.0.1/4140"';

describe("content negotiation", () => {
  it("is Prometheus text unless OpenMetrics weighs at least as much", () => {
    expect(negotiate(undefined)).toBe("prometheus");
    expect(negotiate("*/*")).toBe("prometheus");
    expect(negotiate("text/plain;version=0.0.4")).toBe("prometheus");
    expect(negotiate("text/html,application/xhtml+xml,*/*;q=0.8")).toBe("prometheus");
    expect(negotiate("application/openmetrics-text; version=1.0.0")).toBe("openmetrics");
    expect(negotiate("application/openmetrics-text")).toBe("openmetrics");
    // What Prometheus sends.
    expect(
      negotiate(
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
      ),
    ).toBe("openmetrics");
    // A version we do not write, or a lower weight, gets the text format.
    expect(negotiate("application/openmetrics-text;version=0.0.1")).toBe("prometheus");
    expect(negotiate("application/openmetrics-text;q=0.2,text/plain")).toBe("prometheus");
    expect(negotiate("application/openmetrics-text;q=0")).toBe("prometheus");
  });

  it("answers with the content type of the format chosen; ?format= overrides", async () => {
    const snap = thread("main", [3]);
    const e = new PrometheusExposition(() => snap);
    const text = await e.render(undefined);
    expect(text.contentType).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(text.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(text.body).not.toContain("# EOF");
    expect(samples(text.body).get(`rt:server:requests{${SRV}}`)).toBe(1);

    const om = await e.render("application/openmetrics-text; version=1.0.0");
    expect(om.contentType).toBe(OPENMETRICS_CONTENT_TYPE);
    expect(om.contentType).toBe("application/openmetrics-text; version=1.0.0; charset=utf-8");
    expect(om.body.endsWith("\n# EOF\n")).toBe(true);
    expect(om.body).not.toMatch(/\n\n/);
    // OpenMetrics counters: the family without `_total`, its samples with it.
    expect(om.body).toContain("# TYPE rt:server:requests counter\n");
    expect(samples(om.body).get(`rt:server:requests_total{${SRV}}`)).toBe(1);
    expect(samples(om.body).has(`rt:server:requests{${SRV}}`)).toBe(false);
    // Histograms and summaries read the same in both.
    expect(samples(om.body).get(`rt:server:request_latency_seconds_count{${SRV}}`)).toBe(1);

    const forced = await e.render("application/openmetrics-text", "prometheus");
    expect(forced.contentType).toBe(PROMETHEUS_CONTENT_TYPE);
    expect((await e.render(undefined, "openmetrics")).contentType).toBe(OPENMETRICS_CONTENT_TYPE);
    // And the text format again after OpenMetrics (the two registries keep apart).
    expect(samples((await e.render(undefined)).body).get(`rt:server:requests{${SRV}}`)).toBe(1);
  });

  it("reads the snapshot at each scrape: new scopes appear, gone ones leave", async () => {
    let snap: MetricsSnapshot = { scopes: [] };
    const e = new PrometheusExposition(() => snap);
    expect((await e.render(undefined)).body).toBe("");
    expect((await e.render("application/openmetrics-text")).body).toBe("# EOF\n");
    snap = thread("main", [1, 2]);
    expect(samples((await e.render(undefined)).body).get(`rt:server:requests{${SRV}}`)).toBe(2);
    snap = { scopes: snap.scopes.filter((s) => !s.flat.startsWith("rt/")) };
    expect((await e.render(undefined)).body).not.toContain("rt:server:requests");
  });

  it("puts the prefix in front of every name, then makes it valid", async () => {
    const snap = thread("main", [1]);
    const { body } = await new PrometheusExposition(() => snap, "my-app.").render(undefined);
    const names = [...samples(body).keys()].map((k) => /^[^{]+/.exec(k)![0]);
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((n) => !n.startsWith("my_app_"))).toEqual([]);
  });
});

describe("latency histograms", () => {
  it("count values at or below each bound, within one log bucket", () => {
    const h = new Histogram();
    for (const ms of [0.5, 1, 2, 2.5, 4, 9, 24, 50, 99, 1000, 70_000]) h.record(ms);
    const bounds = PROMETHEUS_BUCKETS_SECONDS.map((s) => s * 1000);
    const counts = cumulativeCounts(h.snapshot(), bounds);
    // 1, 2.5, 50 and 1000 ms sit on bounds and count below them.
    expect(counts).toEqual([2, 4, 5, 6, 7, 8, 9, 9, 9, 10, 10, 10, 10, 10, 10]);
  });

  it("are buckets, +Inf, _sum and _count in seconds, monotonic, added up over threads", async () => {
    const main = thread("main", [0.5, 3, 40]);
    const worker = thread("worker-1", [3, 200, 7000]);
    const merged = mergeSnapshots([main, worker]);
    const s = samples((await new PrometheusExposition(() => merged).render(undefined)).body);
    const le = [...PROMETHEUS_BUCKETS_SECONDS.map(String), "+Inf"];
    const buckets = le.map((b) =>
      s.get(`rt:server:request_latency_seconds_bucket{${SRV},le="${b}"}`),
    );
    expect(buckets).toEqual([1, 1, 3, 3, 3, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6]);
    for (let i = 1; i < buckets.length; i++)
      expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
    expect(s.get(`rt:server:request_latency_seconds_count{${SRV}}`)).toBe(6);
    expect(s.get(`rt:server:request_latency_seconds_sum{${SRV}}`)).toBeCloseTo(7.2465, 6);
    // The Linkerd summary stays beside it, in ms.
    expect(s.get(`rt:server:request_latency_ms_count{${SRV}}`)).toBe(6);
    expect(s.get(`rt:server:request_latency_ms{${SRV},quantile="1"}`)).toBe(7000);
  });
});

describe("process metrics", () => {
  it("each thread's event loop, GC and heap by thread label; RSS and CPU once", async () => {
    const merged = mergeSnapshots([
      thread("main", []),
      thread("worker-1", []),
      thread("worker-2", []),
    ]);
    const s = samples((await new PrometheusExposition(() => merged).render(undefined)).body);
    for (const t of ["main", "worker-1", "worker-2"]) {
      expect(s.get(`process:heap_used_bytes{thread="${t}"}`)).toBeGreaterThan(1_000_000);
      expect(s.get(`process:heap_total_bytes{thread="${t}"}`)).toBeGreaterThan(1_000_000);
      for (const q of ["p50", "p99", "max", "mean"]) {
        expect(
          s.get(`process:event_loop_delay_${q}_seconds{thread="${t}"}`),
        ).toBeGreaterThanOrEqual(0);
      }
      for (const kind of ["minor", "major"]) {
        expect(
          s.get(`process:gc:collections{thread="${t}",kind="${kind}"}`),
        ).toBeGreaterThanOrEqual(0);
        expect(
          s.get(`process:gc:duration_seconds{thread="${t}",kind="${kind}"}`),
        ).toBeGreaterThanOrEqual(0);
      }
    }
    expect(s.get("process:rss_bytes")).toBeGreaterThan(10_000_000);
    expect(s.get("process:cpu_seconds")).toBeGreaterThan(0);
  });

  it("counts garbage collections and measures event-loop delay", async () => {
    const reg = new Registry();
    opened.push(threadMetrics(reg, "main"));
    // Allocate until a minor GC has surely run, and block the loop for a while.
    let keep: unknown[] = [];
    for (let i = 0; i < 200_000; i++) keep.push({ i, s: `x${i}` });
    keep = [];
    const until = Date.now() + 60;
    while (Date.now() < until) {
      // busy: the event loop is held up
    }
    await new Promise((r) => setTimeout(r, 50));
    const scope = (flat: string) => reg.snapshot().scopes.find((x) => x.flat === flat)!;
    expect(scope("process/thread/main/gc/minor").counters.collections).toBeGreaterThan(0);
    expect(scope("process/thread/main/gc/minor").counters.duration_seconds).toBeGreaterThan(0);
    expect(keep).toEqual([]);
  });

  it("reports the event loop's delay over its timer's resolution: none when idle, a block when held", async () => {
    const reg = new Registry();
    opened.push(threadMetrics(reg, "main", { eventLoopWindowMs: 300 }));
    const gauges = () =>
      reg.snapshot().scopes.find((x) => x.flat === "process/thread/main")!.gauges;
    await new Promise((r) => setTimeout(r, 650));
    // Idle: the 10 ms between the monitor's ticks is not delay.
    expect(gauges().event_loop_delay_p50_seconds).toBeLessThan(0.005);
    const until = Date.now() + 400;
    const hold = setInterval(() => {
      const end = Date.now() + 40;
      while (Date.now() < end) {
        // busy: the event loop is held up 40 ms at a time
      }
      if (Date.now() > until) clearInterval(hold);
    }, 5);
    await new Promise((r) => setTimeout(r, 700));
    expect(gauges().event_loop_delay_max_seconds).toBeGreaterThan(0.025);
  });
});

describe("promtool check metrics", () => {
  it("accepts the exposition (only Linkerd's naming remarks)", async () => {
    if (!promtool) return;
    const merged = mergeSnapshots([thread("main", [1, 20]), thread("worker-1", [3])]);
    const { body } = await new PrometheusExposition(() => merged).render(undefined);
    const check = spawnSync(promtool, ["check", "metrics"], { input: body, encoding: "utf8" });
    const said = `${check.stdout}${check.stderr}`;
    expect(said).not.toContain("error while linting");
    expect([0, 3]).toContain(check.status);
    const linkerdNaming = [
      / counter metrics should have "_total" suffix$/,
      / metric names should not contain ':'$/,
      / metric names should not contain abbreviated units$/,
    ];
    const remarks = said.split("\n").filter((l) => l.trim() !== "");
    expect(remarks.length).toBeGreaterThan(0);
    expect(remarks.filter((l) => !linkerdNaming.some((re) => re.test(l)))).toEqual([]);
  });
});
