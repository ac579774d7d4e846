// Telemeters, the `telemetry` list: io.l5d.prometheus at its own path with a prefix,
// io.l5d.recentRequests keeping the last requests per thread and merging them over the
// workers, a telemeter a user plugin adds, and the Linkerd telemeters lintel names as
// unsupported.

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkCommand } from "../../gateway/cli/check.js";
import { createLogger } from "../../gateway/log.js";
import { Runtime } from "../../gateway/runtime.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import type { RecentRequestsPage } from "../../gateway/telemeters/recent-requests.js";
import {
  burst,
  call,
  cleanup,
  eventually,
  fsEdgeConfig,
  type Lintel,
  requireBinary,
  startLintel,
  startUpstream,
  tempDir,
} from "./harness.js";

afterEach(cleanup);

const SUITE = "the io.l5d.prometheus telemeter's promtool check";
const promtool = requireBinary("promtool", "prometheus", SUITE);

/** A net-engine edge router on the control thread, with `telemetry` (YAML lines) on top. */
function config(telemetry: string, o: { workers?: number; engine?: "net" | "uws" } = {}) {
  return fsEdgeConfig({
    workers: o.workers ?? 0,
    engine: o.engine ?? "net",
    plugins: telemetry,
  });
}

async function users(): Promise<Record<string, string>> {
  const up = await startUpstream("users");
  return { "disco/users": `127.0.0.1 ${up.port}\n` };
}

async function recentRequests(l: Lintel): Promise<RecentRequestsPage> {
  const r = await call(l.adminPort, { path: "/admin/recentRequests.json" });
  expect(r.status).toBe(200);
  expect(r.headers["content-type"]).toBe("application/json");
  return JSON.parse(r.text) as RecentRequestsPage;
}

/** The metric name of each sample line of a Prometheus text. */
function sampleNames(text: string): string[] {
  return text
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => /^[^{ ]+/.exec(line)![0]);
}

/**
 * What promtool's linter may say about Linkerd's metric names (they keep Linkerd 1's
 * names, so dashboards keep working); anything else, or a parse error, fails.
 */
const LINKERD_NAMING = [
  / counter metrics should have "_total" suffix$/,
  / metric names should not contain ':'$/,
  / no help text$/,
  / metric names should not contain abbreviated units$/,
];

describe("io.l5d.prometheus", () => {
  it("serves the metrics at its path, every name behind its prefix; the default path keeps working", async () => {
    const l = await startLintel(
      config("telemetry:\n- {kind: io.l5d.prometheus, path: /metrics, prefix: linkerd_}"),
      await users(),
    );
    const port = l.port();
    for (let i = 0; i < 3; i++)
      expect((await call(port, { headers: { host: "users" } })).status).toBe(200);
    expect((await call(port, { headers: { host: "nobody" } })).status).toBe(502);

    const r = await call(l.adminPort, { path: "/metrics" });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const names = sampleNames(r.text);
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((n) => !n.startsWith("linkerd_"))).toEqual([]);
    expect(r.text).toContain(
      `linkerd_rt:server:requests{rt="edge",server="127.0.0.1/${port}"} 4\n`,
    );
    expect(r.text).toContain(`# TYPE linkerd_rt:server:requests counter\n`);
    expect(r.text).toContain('linkerd_rt:service:requests{rt="edge",service="svc/users"} 3\n');

    // The admin server's own page, as without a telemeter: the same metrics, unprefixed.
    const plain = await call(l.adminPort, { path: "/admin/metrics/prometheus" });
    expect(plain.status).toBe(200);
    expect(sampleNames(plain.text).filter((n) => n.startsWith("linkerd_"))).toEqual([]);
    expect(plain.text).toContain(`rt:server:requests{rt="edge",server="127.0.0.1/${port}"} 4\n`);

    if (!promtool) return;
    const check = spawnSync(promtool, ["check", "metrics"], { input: r.text, encoding: "utf8" });
    const said = `${check.stdout}${check.stderr}`;
    expect(said).not.toContain("error while linting");
    // 0: nothing to say; 3: lint remarks only (1 is a parse error).
    expect([0, 3]).toContain(check.status);
    const remarks = said.split("\n").filter((line) => line.trim() !== "");
    expect(remarks.filter((line) => !LINKERD_NAMING.some((re) => re.test(line)))).toEqual([]);
  });

  it("at the default path applies its prefix there", async () => {
    const l = await startLintel(
      config("telemetry:\n- {kind: io.l5d.prometheus, prefix: my-app.}"),
      await users(),
    );
    await call(l.port(), { headers: { host: "users" } });
    const r = await call(l.adminPort, { path: "/admin/metrics/prometheus" });
    const names = sampleNames(r.text);
    expect(names.length).toBeGreaterThan(0);
    // Made valid after the prefix is added, as Linkerd 1 does.
    expect(names.filter((n) => !n.startsWith("my_app_"))).toEqual([]);
    expect(names).toContain("my_app_rt:server:requests");
  });
});

