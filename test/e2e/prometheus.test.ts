// A real Prometheus (Debian's `prometheus`) scrapes a lintel with two uws workers every
// second while the test sends requests: PromQL through its HTTP API gives back the count
// and the rate the test generated, from OpenMetrics (what Prometheus asks for) and from
// the text format (`?format=prometheus`); the exposition negotiates its format, its
// histogram buckets rise with `le`, and every thread reports its process metrics.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PROMETHEUS_BUCKETS_SECONDS } from "../../gateway/telemetry/index.js";
import {
  burst,
  call,
  cleanup,
  eventually,
  freePort,
  fsEdgeConfig,
  onCleanup,
  requireBinary,
  startLintel,
  startUpstream,
  tempDir,
} from "./harness.js";

afterEach(cleanup);

const prometheusBinary = requireBinary("prometheus", "prometheus", "the Prometheus scrape test");

/** Requests the test sends, in bursts (each on its own connection, spread over the workers). */
const BURSTS = 4;
const PER_BURST = 50;
const N = BURSTS * PER_BURST;

/** Runs Prometheus on `configFile`, killed by its PID after the test; resolves when ready. */
async function runPrometheus(bin: string, dir: string, configFile: string): Promise<number> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    bin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  onCleanup(
    () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.pid === undefined) return r();
        child.once("exit", () => r());
        process.kill(child.pid, "SIGKILL");
      }),
  );
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited: ${out}`);
      return (await call(port, { path: "/-/ready" }).catch(() => undefined))?.status === 200;
    },
    15_000,
    "Prometheus to be ready",
  );
  return port;
}

interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** An instant PromQL query through Prometheus's HTTP API. */
async function query(port: number, promql: string): Promise<Sample[]> {
  const r = await call(port, { path: `/api/v1/query?query=${encodeURIComponent(promql)}` });
  const body = JSON.parse(r.text) as {
    status: string;
    data?: { result: Sample[] };
    error?: string;
  };
  if (body.status !== "success") throw new Error(`${promql}: ${body.error ?? r.text}`);
  return body.data!.result;
}

/** The single value of a query, or undefined when it has none. */
async function scalar(port: number, promql: string): Promise<number | undefined> {
  const result = await query(port, promql);
  return result.length === 1 ? Number(result[0]!.value[1]) : undefined;
}

describe("a real Prometheus scraping lintel with two workers", () => {
  it("counts and rates the requests sent, in both formats", { timeout: 60_000 }, async () => {
    if (!prometheusBinary) return;
    const users = await startUpstream("users");
    const l = await startLintel(fsEdgeConfig({ workers: 2 }), {
      "disco/users": `127.0.0.1 ${users.port}\n`,
    });
    const port = l.port();
    const dir = tempDir("lintel-prometheus-");
    const target = `127.0.0.1:${l.adminPort}`;
    const configFile = join(dir, "prometheus.yml");
    writeFileSync(
      configFile,
      `global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
# Prometheus asks for OpenMetrics: counters come as <name>_total.
- job_name: lintel
  metrics_path: /admin/metrics/prometheus
  static_configs: [{targets: ["${target}"]}]
# The text format, Linkerd 1's names exactly.
- job_name: lintel-text
  metrics_path: /admin/metrics/prometheus
  params: {format: [prometheus]}
  static_configs: [{targets: ["${target}"]}]
