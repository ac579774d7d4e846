// `lintel stat` and `lintel tap` against a real lintel (its admin server, its threads):
// known traffic (30 requests, 10 answered 500 by the backend) read back as success rate,
// rate and interval percentiles, and as tapped lines; tap's filters, its rate bound
// (dropped requests counted), and the threads' flow stopping once the last tap closes.
// Once with two uws workers serving, once with the default engine on the control thread.

import { afterEach, describe, expect, it } from "vitest";
import { TAP_LEASE_MS, TapHub } from "../../gateway/admin/tap-hub.js";
import { main } from "../../gateway/cli/main.js";
import { type StatOptions, statCommand } from "../../gateway/cli/stat.js";
import { type TapOptions, tapCommand } from "../../gateway/cli/tap.js";
import { Registry } from "../../gateway/telemetry/index.js";
import { TapPoint } from "../../gateway/telemetry/tap-point.js";
import {
  call,
  cleanup,
  eventually,
  freePort,
  fsEdgeConfig,
  type Lintel,
  metricsJson,
  startLintel,
  startUpstream,
} from "../e2e/harness.js";

afterEach(cleanup);

/** How long the backend takes per request: the percentiles cannot be below it. */
const BACKEND_DELAY_MS = 5;
/** How long it takes for /slow/*: traffic before stat's interval, which it must not show. */
const SLOW_DELAY_MS = 300;

/** lintel with router `edge` sending host `web` to a backend that answers /fail/* with 500. */
async function startWeb(o: { workers: number; engine: "uws" | "net" }): Promise<Lintel> {
  const up = await startUpstream("web", (req, res) => {
    const delay = req.url!.startsWith("/slow/") ? SLOW_DELAY_MS : BACKEND_DELAY_MS;
    setTimeout(() => {
      res.writeHead(req.url!.startsWith("/fail/") ? 500 : 200, { "content-type": "text/plain" });
      res.end("web\n");
    }, delay);
  });
  // The 500s must reach every test's client: no failure accrual marking the backend dead.
  const extra = "  client:\n    failureAccrual: {kind: none}";
  return startLintel(fsEdgeConfig({ ...o, extra }), { "disco/web": `127.0.0.1 ${up.port}\n` });
}

/** 20 requests to /ok/<i> and 10 to /fail/<i>, each on its own connection (spread over workers). */
async function knownTraffic(l: Lintel): Promise<void> {
  const port = l.port();
  const replies = await Promise.all([
    ...Array.from({ length: 20 }, (_, i) =>
      call(port, { path: `/ok/${i}`, headers: { host: "web" } }),
    ),
    ...Array.from({ length: 10 }, (_, i) =>
      call(port, { path: `/fail/${i}`, headers: { host: "web" } }),
    ),
  ]);
  expect(replies.filter((r) => r.status === 500)).toHaveLength(10);
}

/** A command running in the background: what it printed, its exit code, and how to stop it. */
function background(run: (out: (s: string) => void, signal: AbortSignal) => Promise<number>) {
  const lines: string[] = [];
  const stop = new AbortController();
  const done = run((s) => lines.push(s), stop.signal);
  return { lines, done, stop: () => stop.abort() };
}

const stat = (l: Lintel, o: Partial<StatOptions> = {}) =>
  background((out, signal) =>
    statCommand(
      {
        admin: `127.0.0.1:${l.adminPort}`,
        intervalS: 2,
        json: true,
        watch: false,
        clients: false,
        ...o,
      },
      out,
      signal,
    ),
  );

const tap = (l: Lintel, o: Partial<TapOptions> = {}) =>
  background((out, signal) =>
    tapCommand({ admin: `127.0.0.1:${l.adminPort}`, json: true, ...o }, out, signal),
  );

interface TapLine {
  readonly type: "request" | "dropped";
  readonly router: string;
  readonly method: string;
  readonly host: string;
  readonly url: string;
  readonly service: string;
  readonly client: string;
  readonly status: number;
  readonly durationMs: number;
  readonly worker: number | "control";
  readonly count: number;
}

const parsed = (lines: readonly string[]) => lines.map((s) => JSON.parse(s) as TapLine);
const requestsOf = (lines: readonly string[]) => parsed(lines).filter((l) => l.type === "request");

/** Waits until every thread serving requests filters for `n` taps (workers report each second). */
async function tapsOpen(l: Lintel, threads: number, n: number): Promise<void> {
  await eventually(
    async () => ((await metricsJson(l))["tap/open"] ?? 0) === threads * n,
    5000,
    `${n} taps open in ${threads} threads`,
  );
}