describe("io.l5d.recentRequests", () => {
  it("keeps the last `capacity` requests, newest first, with what happened to each", async () => {
    const l = await startLintel(
      config("telemetry:\n- {kind: io.l5d.recentRequests, sampleRate: 1, capacity: 3}"),
      await users(),
    );
    const port = l.port();
    const empty = await recentRequests(l);
    expect(empty.requests).toEqual([]);
    expect(empty.unanswered).toEqual([]);

    const before = Date.now();
    for (let i = 1; i <= 5; i++) {
      expect((await call(port, { path: `/r${i}`, headers: { host: "users" } })).status).toBe(200);
    }
    expect((await call(port, { path: "/lost", headers: { host: "nobody" } })).status).toBe(502);

    const page = await recentRequests(l);
    expect(page.requests.map((r) => r.url)).toEqual(["/lost", "/r5", "/r4"]);
    const [lost, r5] = page.requests;
    expect(r5).toMatchObject({
      worker: "control",
      router: "edge",
      server: `127.0.0.1:${port}`,
      method: "GET",
      url: "/r5",
      host: "users",
      service: "/svc/users",
      client: "/#/io.l5d.fs/users",
      status: 200,
      error: null,
    });
    expect(lost).toMatchObject({
      host: "nobody",
      service: "/svc/nobody",
      client: null,
      status: 502,
      error: "LINTEL_NO_ROUTE",
    });
    for (const r of page.requests) {
      expect(Date.parse(r.time)).toBeGreaterThanOrEqual(before - 1);
      expect(Date.parse(r.time)).toBeLessThanOrEqual(Date.now());
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
      expect(r.durationMs).toBeLessThan(5000);
    }
  });

  it("with sampleRate 0 keeps none, and no router observes", async () => {
    const l = await startLintel(
      config("telemetry:\n- {kind: io.l5d.recentRequests, sampleRate: 0}"),
      await users(),
    );
    expect(l.runtime.telemeters?.observer).toBeUndefined();
    for (let i = 0; i < 5; i++) await call(l.port(), { headers: { host: "users" } });
    expect((await recentRequests(l)).requests).toEqual([]);
  });

  it("without telemeters, nothing observes requests and the page is not served", async () => {
    const l = await startLintel(config(""), await users());
    expect(l.runtime.telemeters?.observer).toBeUndefined();
    expect((await call(l.adminPort, { path: "/admin/recentRequests.json" })).status).toBe(404);
  });

  it("with workers, merges what each worker kept", async () => {
    const l = await startLintel(
      config("telemetry:\n- {kind: io.l5d.recentRequests, sampleRate: 1, capacity: 1000}", {
        workers: 2,
        engine: "uws",
      }),
      await users(),
    );
    const port = l.port();
    let sent = 0;
    let page: RecentRequestsPage | undefined;
    await eventually(
      async () => {
        sent += (await burst(port, 12)).length;
        page = await recentRequests(l);
        return new Set(page.requests.map((r) => r.worker)).size === 2;
      },
      8000,
      "both workers' requests on the page",
    );
    expect(page!.unanswered).toEqual([]);
    expect(page!.requests).toHaveLength(sent);
    expect(new Set(page!.requests.map((r) => r.worker))).toEqual(new Set([0, 1]));
    // Newest (last finished) first over both workers; the page's times are to the ms.
    const ends = page!.requests.map((r) => Date.parse(r.time) + r.durationMs);
    for (let i = 1; i < ends.length; i++) expect(ends[i]!).toBeLessThanOrEqual(ends[i - 1]! + 2);
    expect(page!.requests.every((r) => r.status === 200 && r.service === "/svc/users")).toBe(true);
  });
});