`,
    );
    const prom = await runPrometheus(prometheusBinary, dir, configFile);
    // Both jobs scrape successfully before any request is sent, so the counters' rise is seen.
    await eventually(
      async () => (await scalar(prom, "sum(up)")) === 2,
      15_000,
      "both scrape jobs to be up",
    ).catch(async (e: Error) => {
      const t = await call(prom, { path: "/api/v1/targets" });
      throw new Error(`${e.message}: ${t.text}`);
    });

    const started = Date.now();
    for (let i = 0; i < BURSTS; i++) {
      const replies = await burst(port, PER_BURST);
      expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
      await new Promise((r) => setTimeout(r, 500));
    }
    // Workers report every second and Prometheus scrapes every second: the totals arrive.
    const total = async (promql: string) => {
      let got: number | undefined;
      await eventually(
        async () => {
          got = await scalar(prom, promql);
          return got === N;
        },
        10_000,
        `${promql} to reach ${N}`,
      ).catch((e: Error) => {
        throw new Error(`${e.message} (last: ${got})`);
      });
      return got;
    };
    const srv = `server="127.0.0.1/${port}"`;
    // Exact: these are the counts lintel kept, added up over the two workers.
    expect(await total(`sum(rt:server:requests_total{job="lintel",${srv}})`)).toBe(N);
    expect(await total(`sum(rt:server:requests{job="lintel-text",${srv}})`)).toBe(N);
    expect(await total(`sum(rt:server:request_latency_seconds_count{job="lintel",${srv}})`)).toBe(
      N,
    );
    expect(
      await total(`sum(rt:server:request_latency_seconds_bucket{job="lintel",le="+Inf"})`),
    ).toBe(N);

    // The rate over a window holding the whole test: increase() extrapolates past the
    // series' last sample by up to 1.1 average scrape intervals. The series covers only the
    // few seconds of the test, so one interval is a large share of it (more on a busy
    // machine, where scrapes come late): we allow [0.9, 1.5] × N.
    const window = Math.ceil((Date.now() - started) / 1000) + 20;
    const increase = await scalar(
      prom,
      `sum(increase(rt:server:request_latency_seconds_count{job="lintel",${srv}}[${window}s]))`,
    );
    expect(increase).toBeGreaterThanOrEqual(0.9 * N);
    expect(increase).toBeLessThanOrEqual(1.5 * N);
    const rate = await scalar(
      prom,
      `sum(rate(rt:server:requests_total{job="lintel",${srv}}[${window}s]))`,
    );
    expect(rate! * window).toBeGreaterThanOrEqual(0.9 * N);
    expect(rate! * window).toBeLessThanOrEqual(1.5 * N);

    // Latency quantiles from the histogram buckets, as a dashboard reads them.
    const p99 = await scalar(
      prom,
      `histogram_quantile(0.99, sum by (le) (rate(rt:server:request_latency_seconds_bucket{job="lintel"}[${window}s])))`,
    );
    expect(p99).toBeGreaterThan(0);
    expect(p99).toBeLessThanOrEqual(PROMETHEUS_BUCKETS_SECONDS.at(-1)!);

    // Every thread's process metrics, through Prometheus.
    const threads = await query(prom, 'count by (thread) (process:heap_used_bytes{job="lintel"})');
    expect(threads.map((s) => s.metric.thread).sort()).toEqual(["main", "worker-1", "worker-2"]);
    const delays = await query(
      prom,
      'process:event_loop_delay_p99_seconds{job="lintel-text"} >= 0',
    );
    expect(delays.map((s) => s.metric.thread).sort()).toEqual(["main", "worker-1", "worker-2"]);
    const gc = await query(prom, 'sum by (thread) (process:gc:collections_total{job="lintel"})');
    expect(gc.map((s) => s.metric.thread).sort()).toEqual(["main", "worker-1", "worker-2"]);
    expect(await scalar(prom, 'process:rss_bytes{job="lintel"}')).toBeGreaterThan(10_000_000);
    expect(await scalar(prom, 'rate(process:cpu_seconds_total{job="lintel"}[1m])')).toBeGreaterThan(
      0,
    );

    // Every query of the Grafana dashboard runs and finds series (the test's router is
    // "edge"; both rows are pointed at it).
    const dashboard = JSON.parse(
      readFileSync(new URL("../../deploy/grafana/lintel.json", import.meta.url), "utf8"),
    ) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const vars: Record<string, string> = {
      $__rate_interval: `${window}s`,
      $job: "lintel",
      $instance: ".*",
      $edge: "edge",
      $egress: "edge",
    };
    const empty: string[] = [];
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) {
        const expr = t.expr.replace(/\$[a-zA-Z_]+/g, (v) => vars[v] ?? v);
        if ((await query(prom, expr)).length === 0) empty.push(`${p.title}: ${expr}`);
      }
    }
    expect(empty).toEqual([]);
  });
});

describe("the exposition lintel serves with two workers", () => {
  it("negotiates, has rising buckets and every thread's metrics", { timeout: 30_000 }, async () => {
    const users = await startUpstream("users");
    const l = await startLintel(fsEdgeConfig({ workers: 2 }), {
      "disco/users": `127.0.0.1 ${users.port}\n`,
    });
    const port = l.port();
    await burst(port, 30);

    const get = (accept?: string, query = "") =>
      call(l.adminPort, {
        path: `/admin/metrics/prometheus${query}`,
        headers: accept ? { accept } : {},
      });
    const srv = `rt="edge",server="127.0.0.1/${port}"`;
    let om = await get("application/openmetrics-text; version=1.0.0");
    await eventually(
      async () => {
        om = await get("application/openmetrics-text; version=1.0.0");
        return om.text.includes(`rt:server:requests_total{${srv}} 30\n`);
      },
      5000,
      "the workers' reports to count 30 requests",
    );
    expect(om.headers["content-type"]).toBe(
      "application/openmetrics-text; version=1.0.0; charset=utf-8",
    );
    expect(om.text.endsWith("# EOF\n")).toBe(true);

    const text = await get();
    expect(text.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(text.text).toContain(`rt:server:requests{${srv}} 30\n`);
    expect(text.text).not.toContain("# EOF");
    expect((await get("*/*")).headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(
      (await get("application/openmetrics-text", "?format=prometheus")).headers["content-type"],
    ).toMatch(/^text\/plain; version=0\.0\.4/);

    // Buckets: one per bound and +Inf, never falling, +Inf equal to _count.
    const bucket = new RegExp(
      `^rt:server:request_latency_seconds_bucket\\{${srv.replace(/[.]/g, "\\.")},le="([^"]+)"\\} (\\d+)$`,
      "gm",
    );
    const buckets = [...text.text.matchAll(bucket)].map((m) => [m[1]!, Number(m[2])] as const);
    expect(buckets.map(([le]) => le)).toEqual([...PROMETHEUS_BUCKETS_SECONDS.map(String), "+Inf"]);
    for (let i = 1; i < buckets.length; i++) {
      expect(buckets[i]![1]).toBeGreaterThanOrEqual(buckets[i - 1]![1]);
    }
    expect(buckets.at(-1)![1]).toBe(30);
    expect(text.text).toContain(`rt:server:request_latency_seconds_count{${srv}} 30\n`);

    // Each thread: heap, event-loop delay, GC, labelled; RSS and CPU once.
    for (const t of ["main", "worker-1", "worker-2"]) {
      expect(text.text).toMatch(
        new RegExp(`^process:heap_used_bytes\\{thread="${t}"\\} \\d+$`, "m"),
      );
      expect(text.text).toMatch(
        new RegExp(`^process:event_loop_delay_p99_seconds\\{thread="${t}"\\} [\\d.e-]+$`, "m"),
      );
      expect(text.text).toMatch(
        new RegExp(`^process:gc:collections\\{thread="${t}",kind="minor"\\} \\d+$`, "m"),
      );
    }
    expect(text.text.match(/^process:rss_bytes \d+$/gm)).toHaveLength(1);
    expect(text.text.match(/^process:cpu_seconds [\d.]+$/gm)).toHaveLength(1);
  });
});