describe.each([
  { workers: 2, engine: "uws" as const, threads: 2 },
  { workers: 0, engine: "net" as const, threads: 1 },
])("stat and tap with $engine servers, $workers workers", ({ workers, engine, threads }) => {
  it("stat: success rate, rate and interval percentiles of the traffic sent; '-' without traffic", async () => {
    const l = await startWeb({ workers, engine });
    // Slow traffic before the interval: stat must count none of it, nor its latency.
    const slow = Array.from({ length: 40 }, (_, i) =>
      call(l.port(), { path: `/slow/${i}`, headers: { host: "web" } }),
    );
    expect((await Promise.all(slow)).every((r) => r.status === 200)).toBe(true);
    await new Promise((r) => setTimeout(r, 1200));
    const s = stat(l, { intervalS: 3, clients: true });
    await new Promise((r) => setTimeout(r, 300));
    await knownTraffic(l);
    expect(await s.done).toBe(0);
    const shown = JSON.parse(s.lines.join("\n")) as {
      rows: {
        router: string;
        kind: string;
        name: string;
        requests: number;
        successRate: number | null;
        rps: number;
        p50Ms: number;
        p95Ms: number;
        p99Ms: number;
      }[];
    };
    const web = shown.rows.find((r) => r.kind === "service" && r.name === "/svc/web")!;
    expect(web).toMatchObject({ router: "edge", requests: 30 });
    expect(web.successRate).toBeCloseTo(20 / 30, 5);
    // 30 requests over an interval of 3 s and a bit (the two page reads).
    expect(web.rps).toBeGreaterThanOrEqual(7);
    expect(web.rps).toBeLessThanOrEqual(10);
    expect(web.p50Ms).toBeGreaterThanOrEqual(BACKEND_DELAY_MS * 0.9);
    // Since start, most requests took SLOW_DELAY_MS: the interval's median did not.
    expect(web.p50Ms).toBeLessThan(SLOW_DELAY_MS / 2);
    expect(web.p50Ms).toBeLessThanOrEqual(web.p95Ms);
    expect(web.p95Ms).toBeLessThanOrEqual(web.p99Ms);
    expect(web.p99Ms).toBeLessThan(2000);
    const client = shown.rows.find((r) => r.kind === "client")!;
    expect(client).toMatchObject({ name: "/#/io.l5d.fs/web", requests: 30 });

    // No traffic in the interval: "-", not 0 % success.
    const idle = stat(l, { intervalS: 1, json: false });
    expect(await idle.done).toBe(0);
    const row = idle.lines
      .join("\n")
      .split("\n")
      .find((line) => line.includes("/svc/web"));
    expect(row).toMatch(/^edge\s+\/svc\/web\s+-\s+-\s+-\s+-\s+-$/);
  });

  it("tap: every request with its status and path; --status 5xx and --path filter; threads stop sending once closed", async () => {
    const l = await startWeb({ workers, engine });
    const all = tap(l, { max: 30 });
    const failures = tap(l, { status: "5xx", max: 10 });
    const ok = tap(l, { path: "/ok/", max: 20 });
    await tapsOpen(l, threads, 3);
    await knownTraffic(l);
    expect(await all.done).toBe(0);
    expect(await failures.done).toBe(0);
    expect(await ok.done).toBe(0);

    const seen = requestsOf(all.lines);
    expect(seen).toHaveLength(30);
    for (const r of seen) {
      expect(r).toMatchObject({ router: "edge", method: "GET", host: "web", service: "/svc/web" });
      expect(r.client).toBe("/#/io.l5d.fs/web");
      expect(r.status).toBe(r.url.startsWith("/fail/") ? 500 : 200);
      expect(r.durationMs).toBeGreaterThanOrEqual(BACKEND_DELAY_MS * 0.9);
      if (workers > 0) expect(typeof r.worker).toBe("number");
      else expect(r.worker).toBe("control");
    }
    expect(new Set(seen.map((r) => r.url)).size).toBe(30);
    const failed = requestsOf(failures.lines);
    expect(failed).toHaveLength(10);
    for (const r of failed)
      expect(r).toMatchObject({ status: 500, url: expect.stringMatching(/^\/fail\//) });
    const fine = requestsOf(ok.lines);
    expect(fine).toHaveLength(20);
    for (const r of fine)
      expect(r).toMatchObject({ status: 200, url: expect.stringMatching(/^\/ok\//) });

    // Every tap closed: the threads know, and send nothing more however much traffic comes.
    await tapsOpen(l, threads, 0);
    const sent = (await metricsJson(l))["tap/sent"]!;
    expect(sent).toBeGreaterThanOrEqual(60);
    await knownTraffic(l);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await metricsJson(l))["tap/sent"]).toBe(sent);
    const gone = await call(l.adminPort, { path: "/admin/tap?id=1" });
    expect(gone.status).toBe(404);
    expect(gone.text).toContain("no tap 1 is open");
  });

  it("tap: over --rate a second, requests are dropped and counted", async () => {
    const l = await startWeb({ workers, engine });
    const slow = tap(l, { rate: 5 });
    await tapsOpen(l, threads, 1);
    // 60 requests in well under a second, each matched: shown or counted as dropped.
    await knownTraffic(l);
    await knownTraffic(l);
    const tally = () => {
      const lines = parsed(slow.lines);
      const shown = lines.filter((x) => x.type === "request").length;
      const dropped = lines.filter((x) => x.type === "dropped").reduce((n, x) => n + x.count, 0);
      return { shown, dropped };
    };
    await eventually(
      () => {
        const t = tally();
        return t.shown + t.dropped === 60;
      },
      5000,
      "every request shown or counted as dropped",
    );
    slow.stop();
    expect(await slow.done).toBe(0);
    const { shown, dropped } = tally();
    // At most 5 a second over every thread; the burst may straddle two seconds.
    expect(shown).toBeGreaterThanOrEqual(5);
    expect(shown).toBeLessThanOrEqual(10);
    expect(dropped).toBe(60 - shown);
    // The threads dropped most of them (the hub bounds what they send in total).
    await eventually(
      async () => ((await metricsJson(l))["tap/dropped"] ?? 0) >= 60 - 5 * threads * 2,
      3000,
      "the threads' tap/dropped",
    );
    await tapsOpen(l, threads, 0);
  });
});

describe("stat and tap on the command line", () => {
  it("stat --watch prints each interval until stopped (Ctrl-C)", async () => {
    const l = await startWeb({ workers: 0, engine: "net" });
    const s = stat(l, { intervalS: 0.4, watch: true });
    await eventually(() => s.lines.length >= 3, 5000, "three intervals");
    s.stop();
    expect(await s.done).toBe(0);
    for (const line of s.lines) expect(JSON.parse(line)).toMatchObject({ intervalS: 0.4 });
  });

  it("says what is wrong with an argument, with the usage", async () => {
    const out: string[] = [];
    expect(await main(["stat", "--interval", "soon"], (x) => out.push(x))).toBe(2);
    expect(out.join("\n")).toMatch(/^--interval must be a number of seconds, got "soon"\n\nusage:/);
    out.length = 0;
    expect(await main(["tap", "--max", "0"], (x) => out.push(x))).toBe(2);
    expect(out.join("\n")).toMatch(/^--max must be a whole number above 0, got "0"/);
  });

  it("names an unknown router with the known ones, and an admin address that does not answer", async () => {
    const l = await startWeb({ workers: 0, engine: "net" });
    const s = stat(l, { router: "nope" });
    expect(await s.done).toBe(1);
    expect(s.lines.join("\n")).toBe('no router labelled "nope"; routers: edge');
    const t = tap(l, { router: "nope" });
    expect(await t.done).toBe(1);
    expect(t.lines.join("\n")).toContain('no router labelled "nope"; routers: edge');
    const bad = tap(l, { status: "5x" });
    expect(await bad.done).toBe(1);
    expect(bad.lines.join("\n")).toContain("status must be a status code (404) or class (5xx)");

    const closed = await freePort();
    const out: string[] = [];
    expect(
      await statCommand(
        { admin: `127.0.0.1:${closed}`, intervalS: 1, json: false, watch: false, clients: false },
        (x) => out.push(x),
        new AbortController().signal,
      ),
    ).toBe(1);
    expect(out.join("\n")).toContain(`cannot reach the admin server at 127.0.0.1:${closed}`);
  });
});

describe("the tap hub", () => {
  it("closes a tap whose client stopped polling (killed, say), and the thread stops filtering for it", async () => {
    const point = new TapPoint(new Registry());
    let now = 1_000_000;
    const hub = new TapHub(point, undefined, () => now);
    const left = hub.open({ perSecond: 10 });
    const polled = hub.open({ perSecond: 10, pathPrefix: "/ok/" });
    expect(point.open).toBe(true);
    now += TAP_LEASE_MS + 1;
    expect(await hub.poll(polled, 0)).toEqual({ requests: [], dropped: 0 });
    // The sweep runs every second.
    await eventually(() => hub.size === 1, 3000, "the unpolled tap's lease to end");
    expect(await hub.poll(left, 0)).toBeUndefined();
    expect(point.open).toBe(true);
    expect(hub.close(polled)).toBe(true);
    expect(point.open).toBe(false);
  });
});
