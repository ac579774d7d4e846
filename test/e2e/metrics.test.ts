// Metrics at the admin server: exact request, success, failure and status counts per
// server, service and client, in /admin/metrics.json and /admin/metrics/prometheus; the
// same totals over worker threads; totals that do not go down when a worker dies.

import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  burst,
  CRASHY_PLUGIN,
  call,
  cleanup,
  ENGINES,
  eventually,
  fsEdgeConfig,
  type Lintel,
  metricsJson,
  onCleanup,
  startLintel,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

type Json = Record<string, number>;

/**
 * Parses Prometheus text format 0.0.4 strictly enough to catch mistakes: every line is
 * blank, a HELP or TYPE comment, or `name{label="value",…} value`, names and label names
 * are valid, values are numbers. Returns the samples keyed by `name{labels}`, labels
 * joined by ", " as Linkerd wrote them (prom-client writes them without the space).
 */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"$/;
  const typeLine = /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|summary|histogram|untyped)$/;
  const helpLine = /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* \S.*$/;
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      if (!typeLine.test(line)) expect(line).toMatch(helpLine);
      continue;
    }
    const m = sample.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${JSON.stringify(line)}`);
    let labels = "";
    if (m[3] !== undefined) {
      const pairs = m[3].split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/);
      for (const kv of pairs) {
        if (!label.test(kv)) throw new Error(`bad label ${JSON.stringify(kv)} in ${line}`);
      }
      labels = `{${pairs.join(", ")}}`;
    }
    const value = Number(m[4] === "+Inf" ? Number.POSITIVE_INFINITY : m[4]);
    if (Number.isNaN(value)) throw new Error(`bad value in ${line}`);
    expect(samples.has(`${m[1]}${labels}`)).toBe(false);
    samples.set(`${m[1]}${labels}`, value);
  }
  return samples;
}

async function prometheus(l: Lintel): Promise<Map<string, number>> {
  const r = await call(l.adminPort, { path: "/admin/metrics/prometheus" });
  expect(r.status).toBe(200);
  expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(r.text);
}

/** A port nothing listens on. */
function deadPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

const serverRequests = (m: Json, port: number) =>
  m[`rt/edge/server/127.0.0.1/${port}/requests`] ?? 0;

describe("metrics on one thread", () => {
  for (const engine of ENGINES) {
    it(`count every request by server, service and client (${engine})`, async () => {
      const users = await startUpstream("users", (req, res) => {
        res.writeHead(req.url === "/fail" ? 503 : 200, { "content-type": "text/plain" });
        res.end("ok");
      });
      const l = await startLintel(fsEdgeConfig({ workers: 0, engine }), {
        "disco/users": `127.0.0.1 ${users.port}\n`,
        "disco/dead": `127.0.0.1 ${await deadPort()}\n`,
      });
      const port = l.port();
      const statuses: number[] = [];
      const send = async (host: string, path = "/") =>
        statuses.push((await call(port, { headers: { host }, path })).status);
      for (let i = 0; i < 4; i++) await send("users");
      await send("users", "/fail");
      for (let i = 0; i < 3; i++) await send("dead");
      for (let i = 0; i < 2; i++) await send("nobody");
      expect(statuses).toEqual([200, 200, 200, 200, 503, 502, 502, 502, 502, 502]);

      const m = await metricsJson(l);
      const server = `rt/edge/server/127.0.0.1/${port}`;
      const expected: Json = {
        [`${server}/requests`]: 10,
        [`${server}/success`]: 4,
        [`${server}/failures`]: 6,
        [`${server}/failures/LINTEL_CONNECT`]: 3,
        [`${server}/failures/LINTEL_NO_ROUTE`]: 2,
        [`${server}/status/200`]: 4,
        [`${server}/status/503`]: 1,
        [`${server}/status/502`]: 5,
        [`${server}/status/2XX`]: 4,
        [`${server}/status/5XX`]: 6,
        [`${server}/request_latency_ms.count`]: 10,
        [`${server}/load`]: 0,
        "rt/edge/service/svc/users/requests": 5,
        "rt/edge/service/svc/users/success": 4,
        "rt/edge/service/svc/users/failures": 1,
        "rt/edge/service/svc/users/status/503": 1,
        "rt/edge/service/svc/users/request_latency_ms.count": 5,
        "rt/edge/service/svc/dead/requests": 3,
        "rt/edge/service/svc/dead/failures": 3,
        "rt/edge/service/svc/dead/failures/LINTEL_CONNECT": 3,
        "rt/edge/service/svc/nobody/requests": 2,
        "rt/edge/service/svc/nobody/failures": 2,
        "rt/edge/service/svc/nobody/failures/LINTEL_NO_ROUTE": 2,
        "rt/edge/client/#/io.l5d.fs/users/requests": 5,
        "rt/edge/client/#/io.l5d.fs/users/success": 4,
        "rt/edge/client/#/io.l5d.fs/users/failures": 1,
        "rt/edge/client/#/io.l5d.fs/users/status/200": 4,
        "rt/edge/client/#/io.l5d.fs/users/status/5XX": 1,
        "rt/edge/client/#/io.l5d.fs/dead/requests": 3,
        "rt/edge/client/#/io.l5d.fs/dead/success": 0,
        "rt/edge/client/#/io.l5d.fs/dead/status/502": 3,
        "rt/edge/client/#/io.l5d.fs/dead/failures/LINTEL_CONNECT": 3,
        // One keep-alive connection carried the 5 requests, and is still open.
        "rt/edge/client/#/io.l5d.fs/users/connects": 1,
        "rt/edge/client/#/io.l5d.fs/users/connections": 1,
        "rt/edge/client/#/io.l5d.fs/dead/connects": 0,
        "rt/edge/client/#/io.l5d.fs/dead/connections": 0,
        "rt/edge/bindcache/path/misses": 3,
        "process/workers": 0,
        "process/workers_live": 0,
        "process/worker_restarts": 0,
      };
      for (const [k, v] of Object.entries(expected)) expect({ [k]: m[k] }).toEqual({ [k]: v });
      // A name that does not bind has no client.
      expect(Object.keys(m).filter((k) => k.includes("/client/#/io.l5d.fs/nobody"))).toEqual([]);
      expect(m[`${server}/status/2XX`]).toBe(m[`${server}/success`]);
      const latency = (f: string) => m[`${server}/request_latency_ms.${f}`]!;
      expect(latency("min")).toBeGreaterThan(0);
      expect(latency("p50")).toBeGreaterThanOrEqual(latency("min"));
      expect(latency("p99")).toBeGreaterThanOrEqual(latency("p50"));
      expect(latency("max")).toBeGreaterThanOrEqual(latency("p9990"));
      expect(latency("sum")).toBeGreaterThanOrEqual(latency("max"));
      expect(m["process/uptime_ms"]).toBeGreaterThan(0);

      const p = await prometheus(l);
      const srv = `rt="edge", server="127.0.0.1/${port}"`;
      const agree: [string, string][] = [
        [`rt:server:requests{${srv}}`, `${server}/requests`],
        [`rt:server:success{${srv}}`, `${server}/success`],
        [`rt:server:failures{${srv}}`, `${server}/failures`],
        [`rt:server:failures:LINTEL_CONNECT{${srv}}`, `${server}/failures/LINTEL_CONNECT`],
        [`rt:server:status:502{${srv}}`, `${server}/status/502`],
        [`rt:server:status:2XX{${srv}}`, `${server}/status/2XX`],
        [`rt:server:load{${srv}}`, `${server}/load`],
        [`rt:server:request_latency_ms_count{${srv}}`, `${server}/request_latency_ms.count`],
        [`rt:server:request_latency_ms_sum{${srv}}`, `${server}/request_latency_ms.sum`],
        [
          `rt:server:request_latency_ms{${srv}, quantile="0.99"}`,
          `${server}/request_latency_ms.p99`,
        ],
        [`rt:server:request_latency_ms{${srv}, quantile="1"}`, `${server}/request_latency_ms.max`],
        [
          'rt:service:requests{rt="edge", service="svc/users"}',
          "rt/edge/service/svc/users/requests",
        ],
        [
          'rt:service:failures:LINTEL_NO_ROUTE{rt="edge", service="svc/nobody"}',
          "rt/edge/service/svc/nobody/failures/LINTEL_NO_ROUTE",
        ],
        [
          'rt:client:status:5XX{rt="edge", client="#/io.l5d.fs/users"}',
          "rt/edge/client/#/io.l5d.fs/users/status/5XX",
        ],
        ['rt:bindcache:path:misses{rt="edge"}', "rt/edge/bindcache/path/misses"],
        ["process:workers", "process/workers"],
      ];
      for (const [prom, flat] of agree) {
        expect({ [prom]: p.get(prom) }).toEqual({ [prom]: m[flat] });
      }
      // Every metric of metrics.json is in the Prometheus text, and nothing more: counters
      // and gauges one sample each, histograms 8 quantiles, _sum and _count as a summary,
      // and 15 buckets, +Inf, _sum and _count as a histogram in seconds.
      const single = Object.keys(m).filter((k) => !/\.(count|sum|avg|min|max|p\d+)$/.test(k));
      const histograms = Object.keys(m).filter((k) => k.endsWith("request_latency_ms.count"));
      expect(p.size).toBe(single.length + histograms.length * (10 + 18));
    });
  }
});

describe("metrics over workers", () => {
  it("add up every worker's requests", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(fsEdgeConfig({ workers: 2 }), {
      "disco/users": `127.0.0.1 ${users.port}\n`,
    });
    const port = l.port();
    const replies = await burst(port, 40);
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    // The workers report every second.
    let m: Json = {};
    await eventually(
      async () => {
        m = await metricsJson(l);
        return serverRequests(m, port) === 40;
      },
      3000,
      "metrics.json to count the 40 requests",
    );
    expect(m[`rt/edge/server/127.0.0.1/${port}/success`]).toBe(40);
    expect(m[`rt/edge/server/127.0.0.1/${port}/request_latency_ms.count`]).toBe(40);
    expect(m["rt/edge/service/svc/users/requests"]).toBe(40);
    expect(m["rt/edge/client/#/io.l5d.fs/users/status/200"]).toBe(40);
    expect(m["process/workers"]).toBe(2);
    expect(m["process/workers_live"]).toBe(2);
    // Both workers took some of them.
    await eventually(
      () => l.runtime.pool!.stats.reduce((n, s) => n + s.requests, 0) === 40,
      3000,
      "both workers to report",
    );
    const perWorker = l.runtime.pool!.stats.map((s) => s.requests);
    expect(perWorker).toHaveLength(2);
    for (const n of perWorker) expect(n).toBeGreaterThan(0);
    const p = await prometheus(l);
    expect(p.get(`rt:server:requests{rt="edge", server="127.0.0.1/${port}"}`)).toBe(40);
  });

  it("do not go down when a worker dies and is replaced", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(
      fsEdgeConfig({
        workers: 2,
        plugins: "plugins: [crashy.mjs]",
        extra: "  identifier: {kind: test.crashy}",
      }),
      { "disco/users": `127.0.0.1 ${users.port}\n`, "crashy.mjs": CRASHY_PLUGIN },
    );
    const port = l.port();
    let sent = 0;
    await eventually(
      async () => {
        sent += (await burst(port, 16)).length;
        const stats = l.runtime.pool!.stats;
        return stats.every((s) => s.requests > 0);
      },
      8000,
      "every worker to serve requests",
    );
    await eventually(
      async () => serverRequests(await metricsJson(l), port) === sent,
      3000,
      "metrics.json to count every request",
    );
    // From here on, the total must never go down.
    const seen: number[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        seen.push(serverRequests(await metricsJson(l), port));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // Stop watching when the test ends, whether it passes or not.
    onCleanup(async () => {
      watching = false;
      await watcher.catch(() => undefined);
    });
    await call(port, { headers: { host: "users", "x-crash": "1" } }).catch(() => undefined);
    await eventually(() => l.runtime.pool!.readyCount === 1, 5000, "a worker to crash");
    expect(serverRequests(await metricsJson(l), port)).toBeGreaterThanOrEqual(sent);
    const during = await burst(port, 12);
    expect(during.map((r) => r.status)).toEqual(during.map(() => 200));
    await eventually(() => l.runtime.pool!.readyCount === 2, 8000, "the worker to be replaced");
    // The request that crashed its worker may or may not have been counted.
    await eventually(
      async () => serverRequests(await metricsJson(l), port) >= sent + 12,
      3000,
      "metrics.json to count the requests after the crash",
    );
    watching = false;
    await watcher;
    const last = serverRequests(await metricsJson(l), port);
    expect(last - sent).toBeGreaterThanOrEqual(12);
    expect(last - sent).toBeLessThanOrEqual(13);
    expect(seen.length).toBeGreaterThan(5);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen[0]).toBe(sent);
    const m = await metricsJson(l);
    expect(m["process/worker_restarts"]).toBe(1);
    expect(m["process/workers_live"]).toBe(2);
  });
});