/** A telemeter plugin that records each request it sees and serves them at `path`. */
const SPY_PLUGIN = `export default (lintel) => [
  lintel.definePlugin({
    category: "telemeter",
    kind: "test.spy",
    schema: lintel.schema.object({ path: lintel.schema.def(lintel.schema.string(), "/spy.json") }),
    create(config, ctx) {
      const seen = [];
      return {
        observe(r) { seen.push(r.method + " " + r.url + " " + r.status + " " + r.service); },
        threadState: () => seen,
        adminRoutes: [{
          path: config.path,
          async serve(req) {
            return { contentType: "application/json", body: JSON.stringify(await req.threads()) };
          },
        }],
      };
    },
  }),
  lintel.definePlugin({
    category: "telemeter",
    kind: "test.broken",
    schema: lintel.schema.object({}),
    create: () => ({ observe() { throw new Error("telemeter bug"); } }),
  }),
];
`;

describe("a user telemeter plugin", () => {
  it("observes every request a router finishes and serves its own page", async () => {
    const l = await startLintel(
      config("plugins: [spy.mjs]\ntelemetry:\n- {kind: test.broken}\n- {kind: test.spy}"),
      { ...(await users()), "spy.mjs": SPY_PLUGIN },
    );
    const port = l.port();
    expect((await call(port, { path: "/a", headers: { host: "users" } })).status).toBe(200);
    expect((await call(port, { path: "/b", headers: { host: "users" } })).status).toBe(200);
    expect((await call(port, { path: "/c", headers: { host: "nobody" } })).status).toBe(502);
    const r = await call(l.adminPort, { path: "/spy.json" });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual([
      {
        worker: "control",
        state: ["GET /a 200 /svc/users", "GET /b 200 /svc/users", "GET /c 502 /svc/nobody"],
      },
    ]);
    // The broken telemeter neither broke the requests nor the other telemeter: logged once.
    const failures = l.logs.filter((x) => x.includes("telemeter failed observing a request"));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain("telemeter=test.broken");
  });

  it("may not take a page of the admin server's own: lintel does not start", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "disco"));
    writeFileSync(join(dir, "spy.mjs"), SPY_PLUGIN);
    writeFileSync(
      join(dir, "lintel.yaml"),
      `plugins: [spy.mjs]\ntelemetry:\n- {kind: test.spy, path: /admin/metrics.json}\n${config("")}`,
    );
    const loaded = await loadLintelConfig(join(dir, "lintel.yaml"));
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    await expect(
      Runtime.start(loaded.config, { log: createLogger({ sink: () => {} }) }),
    ).rejects.toThrow(
      "telemetry[0] (test.spy): /admin/metrics.json is one of the admin server's own pages",
    );
  });
});

describe("lintel check", () => {
  it("names the Linkerd telemeters lintel does not have as unsupported", async () => {
    const dir = tempDir();
    const file = join(dir, "l5d.yaml");
    writeFileSync(file, "telemetry:\n- kind: io.l5d.tracelog\nrouters:\n- protocol: http\n");
    const lines: string[] = [];
    expect(await checkCommand([file], (s) => lines.push(s))).toBe(1);
    expect(lines).toEqual([
      `${file}: 1 error`,
      '  telemetry[0].kind: telemeter kind "io.l5d.tracelog" is not supported: the trace log telemeter is not supported (line 2)',
    ]);
  });
});
