// `npm run bench`: lintel next to HAProxy, nginx and Caddy, measured in the same run on
// the same machine. A fast backend (HAProxy answering from memory), HAProxy, nginx and
// Caddy as proxies (one thread or worker each, keep-alive to the backend; nginx and Caddy
// are skipped, with the reason, when not installed) and lintel (one thread; the engines
// of LINTEL_ENGINES) run on loopback; wrk drives each target with the same connections
// and duration, in interleaved rounds. Each row also gives the CPU time the proxy spent
// per request, which stays meaningful when the load generator, not the proxy, sets the
// pace (the handshake row on a small machine). The latency row drives each target at a
// fixed rate with h2load instead (lib/openloop.ts says why); the h2 row drives the TLS
// listeners with h2load over HTTP/2 (lib/h2load.ts), the websocket row a WebSocket echo
// server through each proxy with a Node load generator (lib/ws-load.ts, lib/ws-echo.ts).
// Prints a table per row and writes loadtest/results/latest.json (latest-<rows>.json when
// only some rows ran).
//
//   npm run bench -- [--quick] [--rows plaintext,tls,handshake,egress,large,h2,websocket,policy,compression,tracing,latency]
//                    [--profile ROW] [--workers N] [--scaling] [--latency-rate REQ_PER_S]
//                    [--duration S] [--connections N] [--body BYTES] [--rounds N]
//   npm run bench -- --soak [--soak-minutes N] [--soak-rate REQ_PER_S]   (soak.ts)

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpGet, type IncomingMessage } from "node:http";
import { connect as http2Connect } from "node:http2";
import { get as httpsGet } from "node:https";
import { cpus, release, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import WebSocket from "ws";
import { JWT_FIELD, makeAuthFixtures } from "./lib/auth-fixtures.js";
import { caddyLaunch } from "./lib/caddy.js";
import { type BenchCert, makeBenchCert } from "./lib/certs.js";
import { runH2Load } from "./lib/h2load.js";
import { runHandshakes } from "./lib/handshakes.js";
import { backendConfig, proxyConfig } from "./lib/haproxy.js";
import { nginxLaunch } from "./lib/nginx.js";
import { h2loadUsable, type OpenLoopResult, runOpenLoop } from "./lib/openloop.js";
import { checkPeer, type PeerLaunch, type PeerOptions } from "./lib/peers.js";
import {
  commandExists,
  cpuSeconds,
  freePort,
  type Proc,
  rssKb,
  start,
  stopAll,
  waitForPort,
} from "./lib/processes.js";
import { formatSummary, type HotSpot, profileWhile } from "./lib/profile.js";
import { runWrk } from "./lib/wrk.js";
import { runWsLoad } from "./lib/ws-load.js";
import { runSoak } from "./soak.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const resultsDir = join(root, "loadtest/results");
const lintelBin = join(root, "bin/lintel.js");

const ROW_NAMES = [
  "plaintext",
  "tls",
  "handshake",
  "egress",
  "large",
  "h2",
  "websocket",
  "policy",
  "protection",
  "compression",
  "tracing",
  "latency",
] as const;
type RowName = (typeof ROW_NAMES)[number];
/**
 * lintel's engines, each measured as target `lintel-<engine>` on every row but policy
 * (uws only): one server per engine in each router of the bench's config. Adding an
 * engine here is all the bench needs to measure it.
 */
const LINTEL_ENGINES = ["uws", "net"] as const;
type Engine = (typeof LINTEL_ENGINES)[number];
/** The engines that serve HTTP/2 (ALPN h2 on their TLS servers): the h2 row's lintel targets. */
const H2_ENGINES: readonly Engine[] = LINTEL_ENGINES.filter((e) => e === "net");
/** The engines that tunnel Upgrade requests (uws does not): the websocket row's lintel targets. */
const WS_ENGINES: readonly Engine[] = LINTEL_ENGINES.filter((e) => e !== "uws");
/**
 * The other proxies measured beside HAProxy on every row but policy, each one thread (or
 * --workers N) on the proxies' cores, with a config of the bench's own (lib/nginx.ts,
 * lib/caddy.ts). A peer whose binary is missing is skipped with the reason.
 */
const PEERS = [
  {
    name: "nginx",
    pkg: "nginx",
    versionArgs: ["-v"],
    launch: nginxLaunch,
    threadsAs: (n: number) => `worker_processes ${n}`,
  },
  {
    name: "caddy",
    pkg: "caddy",
    versionArgs: ["version"],
    launch: caddyLaunch,
    threadsAs: (n: number) => `GOMAXPROCS=${n}`,
  },
] as const;
type PeerName = (typeof PEERS)[number]["name"];
/** The protection row's rate limit: per client address, far above any rate measured here. */
const RATE_LIMIT_LAYER = "{kind: rateLimit, requests: 100000000, intervalSecs: 1}";

/** The rows the peers take part in (policy measures lintel's own resilience settings). */
const PEER_ROWS: readonly RowName[] = [
  "plaintext",
  "tls",
  "handshake",
  "egress",
  "large",
  "h2",
  "websocket",
  "latency",
];
/** The project's targets per throughput row: lintel >= 0.8 x HAProxy and >= 1.0 x nginx. */
const GOAL_VS_HAPROXY = 0.8;
const GOAL_VS_NGINX = 1.0;
const LARGE_BODY = 64 * 1024;
/**
 * The tracing row's lintels, each a process of its own with the same one-router config:
 * no tracer, and an io.l5d.zipkin telemeter sampling 1% and 100% of requests, exporting to
 * a collector that discards (lib/discard-collector.ts).
 */
const TRACING_TARGETS = [
  { target: "lintel-net", sampleRate: undefined },
  { target: "lintel-net-zipkin-1pct", sampleRate: 0.01 },
  { target: "lintel-net-zipkin-100pct", sampleRate: 1.0 },
] as const;

/** The compression row: a JSON body of about this size, as an API answers. */
const COMPRESSION_BODY = 16 * 1024;
/** The compression row's compressing lintel servers: gzip only, brotli only (default levels). */
const COMPRESSION_LAYERS = {
  gzip: "[{kind: compression, encodings: [gzip]}]",
  br: "[{kind: compression, encodings: [br]}]",
} as const;
/** The issue's target for the latency row: p99 added over direct, at half HAProxy's peak. */
const P99_ADDED_TARGET_MS = 1;
/**
 * The target that is Node itself answering, nothing proxied (lib/node-ceiling.ts): the
 * most an engine on node:tls / node:http2 can serve on the handshake and h2 rows.
 */
const NODE_CEILING = "node-ceiling";

/** The h2 row's load: h2load connections and concurrent streams on each. */
const H2_CLIENTS = 16;
const H2_STREAMS = 16;
/** The websocket row's load: connections, each with one message in flight, and its size. */
const WS_CONNECTIONS = 64;
const WS_MESSAGE_BYTES = 64;

interface Target {
  readonly name: string;
  readonly url: string;
  /** The process serving it, checked between rounds. */
  readonly proc: Proc;
}

/** One run of a row's load on a target (wrk's, h2load's or the WebSocket generator's). */
interface LoadResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Requests (or WebSocket round trips) completed. */
  readonly requests: number;
}

interface Scenario {
  readonly row: RowName;
  readonly name: string;
  readonly what: string;
  readonly targets: readonly Target[];
  readonly bodyBytes: number;
  readonly connections?: number;
  readonly headers?: Record<string, string>;
  /** The row's own load (default: wrk with `connections` and `headers`). */
  readonly drive?: (t: Target, seconds: number) => Promise<LoadResult>;
  /**
   * The row's own check of each target before its warm-up (instead of the HTTP GET every
   * other row's targets get): undefined when it serves the row, else what is wrong, and
   * the row fails.
   */
  readonly probe?: (t: Target) => Promise<string | undefined>;
  /** What the rate counts, in the table's header (default "req"). */
  readonly unit?: string;
}

/** A row that cannot be measured as asked (the h2 row's non-2xx answers): said loudly. */
class RowFailed extends Error {}

/** The listeners lintel gives each engine, and each peer has: one per row kind. */
interface Listeners {
  readonly plain: number;
  readonly tls: number;
  readonly egress: number;
  readonly large: number;
  /** The websocket row (lintel: only the engines of WS_ENGINES listen there). */
  readonly ws: number;
}

/** What became of a peer (nginx, Caddy) in this run, for the output and latest.json. */
interface PeerStatus {
  readonly status: "ran" | "skipped";
  readonly reason?: string;
  /** nginx worker_processes, Caddy GOMAXPROCS. */
  readonly threads?: number;
}

interface Row {
  readonly row: RowName;
  readonly name: string;
  readonly target: string;
  readonly rps: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly min_rps: number;
  readonly max_rps: number;
  readonly errors: number;
  /** CPU time the proxy (or backend, for direct) spent per request, in microseconds. */
  readonly cpu_us_per_req: number;
  /** Response bodies delivered per second, in MB (10^6 bytes). */
  readonly body_mb_per_s: number;
}

interface LatencyRow {
  readonly target: string;
  readonly rate: number;
  readonly achieved_rps: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly p999_ms: number;
  readonly max_ms: number;
  /** Median over rounds of (this target's p99 - direct's p99 in the same round). */
  readonly p99_added_ms?: number;
  /** Share of responses slower than the per-connection interval (see lib/openloop.ts). */
  readonly late_pct: number;
  readonly errors: number;
  /** CPU the serving process used, as a share of one core. */
  readonly cpu_pct: number;
  /** Every round achieved at least 97% of the rate and finished in time. */
  readonly held_rate: boolean;
}

interface Options {
  readonly quick: boolean;
  readonly durationS: number;
  readonly connections: number;
  readonly bodyBytes: number;
  readonly rounds: number;
  readonly warmupS: number;
  readonly rows: readonly RowName[];
  readonly profile?: RowName;
  readonly workers?: number;
  readonly scaling: boolean;
  readonly latencyRate?: number;
  /** --soak: the soak run (soak.ts) instead of the rows, this many minutes. */
  readonly soakMinutes?: number;
  readonly soakRate?: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first line a tool prints about its version (wrk prints it and exits 1). */
function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n")[0]!.trim() || "unknown";
}

/** CPU list "a-b" (or "a") for cores from..to. */
const cpuList = (from: number, to: number) => (from === to ? `${from}` : `${from}-${to}`);

/** Busy and total jiffies of the given cores (all when undefined), from /proc/stat. */
function cpuTimes(list?: string): { busy: number; total: number } {
  const wanted = new Set<number>();
  if (list)
    for (const part of list.split(",")) {
      const [a, b] = part.split("-").map(Number) as [number, number?];
      for (let c = a; c <= (b ?? a); c++) wanted.add(c);
    }
  let busy = 0;
  let total = 0;
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m || (list && !wanted.has(Number(m[1])))) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    const sum = f.slice(0, 8).reduce((s, x) => s + x, 0);
    total += sum;
    busy += sum - f[3]! - f[4]!; // less idle and iowait
  }
  return { busy, total };
}

function usage(): string {
  return `usage: npm run bench -- [--quick] [--rows ${ROW_NAMES.join(",")}] [--profile ROW]
       [--workers N] [--scaling] [--latency-rate REQ_PER_S]
       [--duration S] [--connections N] [--body BYTES] [--rounds N]
       npm run bench -- --soak [--soak-minutes N (60)] [--soak-rate REQ_PER_S]`;
}

function parseOptions(): Options | string {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: "boolean" },
        duration: { type: "string" },
        connections: { type: "string" },
        body: { type: "string" },
        rounds: { type: "string" },
        rows: { type: "string" },
        profile: { type: "string" },
        workers: { type: "string" },
        scaling: { type: "boolean" },
        "latency-rate": { type: "string" },
        soak: { type: "boolean" },
        "soak-minutes": { type: "string" },
        "soak-rate": { type: "string" },
      },
    }));
  } catch (e) {
    return (e as Error).message;
  }
  const str = (k: string) => values[k] as string | undefined;
  const num = (k: string, dflt: number, min: number): number | string => {
    const v = str(k);
    if (v === undefined) return dflt;
    const n = Number(v);
    return Number.isInteger(n) && n >= min ? n : `--${k} wants an integer >= ${min}, not ${v}`;
  };
  const quick = values.quick === true;
  const scaling = values.scaling === true;
  const durationS = num("duration", quick ? 3 : 10, 1);
  const connections = num("connections", 64, 1);
  const bodyBytes = num("body", 64, 1);
  const rounds = num("rounds", quick ? 2 : 3, 1);
  const workers = num("workers", 0, 1);
  const latencyRate = num("latency-rate", 0, 1);
  const soakMinutes = num("soak-minutes", 60, 1);
  const soakRate = num("soak-rate", 0, 1);
  for (const v of [durationS, connections, bodyBytes, rounds, workers, latencyRate])
    if (typeof v === "string") return v;
  for (const v of [soakMinutes, soakRate]) if (typeof v === "string") return v;
  const isRow = (r: string): r is RowName => (ROW_NAMES as readonly string[]).includes(r);
  let rows: RowName[];
  const rowsArg = str("rows");
  if (rowsArg !== undefined) {
    const asked = rowsArg.split(",").map((r) => r.trim());
    const unknown = asked.filter((r) => !isRow(r));
    if (unknown.length > 0)
      return `unknown row ${unknown.join(", ")}; the rows are ${ROW_NAMES.join(", ")}`;
    rows = ROW_NAMES.filter((r) => asked.includes(r)); // always in the table's order
  } else {
    rows = scaling ? [] : [...ROW_NAMES]; // --scaling alone runs only the scaling test
  }
  const profile = str("profile");
  if (profile !== undefined) {
    if (!isRow(profile)) return `--profile wants a row: ${ROW_NAMES.join(", ")}`;
    if (!rows.includes(profile)) return `--profile ${profile} needs ${profile} among --rows`;
  }
  return {
    quick,
    durationS: durationS as number,
    connections: connections as number,
    bodyBytes: bodyBytes as number,
    rounds: rounds as number,
    // Long enough for the JIT to settle and every connection pool to fill.
    warmupS: quick ? 2 : 4,
    rows,
    profile: profile as RowName | undefined,
    workers: (workers as number) || undefined,
    scaling,
    latencyRate: (latencyRate as number) || undefined,
    soakMinutes: values.soak === true ? (soakMinutes as number) : undefined,
    soakRate: (soakRate as number) || undefined,
  };
}

/** `n` distinct free loopback ports (freePort alone can hand out one twice). */
async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * One GET to a target: undefined when it answers 200 with the backend's body (`bodyBytes`
 * bytes of "x"), else what was wrong. HTTPS is verified against the bench certificate,
 * with its name as SNI.
 */
function probeTarget(
  url: string,
  bodyBytes: number,
  cert: BenchCert,
  headers: Record<string, string> = {},
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const done = (problem: string | undefined) => {
      clearTimeout(timer);
      resolve(problem);
    };
    const onResponse = (res: IncomingMessage) => {
      let n = 0;
      let other = false;
      res.on("data", (d: Buffer) => {
        n += d.length;
        other ||= d.some((b) => b !== 0x78);
      });
      res.on("error", (e) => done(e.message));
      res.on("end", () =>
        done(
          res.statusCode !== 200
            ? `status ${res.statusCode}`
            : n !== bodyBytes || other
              ? `a ${n}-byte body, not the backend's ${bodyBytes} bytes of "x"`
              : undefined,
        ),
      );
    };
    const req = url.startsWith("https:")
      ? httpsGet(
          url,
          { agent: false, headers, ca: readFileSync(cert.certPath), servername: cert.name },
          onResponse,
        )
      : httpGet(url, { agent: false, headers }, onResponse);
    req.on("error", (e) => done(e.message));
    const timer = setTimeout(() => req.destroy(new Error("no answer within 5 s")), 5000);
  });
}

/** About `bytes` of JSON (an array of records, as an API answers), the same every run. */
function benchJson(bytes: number): Buffer {
  const items: string[] = [];
  let n = 2;
  for (let i = 0; ; i++) {
    const item = JSON.stringify({
      id: i,
      name: `user-${i}`,
      email: `user${i}@example.com`,
      active: i % 3 === 0,
      score: (i * 7919) % 1000,
      tags: ["alpha", "beta", "gamma"].slice(0, (i % 3) + 1),
    });
    if (n + item.length + 1 > bytes) break;
    items.push(item);
    n += item.length + 1;
  }
  return Buffer.from(`[${items.join(",")}]`);
}

/**
 * The compression row's check of a target: a GET accepting br and gzip must answer 200
 * with `body`, encoded as `encoding` (undefined: as it is). The size sent, or the problem.
 */
function probeCompressed(
  url: string,
  body: Buffer,
  encoding: "br" | "gzip" | undefined,
): Promise<number | string> {
  return new Promise((resolve) => {
    const done = (r: number | string) => {
      clearTimeout(timer);
      resolve(r);
    };
    const req = httpGet(
      url,
      { agent: false, headers: { "accept-encoding": "br, gzip" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("error", (e) => done(e.message));
        res.on("end", () => {
          const got = Buffer.concat(chunks);
          const coding = res.headers["content-encoding"];
          if (res.statusCode !== 200) return done(`status ${res.statusCode}`);
          if (coding !== encoding)
            return done(`content-encoding ${coding ?? "none"}, not ${encoding ?? "none"}`);
          try {
            const plain =
              coding === "br"
                ? brotliDecompressSync(got)
                : coding === "gzip"
                  ? gunzipSync(got)
                  : got;
            done(plain.equals(body) ? got.length : "the decoded body is not the backend's JSON");
          } catch (e) {
            done(`cannot decode the ${coding} body: ${(e as Error).message}`);
          }
        });
      },
    );
    req.on("error", (e) => done(e.message));
    const timer = setTimeout(() => req.destroy(new Error("no answer within 5 s")), 5000);
  });
}

/**
 * Each `prefix…` target against lintel-net (the same config without the feature) in the
 * same run: its req/s ratio and the extra CPU per request.
 */
function costAgainstNone(
  rows: readonly Row[],
  prefix: string,
): { readonly target: string; readonly ratio: number; readonly extraUs: number }[] {
  const none = rows.find((r) => r.target === "lintel-net");
  if (!none) return [];
  return rows
    .filter((x) => x.target.startsWith(prefix))
    .map((r) => ({
      target: r.target,
      ratio: r.rps / none.rps,
      extraUs: r.cpu_us_per_req - none.cpu_us_per_req,
    }));
}

/** The compression row's cost (costAgainstNone), printed and returned for latest.json. */
function reportCompressionCost(
  rows: readonly Row[],
  sizes: Readonly<Record<string, number>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { target, ratio, extraUs } of costAgainstNone(rows, "lintel-net-")) {
    const sent = sizes[target];
    console.log(
      `compression cost: ${target} ${ratio.toFixed(2)} x lintel-net req/s, +${extraUs.toFixed(1)} us CPU per request${sent === undefined ? "" : `, ${sizes["lintel-net"] ?? "?"} -> ${sent} bytes per body`}`,
    );
    out[target] = {
      rps_vs_none: ratio,
      extra_cpu_us_per_req: extraUs,
      body_bytes: sizes["lintel-net"],
      sent_bytes: sent,
    };
  }
  return out;
}

/** The tracing row's cost (costAgainstNone: no tracer), printed and returned for latest.json. */
function reportTracingCost(rows: readonly Row[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { target, ratio, extraUs } of costAgainstNone(rows, "lintel-net-zipkin-")) {
    console.log(
      `tracing cost: ${target} ${ratio.toFixed(2)} x lintel-net (no tracer) req/s, ${extraUs >= 0 ? "+" : ""}${extraUs.toFixed(1)} us CPU per request`,
    );
    out[target] = { vs_no_tracer: ratio, extra_cpu_us_per_req: extraUs };
  }
  return out;
}

/**
 * The h2 row's check of a target: one GET over TLS (verified against the bench
 * certificate) that must negotiate h2 by ALPN and answer 200 with the backend's body.
 */
function probeH2(url: string, bodyBytes: number, cert: BenchCert): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const session = http2Connect(url, {
      ca: readFileSync(cert.certPath),
      servername: cert.name,
      ALPNProtocols: ["h2", "http/1.1"],
    });
    const done = (problem: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done("no HTTP/2 answer within 5 s"), 5000);
    session.on("error", (e) => done(`HTTP/2: ${e.message}`));
    session.on("connect", () => {
      const alpn = session.alpnProtocol;
      if (alpn !== "h2") return done(`ALPN gave ${alpn || "nothing"}, not h2`);
      const req = session.request({ ":path": "/", ":method": "GET" });
      let status = 0;
      let n = 0;
      let other = false;
      req.on("response", (h) => {
        status = Number(h[":status"]);
      });
      req.on("data", (d: Buffer) => {
        n += d.length;
        other ||= d.some((b) => b !== 0x78);
      });
      req.on("error", (e) => done(e.message));
      req.on("end", () =>
        done(
          status !== 200
            ? `status ${status} over h2`
            : n !== bodyBytes || other
              ? `a ${n}-byte body over h2, not the backend's ${bodyBytes} bytes of "x"`
              : undefined,
        ),
      );
      req.end();
    });
  });
}

/** The websocket row's check of a target: a WebSocket whose one message comes back. */
function probeWs(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000 });
    const message = Buffer.from("lintel bench probe");
    let settled = false;
    const done = (problem: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      resolve(problem);
    };
    const timer = setTimeout(() => done("no echo within 5 s"), 5000);
    ws.on("open", () => ws.send(message, { binary: true }));
    ws.on("message", (d: Buffer) =>
      done(Buffer.isBuffer(d) && d.equals(message) ? undefined : "the echo differed"),
    );
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      done(`the upgrade was answered with status ${res.statusCode}, not 101`);
    });
    ws.on("error", (e) => done(e.message));
    ws.on("close", () => done("closed before the echo"));
  });
}

/** `lintel check` on a config; undefined when it passes, else what it printed. */
function lintelCheck(config: string): string | undefined {
  const r = spawnSync(process.execPath, [lintelBin, "check", config], {
    encoding: "utf8",
    timeout: 60_000,
  });
  return r.status === 0 ? undefined : `${r.stdout ?? ""}${r.stderr ?? ""}`.trim();
}

async function main(): Promise<number> {
  const parsed = parseOptions();
  if (typeof parsed === "string") {
    console.error(`${parsed}\n${usage()}`);
    return 2;
  }
  const o = parsed;
  const { durationS, connections, bodyBytes, rounds, warmupS } = o;

  const needs = ["wrk", "haproxy", "taskset", "openssl"];
  if (o.rows.includes("latency") || o.rows.includes("h2") || o.scaling || o.soakMinutes)
    needs.push("h2load");
  const missing = needs.filter((c) => !commandExists(c));
  if (missing.length > 0) {
    const pkgs = missing.map((c) =>
      c === "taskset" ? "util-linux" : c === "h2load" ? "nghttp2-client" : c,
    );
    console.error(
      `the benchmark needs ${missing.join(", ")}; install them, e.g. apt-get install -y ${pkgs.join(" ")}`,
    );
    return 2;
  }
  if (o.rows.includes("latency")) {
    const help = spawnSync("h2load", ["--help"], { encoding: "utf8", timeout: 10_000 });
    if (!h2loadUsable(`${help.stdout ?? ""}`)) {
      console.error(
        "the latency row needs an h2load with --rps, --rate-period and --log-file (nghttp2 1.40 or newer; Debian 12's nghttp2-client has them)",
      );
      return 2;
    }
  }
  if (!existsSync(join(root, "dist/gateway/cli/main.js"))) {
    console.error("build lintel first: npm run build");
    return 2;
  }
  if (o.soakMinutes !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), "lintel-soak-"));
    try {
      await runSoak({
        minutes: o.soakMinutes,
        rate: o.soakRate,
        dir,
        lintelBin,
        resultsFile: join(resultsDir, "latest-soak.json"),
      });
    } finally {
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    }
    return 0;
  }

  // Placement. One proxy thread: the proxies get core 0 alone and the backend and the load
  // generator the rest. N threads (--workers N): cores 0..N-1 for the proxies when there
  // are more cores than that; otherwise everything shares all cores.
  const n = cpus().length;
  const threads = o.workers ?? 1;
  const pinned = n > threads;
  const proxyCpus = pinned ? cpuList(0, threads - 1) : undefined;
  const loadCpus = pinned ? cpuList(threads, n - 1) : undefined;
  const loadCores = pinned ? n - threads : n;
  const layout = pinned
    ? `proxies on cpu ${proxyCpus}, backend and load generator on cpu ${loadCpus}`
    : `proxies, backend and load generator all share the ${n} cores (no pinning: ${threads} proxy threads on ${n} cores), so the load generator takes CPU from the proxies and the rates understate them`;

  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: n,
    os: `${process.platform} ${release()}`,
  };
  const versions = {
    lintel: pkg.version,
    node: process.version,
    haproxy: version("haproxy", ["-v"]),
    wrk: version("wrk", ["-v"]),
    h2load: commandExists("h2load") ? version("h2load", ["--version"]) : "not installed",
    openssl: version("openssl", ["version"]),
    ...Object.fromEntries(
      PEERS.map((p) => [
        p.name,
        commandExists(p.name) ? version(p.name, [...p.versionArgs]) : "not installed",
      ]),
    ),
  };
  console.log(`machine: ${machine.cpu} x ${n} cores, ${machine.os}`);
  console.log(
    `versions: ${Object.entries(versions)
      .map(([k, v]) => (v.toLowerCase().startsWith(k) ? v : `${k} ${v}`))
      .join("; ")}`,
  );
  console.log(
    `lintel benchmark: rows ${o.rows.join(", ") || "none"}${o.scaling ? " + scaling" : ""}; ${durationS}s x ${rounds} rounds per target, ${connections} connections, ${bodyBytes}-byte responses (${LARGE_BODY} in the large row); ${threads} proxy thread${threads > 1 ? "s" : ""}; ${layout}`,
  );

  const dir = mkdtempSync(join(tmpdir(), "lintel-bench-"));
  let exitCode = 0;
  try {
    const bodyFile = join(dir, "body.bin");
    writeFileSync(bodyFile, Buffer.alloc(bodyBytes, "x"));
    const largeFile = join(dir, "large.bin");
    writeFileSync(largeFile, Buffer.alloc(LARGE_BODY, "x"));
    const jsonFile = join(dir, "body.json");
    const jsonBody = benchJson(COMPRESSION_BODY);
    writeFileSync(jsonFile, jsonBody);
    // The certificates get a directory of their own: lintel watches it, and files written
    // next to them (h2load's logs) would keep it busy rescanning.
    mkdirSync(join(dir, "certs"));
    const cert = makeBenchCert(join(dir, "certs"));
    mkdirSync(join(dir, "h2load"));
    const ports = await distinctPorts(
      28 + 2 * TRACING_TARGETS.length + 5 * (LINTEL_ENGINES.length + PEERS.length),
    );
    const port = () => ports.shift()!;
    const [backendPort, haproxyPort, adminPort, haproxyTls] = [port(), port(), port(), port()];
    // The egress row: plaintext in, TLS (verified, SNI) out to the backend's TLS port.
    const [backendTls, haproxyEgress] = [port(), port()];
    // The large row: a second backend answering 64 KiB bodies.
    const [largeBackend, haproxyLarge] = [port(), port()];
    // The h2 row's direct target: the backend over TLS with ALPN h2, a port of its own.
    const backendH2 = port();
    // Node's ceiling on the handshake and h2 rows (lib/node-ceiling.ts): node:tls, node:http2.
    const [ceilingTls, ceilingH2] = [port(), port()];
    // The websocket row: the echo server (lib/ws-echo.ts) and HAProxy in front of it.
    const [wsEcho, haproxyWs] = [port(), port()];
    // The policy row: the plaintext backend behind no resilience policy, and a typical one.
    const [uwsBare, uwsPolicy] = [port(), port()];
    // The compression row: a JSON backend, HAProxy in front of it, and lintel (net engine)
    // with no compression, gzip, and brotli in front of it.
    const [jsonBackend, haproxyJson, netJson, netGzip, netBr] = [
      port(),
      port(),
      port(),
      port(),
      port(),
    ];
    // The protection row: the plaintext backend behind a per-address rate limit that never
    // triggers (each engine), and behind each other layer (net): access, concurrencyLimit,
    // jwt, basicAuth, extAuth.
    const [netLimited, uwsLimited] = [port(), port()];
    const [netAccess, netConcurrency, netJwt, netBasic, netExtAuth] = [
      port(),
      port(),
      port(),
      port(),
      port(),
    ];
    // The tracing row: a collector that discards, and one lintel process per target of
    // TRACING_TARGETS (a listener and an admin port each).
    const traceCollector = port();
    const tracingPorts = TRACING_TARGETS.map(() => ({ listen: port(), admin: port() }));
    const auth = await makeAuthFixtures(dir);
    // Each lintel engine and each peer: plaintext, TLS, egress and large listeners.
    const listeners = (): Listeners => ({
      plain: port(),
      tls: port(),
      egress: port(),
      large: port(),
      ws: port(),
    });
    const lintelPorts = Object.fromEntries(LINTEL_ENGINES.map((e) => [e, listeners()])) as Record<
      Engine,
      Listeners
    >;
    const peerPorts = Object.fromEntries(PEERS.map((p) => [p.name, listeners()])) as Record<
      PeerName,
      Listeners
    >;
    writeFileSync(
      join(dir, "backend.cfg"),
      backendConfig(
        backendPort,
        bodyFile,
        bodyBytes,
        { port: backendTls, pem: cert.combinedPath, h2Port: backendH2 },
        loadCores,
      ),
    );
    writeFileSync(
      join(dir, "backend-large.cfg"),
      backendConfig(largeBackend, largeFile, LARGE_BODY, undefined, loadCores),
    );
    writeFileSync(
      join(dir, "backend-json.cfg"),
      backendConfig(
        jsonBackend,
        jsonFile,
        jsonBody.length,
        undefined,
        loadCores,
        "application/json",
      ),
    );
    writeFileSync(
      join(dir, "haproxy.cfg"),
      proxyConfig({
        listenPort: haproxyPort,
        backendPort: backendPort,
        threads,
        // h2 offered by ALPN for the h2 row; wrk sends no ALPN and gets HTTP/1.1 as before.
        tls: { port: haproxyTls, pem: cert.combinedPath, alpn: "h2,http/1.1" },
        egress: {
          port: haproxyEgress,
          backendTlsPort: backendTls,
          caFile: cert.certPath,
          name: cert.name,
        },
        large: { port: haproxyLarge, backendPort: largeBackend },
        json: { port: haproxyJson, backendPort: jsonBackend },
        ws: { port: haproxyWs, backendPort: wsEcho },
      }),
    );
    mkdirSync(join(dir, "lintel"));
    const tls = `tls: {certPath: ${cert.certPath}, keyPath: ${cert.keyPath}}`;
    // One server per engine (LINTEL_ENGINES, or those given) on the given listener of each.
    // The net engine's TLS servers offer h2 by ALPN (http2: true, its default): the h2 row.
    const servers = (
      kind: keyof Listeners,
      extra = "",
      engines: readonly Engine[] = LINTEL_ENGINES,
    ) =>
      engines
        .map((e) => `  - {ip: 127.0.0.1, port: ${lintelPorts[e][kind]}, engine: ${e}${extra}}\n`)
        .join("");
    // The same config whichever rows run, so lintel's idle RSS compares between runs. The
    // worker count is always written (lintel's default, "auto", is one per core), so that
    // lintel serves uws with as many data-plane threads as HAProxy has threads.
    const lintelConfig = join(dir, "lintel", "lintel.yaml");
    const lintelYaml = (
      workersLine: string,
    ) => `${workersLine}admin: {ip: 127.0.0.1, port: ${adminPort}}
routers:
- protocol: http
  label: bench
  dtab: /svc => /$/inet/127.0.0.1/${backendPort}
  servers:
${servers("plain")}${servers("tls", `, ${tls}`)}- protocol: http
  label: egress
  dtab: /svc => /$/inet/127.0.0.1/${backendTls}
  client:
    tls: {commonName: ${cert.name}, trustCerts: [${cert.certPath}]}
  egress: {allowCidrs: [127.0.0.0/8]}
  servers:
${servers("egress")}- protocol: http
  label: large
  dtab: /svc => /$/inet/127.0.0.1/${largeBackend}
  servers:
${servers("large")}- protocol: http
  label: websocket
  dtab: /svc => /$/inet/127.0.0.1/${wsEcho}
  servers:
${servers("ws", "", WS_ENGINES)}- protocol: http
  label: bare
  dtab: /svc => /$/inet/127.0.0.1/${backendPort}
  client: {failureAccrual: {kind: none}}
  servers:
  - {ip: 127.0.0.1, port: ${uwsBare}, engine: uws}
- protocol: http
  label: policy
  dtab: /svc => /$/inet/127.0.0.1/${backendPort}
  client:
    loadBalancer: {kind: p2c}
    failureAccrual: {kind: io.l5d.consecutiveFailures, failures: 5, backoff: {kind: jittered, minMs: 5000, maxMs: 300000}}
    requestAttemptTimeoutMs: 10000
  service:
    totalTimeoutMs: 10000
    responseClassifier: {kind: io.l5d.http.retryableRead5XX}
    retries: {budget: {percentCanRetry: 0.2}, backoff: {kind: jittered, minMs: 10, maxMs: 100}}
  servers:
  - {ip: 127.0.0.1, port: ${uwsPolicy}, engine: uws}
- protocol: http
  label: protection
  dtab: /svc => /$/inet/127.0.0.1/${backendPort}
  servers:
  - {ip: 127.0.0.1, port: ${netLimited}, engine: net, layers: [${RATE_LIMIT_LAYER}]}
  - {ip: 127.0.0.1, port: ${uwsLimited}, engine: uws, layers: [${RATE_LIMIT_LAYER}]}
  - {ip: 127.0.0.1, port: ${netAccess}, engine: net, layers: [{kind: access, allow: [127.0.0.0/8]}]}
  - {ip: 127.0.0.1, port: ${netConcurrency}, engine: net, layers: [{kind: concurrencyLimit, maxConcurrentRequests: 100000}]}
  - {ip: 127.0.0.1, port: ${netJwt}, engine: net, layers: [{kind: jwt, keyFiles: [${auth.keyFile}], issuers: [bench], audiences: [lintel], algorithms: [ES256], tokenHeader: ${JWT_FIELD}}]}
  - {ip: 127.0.0.1, port: ${netBasic}, engine: net, layers: [{kind: basicAuth, htpasswd: ${auth.htpasswd}}]}
  - {ip: 127.0.0.1, port: ${netExtAuth}, engine: net, layers: [{kind: extAuth, url: "http://127.0.0.1:${backendPort}/auth"}]}
- protocol: http
  label: compression
  dtab: /svc => /$/inet/127.0.0.1/${jsonBackend}
  servers:
  - {ip: 127.0.0.1, port: ${netJson}, engine: net}
  - {ip: 127.0.0.1, port: ${netGzip}, engine: net, layers: ${COMPRESSION_LAYERS.gzip}}
  - {ip: 127.0.0.1, port: ${netBr}, engine: net, layers: ${COMPRESSION_LAYERS.br}}
`;
    writeFileSync(lintelConfig, lintelYaml(`workers: ${threads}\n`));
    // Refuse what lintel refuses, before measuring anything: a config lintel rejects would
    // give numbers for something else (or none).
    let rejected = lintelCheck(lintelConfig);
    let lintelThreads = `workers: ${threads}`;
    if (rejected !== undefined && o.workers === undefined) {
      // A lintel from before workers: one thread is all it has.
      writeFileSync(lintelConfig, lintelYaml(""));
      rejected = lintelCheck(lintelConfig);
      lintelThreads = "no workers setting (a lintel from before workers: one thread)";
    }
    // The tracing row's lintels: one router to the backend, with the main lintel's threads.
    const tracingConfigs = TRACING_TARGETS.map((t, i) => {
      const file = join(dir, "lintel", `tracing-${i}.yaml`);
      const telemetry =
        t.sampleRate === undefined
          ? ""
          : `telemetry:\n- {kind: io.l5d.zipkin, host: 127.0.0.1, port: ${traceCollector}, sampleRate: ${t.sampleRate}}\n`;
      const workers = lintelThreads.startsWith("workers:") ? `${lintelThreads}\n` : "";
      writeFileSync(
        file,
        `${workers}${telemetry}admin: {ip: 127.0.0.1, port: ${tracingPorts[i]!.admin}}
routers:
- protocol: http
  label: tracing
  dtab: /svc => /$/inet/127.0.0.1/${backendPort}
  servers:
  - {ip: 127.0.0.1, port: ${tracingPorts[i]!.listen}, engine: net}
`,
      );
      return file;
    });
    if (rejected === undefined && o.rows.includes("tracing"))
      for (const f of tracingConfigs) rejected ??= lintelCheck(f);
    if (rejected !== undefined) {
      console.error(
        o.workers
          ? `--workers ${o.workers}: lintel check refuses \`workers: ${o.workers}\`:\n${rejected}\n${/unknown key/.test(rejected) ? "This lintel has no workers yet: run without --workers (one thread)." : "Give a worker count lintel accepts."}`
          : `lintel check rejects the benchmark's config:\n${rejected}`,
      );
      return 2;
    }
    console.log(`lintel config: ${lintelThreads}`);

    // The peers: a directory, a config and the peer's own check of it each. A peer that is
    // missing, or refuses the config, is skipped with the reason.
    const peerStatus: Record<string, PeerStatus> = {};
    const peerLaunches = new Map<PeerName, PeerLaunch>();
    const skipPeer = (name: string, reason: string) => {
      peerStatus[name] = { status: "skipped", reason };
      console.log(`${name}: skipped: ${reason}`);
    };
    if (o.rows.some((r) => PEER_ROWS.includes(r)))
      for (const p of PEERS) {
        if (!commandExists(p.name)) {
          skipPeer(p.name, `not installed (Debian: apt-get install -y ${p.pkg})`);
          continue;
        }
        const peerDir = join(dir, p.name);
        mkdirSync(peerDir);
        const ports = peerPorts[p.name];
        const opts: PeerOptions = {
          dir: peerDir,
          threads,
          listenPort: ports.plain,
          backendPort,
          idleUpstream: Math.max(1024, connections),
          tls: { port: ports.tls, certPath: cert.certPath, keyPath: cert.keyPath, h2: true },
          egress: {
            port: ports.egress,
            backendTlsPort: backendTls,
            caFile: cert.certPath,
            name: cert.name,
          },
          large: { port: ports.large, backendPort: largeBackend },
          ws: { port: ports.ws, backendPort: wsEcho },
        };
        const launch = p.launch(opts);
        const refused = checkPeer(launch);
        if (refused !== undefined) {
          skipPeer(
            p.name,
            `\`${launch.cmd} ${launch.check.args.join(" ")}\` refuses the bench's config:\n${refused}`,
          );
          continue;
        }
        peerLaunches.set(p.name, launch);
        peerStatus[p.name] = { status: "ran", threads };
      }
    if (peerLaunches.size > 0)
      console.log(
        `peers: ${PEERS.filter((p) => peerLaunches.has(p.name))
          .map((p) => `${p.name} (${p.threadsAs(threads)})`)
          .join(", ")}, on the proxies' cores, keep-alive to the backend (loadtest/README.md)`,
      );
    const scalingConfigs = o.scaling ? writeScalingConfigs(dir) : undefined;
    if (scalingConfigs) {
      for (const [w, cfg] of scalingConfigs) {
        const bad = lintelCheck(cfg);
        if (bad !== undefined) {
          console.error(
            `--scaling: lintel check refuses \`workers: ${w}\`:\n${bad}\nThe scaling test needs a lintel with workers.`,
          );
          return 2;
        }
      }
    }

    const result: Record<string, unknown> = {
      date: new Date().toISOString(),
      machine,
      versions,
      params: {
        durationS,
        connections,
        bodyBytes,
        largeBodyBytes: LARGE_BODY,
        rounds,
        quick: o.quick,
        rows: o.rows,
        workers: threads,
        lintel_config: lintelThreads,
        placement: layout,
        lintel_engines: LINTEL_ENGINES,
        h2: { clients: H2_CLIENTS, streams: H2_STREAMS, lintel_engines: H2_ENGINES },
        websocket: {
          connections: WS_CONNECTIONS,
          message_bytes: WS_MESSAGE_BYTES,
          lintel_engines: WS_ENGINES,
        },
      },
      peers: peerStatus,
    };

    if (o.rows.length > 0) {
      const profileEnv = o.profile ? { LINTEL_BENCH_PROFILE_DIR: resultsDir } : undefined;
      if (o.profile) mkdirSync(resultsDir, { recursive: true });
      const hook = pathToFileURL(join(root, "dist/loadtest/lib/profile-hook.js")).href;
      const backend = start("backend", "haproxy", ["-f", join(dir, "backend.cfg")], loadCpus);
      const largeBe = o.rows.includes("large")
        ? start("large backend", "haproxy", ["-f", join(dir, "backend-large.cfg")], loadCpus)
        : undefined;
      const jsonBe = o.rows.includes("compression")
        ? start("json backend", "haproxy", ["-f", join(dir, "backend-json.cfg")], loadCpus)
        : undefined;
      // The websocket row's backend, pinned with the HTTP backend.
      const wsEchoProc = o.rows.includes("websocket")
        ? start(
            "ws echo",
            process.execPath,
            [join(root, "dist/loadtest/lib/ws-echo.js"), String(wsEcho)],
            loadCpus,
          )
        : undefined;
      const haproxy = start("haproxy", "haproxy", ["-f", join(dir, "haproxy.cfg")], proxyCpus);
      // Node answering by itself, on the proxies' core: the handshake and h2 rows' ceiling.
      const nodeCeiling =
        o.rows.includes("handshake") || o.rows.includes("h2")
          ? start(
              "node ceiling",
              process.execPath,
              [
                join(root, "dist/loadtest/lib/node-ceiling.js"),
                String(ceilingTls),
                String(ceilingH2),
                cert.certPath,
                cert.keyPath,
                String(bodyBytes),
              ],
              proxyCpus,
            )
          : undefined;
      // The tracing row: the collector pinned with the backends, each lintel like lintel.
      const collector = o.rows.includes("tracing")
        ? start(
            "collector",
            process.execPath,
            [join(root, "dist/loadtest/lib/discard-collector.js"), String(traceCollector)],
            loadCpus,
          )
        : undefined;
      const tracingLintels = collector
        ? tracingConfigs.map((f, i) =>
            start(TRACING_TARGETS[i]!.target, process.execPath, [lintelBin, "run", f], proxyCpus),
          )
        : [];
      const lintel = start(
        "lintel",
        process.execPath,
        [...(o.profile ? [`--import=${hook}`] : []), lintelBin, "run", lintelConfig],
        proxyCpus,
        profileEnv,
      );
      // The peers, pinned like HAProxy and lintel; each stopped by its PID at the end.
      const peers = new Map<PeerName, Proc>();
      for (const [name, l] of peerLaunches)
        peers.set(name, start(name, l.cmd, l.args, proxyCpus, l.env));
      await waitForPort(backendPort, backend);
      if (largeBe) await waitForPort(largeBackend, largeBe);
      if (jsonBe) await waitForPort(jsonBackend, jsonBe);
      if (wsEchoProc) await waitForPort(wsEcho, wsEchoProc);
      if (nodeCeiling) for (const p of [ceilingTls, ceilingH2]) await waitForPort(p, nodeCeiling);
      if (collector) await waitForPort(traceCollector, collector);
      for (const [i, p] of tracingLintels.entries()) await waitForPort(tracingPorts[i]!.listen, p);
      for (const p of [
        haproxyPort,
        haproxyTls,
        haproxyEgress,
        haproxyLarge,
        haproxyJson,
        haproxyWs,
      ])
        await waitForPort(p, haproxy);
      for (const e of LINTEL_ENGINES)
        for (const [kind, p] of Object.entries(lintelPorts[e]))
          if (kind !== "ws" || WS_ENGINES.includes(e)) await waitForPort(p, lintel);
      for (const p of [uwsBare, uwsPolicy, netLimited, uwsLimited, netAccess, netConcurrency])
        await waitForPort(p, lintel);
      for (const p of [netJwt, netBasic, netExtAuth]) await waitForPort(p, lintel);
      for (const p of [netJson, netGzip, netBr]) await waitForPort(p, lintel);
      for (const [name, proc] of peers)
        try {
          for (const p of Object.values(peerPorts[name])) await waitForPort(p, proc);
        } catch (e) {
          await proc.stop();
          peers.delete(name);
          skipPeer(name, `did not start: ${(e as Error).message}`);
        }

      // Idle memory once lintel has started (and settled a second), before any load.
      await sleep(1000);
      // Every proxy's processes: lintel, haproxy and the peers still running.
      const rssOf = (): Record<string, { pid: number; rss_kb: number }[]> & {
        lintel: { pid: number; rss_kb: number }[];
      } => ({
        lintel: rssKb(lintel),
        haproxy: rssKb(haproxy),
        ...Object.fromEntries([...peers].map(([name, proc]) => [name, rssKb(proc)])),
      });
      const rssStart = rssOf();

      const plain = (name: string, p: number, proc: Proc): Target => ({
        name,
        url: `http://127.0.0.1:${p}/`,
        proc,
      });
      const secure = (name: string, p: number, proc: Proc): Target => ({
        name,
        url: `https://127.0.0.1:${p}/`,
        proc,
      });
      type MakeTarget = typeof plain;
      // The peers and lintel's engines on one of their listeners, in the tables' order.
      const peerTargets = (kind: keyof Listeners, make: MakeTarget) =>
        [...peers].map(([name, proc]) => make(name, peerPorts[name][kind], proc));
      const lintelTargets = (
        kind: keyof Listeners,
        make: MakeTarget,
        engines: readonly Engine[] = LINTEL_ENGINES,
      ) => engines.map((e) => make(`lintel-${e}`, lintelPorts[e][kind], lintel));
      const websocket = (name: string, p: number, proc: Proc): Target => ({
        name,
        url: `ws://127.0.0.1:${p}/`,
        proc,
      });
      const handshakeConnections = Math.min(16, connections);
      const plainTargets = [
        plain("direct", backendPort, backend),
        plain("haproxy", haproxyPort, haproxy),
        ...peerTargets("plain", plain),
        ...lintelTargets("plain", plain),
      ];
      const scenarios: Scenario[] = [
        {
          row: "plaintext",
          name: `keepalive-${bodyBytes}B-${connections}c`,
          what: "plaintext HTTP/1.1, keep-alive",
          bodyBytes,
          targets: plainTargets,
        },
        {
          row: "tls",
          name: `tls-keepalive-${bodyBytes}B-${connections}c`,
          what: "TLS (ECDSA P-256) terminated by the proxy, keep-alive",
          bodyBytes,
          targets: [
            secure("haproxy", haproxyTls, haproxy),
            ...peerTargets("tls", secure),
            ...lintelTargets("tls", secure),
          ],
        },
        {
          // Fewer connections: with 64 the client's own handshakes (same core as the
          // backend) swamp the measurement. wrk reconnects with the session it had, so
          // these are mostly resumed handshakes, as from returning clients; the scaling
          // test measures full ones.
          row: "handshake",
          name: `tls-handshake-${handshakeConnections}c`,
          what: "a new TLS connection per request (wrk resumes its TLS session)",
          bodyBytes,
          connections: handshakeConnections,
          headers: { connection: "close" },
          targets: [
            secure("haproxy", haproxyTls, haproxy),
            ...peerTargets("tls", secure),
            ...lintelTargets("tls", secure),
            ...(nodeCeiling ? [secure(NODE_CEILING, ceilingTls, nodeCeiling)] : []),
          ],
        },
        {
          row: "egress",
          name: `egress-tls-origination-${bodyBytes}B-${connections}c`,
          what: "plaintext in, TLS out to the backend (verified, SNI), keep-alive both sides",
          bodyBytes,
          targets: [
            plain("haproxy", haproxyEgress, haproxy),
            ...peerTargets("egress", plain),
            ...lintelTargets("egress", plain),
          ],
        },
        ...(largeBe
          ? [
              {
                row: "large" as const,
                name: `keepalive-${LARGE_BODY}B-${connections}c`,
                what: `plaintext HTTP/1.1, keep-alive, ${LARGE_BODY / 1024} KiB responses (throughput)`,
                bodyBytes: LARGE_BODY,
                targets: [
                  plain("direct", largeBackend, largeBe),
                  plain("haproxy", haproxyLarge, haproxy),
                  ...peerTargets("large", plain),
                  ...lintelTargets("large", plain),
                ],
              },
            ]
          : []),
        {
          row: "h2",
          name: `h2-${bodyBytes}B-${H2_CLIENTS}c-${H2_STREAMS}m`,
          what: `HTTP/2 over TLS (ALPN h2) terminated by the proxy, HTTP/1.1 keep-alive to the backend; h2load, ${H2_CLIENTS} connections x ${H2_STREAMS} concurrent streams. lintel: ${H2_ENGINES.map((e) => `lintel-${e}`).join(", ")} only (${LINTEL_ENGINES.filter((e) => !H2_ENGINES.includes(e)).join(" and ")} do not speak HTTP/2); direct: the backend's own h2 listener`,
          bodyBytes,
          targets: [
            secure("direct", backendH2, backend),
            secure("haproxy", haproxyTls, haproxy),
            ...peerTargets("tls", secure),
            ...lintelTargets("tls", secure, H2_ENGINES),
            ...(nodeCeiling ? [secure(NODE_CEILING, ceilingH2, nodeCeiling)] : []),
          ],
          probe: (t) => probeH2(t.url, bodyBytes, cert),
          drive: async (t, seconds) => {
            const r = await runH2Load({
              url: t.url,
              clients: H2_CLIENTS,
              streams: H2_STREAMS,
              durationS: seconds,
              dir: join(dir, "h2load"),
              cpus: loadCpus,
            });
            if (r.problem) throw new RowFailed(`${t.name} (${t.url}): ${r.problem}`);
            return r;
          },
        },
        ...(wsEchoProc
          ? [
              {
                row: "websocket" as const,
                name: `websocket-${WS_MESSAGE_BYTES}B-${WS_CONNECTIONS}c`,
                what: `WebSocket echo through the proxy: ${WS_CONNECTIONS} connections, each sending a ${WS_MESSAGE_BYTES}-byte message and waiting for its echo (Node ws load generator and echo server); rate in round trips/s. lintel: ${WS_ENGINES.map((e) => `lintel-${e}`).join(", ")} (${LINTEL_ENGINES.filter((e) => !WS_ENGINES.includes(e)).join(" and ")} does not tunnel upgrades)`,
                bodyBytes: WS_MESSAGE_BYTES,
                unit: "msg",
                targets: [
                  websocket("direct", wsEcho, wsEchoProc),
                  websocket("haproxy", haproxyWs, haproxy),
                  ...peerTargets("ws", websocket),
                  ...lintelTargets("ws", websocket, WS_ENGINES),
                ],
                probe: (t: Target) => probeWs(t.url),
                drive: async (t: Target, seconds: number) => {
                  const r = await runWsLoad({
                    url: t.url,
                    connections: WS_CONNECTIONS,
                    messageBytes: WS_MESSAGE_BYTES,
                    durationS: seconds,
                    cpus: loadCpus,
                  });
                  if (r.requests === 0)
                    throw new RowFailed(
                      `${t.name} (${t.url}): no message came back${r.problem ? `: ${r.problem}` : ""}`,
                    );
                  return r;
                },
              },
            ]
          : []),
        {
          row: "policy",
          name: `policy-${bodyBytes}B-${connections}c`,
          what: "plaintext keep-alive on uws: no failure accrual (bare), Linkerd's defaults (lintel-uws), and p2c + accrual + retries + timeouts (policy)",
          bodyBytes,
          targets: [
            plain("haproxy", haproxyPort, haproxy),
            plain("lintel-uws-bare", uwsBare, lintel),
            plain("lintel-uws", lintelPorts.uws.plain, lintel),
            plain("lintel-uws-policy", uwsPolicy, lintel),
          ],
        },
        {
          row: "protection",
          name: `protection-${bodyBytes}B-${connections}c`,
          what: "plaintext keep-alive: no layers; a per-address rate limit that never triggers (each engine); an access rule; requests in progress per address; a JWT checked (ES256, the same token: remembered); Basic credentials (bcrypt, remembered); an external auth sub-request per request to the backend",
          bodyBytes,
          // Every target gets the token and the credentials; only the auth targets read them.
          headers: auth.headers,
          targets: [
            plain("haproxy", haproxyPort, haproxy),
            plain("lintel-net", lintelPorts.net.plain, lintel),
            plain("lintel-net-ratelimit", netLimited, lintel),
            plain("lintel-net-access", netAccess, lintel),
            plain("lintel-net-concurrency", netConcurrency, lintel),
            plain("lintel-net-jwt", netJwt, lintel),
            plain("lintel-net-basic", netBasic, lintel),
            plain("lintel-net-extauth", netExtAuth, lintel),
            plain("lintel-uws", lintelPorts.uws.plain, lintel),
            plain("lintel-uws-ratelimit", uwsLimited, lintel),
          ],
        },
        ...(jsonBe
          ? [
              {
                row: "compression" as const,
                name: `compression-json-${jsonBody.length}B-${connections}c`,
                what: `a ${jsonBody.length}-byte JSON answer to clients sending Accept-Encoding: br, gzip, on the net engine: no compression (lintel-net), the compression layer with gzip (level 6) and with brotli (quality 4); req/s and body MB/s count the JSON before compression; HAProxy and direct do not compress`,
                bodyBytes: jsonBody.length,
                headers: { "accept-encoding": "br, gzip" },
                targets: [
                  plain("direct", jsonBackend, jsonBe),
                  plain("haproxy", haproxyJson, haproxy),
                  plain("lintel-net", netJson, lintel),
                  plain("lintel-net-gzip", netGzip, lintel),
                  plain("lintel-net-br", netBr, lintel),
                ],
                probe: async (t: Target) => {
                  const want = t.name.endsWith("-gzip")
                    ? "gzip"
                    : t.name.endsWith("-br")
                      ? "br"
                      : undefined;
                  const r = await probeCompressed(t.url, jsonBody, want);
                  if (typeof r === "string") return r;
                  compressedSizes[t.name] = r;
                  return undefined;
                },
              },
            ]
          : []),
      ];
      if (collector)
        scenarios.push({
          row: "tracing" as const,
          name: `tracing-${bodyBytes}B-${connections}c`,
          what: `the plaintext request through lintel (net engine, its own process, one router) with no tracer, and with an io.l5d.zipkin telemeter sampling 1% and 100% of requests (server and client spans, Zipkin v2 JSON to a collector that discards); whenever a tracer is configured every request, sampled or not, carries l5d-ctx-trace and B3 upstream (io.l5d.zipkin's default propagation)`,
          bodyBytes,
          targets: [
            plain("direct", backendPort, backend),
            plain("haproxy", haproxyPort, haproxy),
            ...TRACING_TARGETS.map((t, i) =>
              plain(t.target, tracingPorts[i]!.listen, tracingLintels[i]!),
            ),
          ],
        });
      /** The compression row's body as each target sent it, in bytes (from its probe). */
      const compressedSizes: Record<string, number> = {};

      const profiles: {
        row: RowName;
        target: string;
        thread: string;
        path: string;
        top: HotSpot[];
      }[] = [];
      let profileSeq = 0;
      /** CPU profiles of lintel's threads while `drive` runs; see lib/profile-hook.ts. */
      const profileDuring = async (row: RowName, target: string, drive: () => Promise<unknown>) => {
        const label = `${row}-${target}`;
        const threads = await profileWhile(lintel, resultsDir, ++profileSeq, label, root, drive);
        console.log(
          `\nCPU profile of lintel during the ${row} row, driving ${target} (an extra ${durationS}s run, not in the medians):`,
        );
        for (const t of threads) {
          const where = relative(root, t.path);
          if (!t.summary) console.log(`  ${t.thread}: no profile (${t.error})`);
          else if (t.summary.idlePct > 95)
            console.log(`  ${t.thread}: ${where}: idle ${t.summary.idlePct.toFixed(1)}%`);
          else console.log(`  ${t.thread}: ${where}\n${formatSummary(t.summary, "  ")}`);
          if (t.summary)
            profiles.push({ row, target, thread: t.thread, path: where, top: [...t.summary.top] });
        }
      };

      // Before measuring: one request to each target of the selected rows, which must
      // answer 200 with the backend's body, so that what is measured really proxies to the
      // backend (not an error page, nor another server on the port). A peer that fails is
      // skipped with the reason; HAProxy or lintel failing is a warning (their errors
      // column then says the rest).
      const dropped = new Set<Proc>();
      const probed = new Set<string>();
      const toProbe = [
        ...scenarios
          .filter((sc) => o.rows.includes(sc.row) && !sc.probe)
          .flatMap((sc) => sc.targets.map((t) => ({ t, body: sc.bodyBytes, headers: sc.headers }))),
        ...(o.rows.includes("latency")
          ? plainTargets.map((t) => ({ t, body: bodyBytes, headers: undefined }))
          : []),
      ];
      for (const { t, body, headers } of toProbe) {
        if (t.name === "direct" || probed.has(t.url) || dropped.has(t.proc)) continue;
        probed.add(t.url);
        const problem = await probeTarget(t.url, body, cert, headers);
        if (problem === undefined) continue;
        const peer = [...peers].find(([, proc]) => proc === t.proc);
        if (peer) {
          dropped.add(t.proc);
          peers.delete(peer[0]);
          await t.proc.stop();
          skipPeer(peer[0], `${t.url} did not answer as a proxy to the backend: ${problem}`);
        } else
          console.log(
            `warning: ${t.name} (${t.url}) did not answer as a proxy to the backend: ${problem}`,
          );
      }
      const live = (ts: readonly Target[]) => ts.filter((t) => !dropped.has(t.proc));

      const rows: Row[] = [];
      /** Rows that failed (RowFailed), with the reason: the run then exits 1. */
      const failedRows: Record<string, string> = {};
      const ratios: Record<string, number> = {};
      const ratiosVsNginx: Record<string, number> = {};
      const ratiosVsCaddy: Record<string, number> = {};
      const peersVsHaproxy: Record<string, number> = {};
      const goalsMet: Record<string, boolean> = {};
      const vsDirect: Record<string, number> = {};
      /** The compression row: each compressing target against lintel-net in the same run. */
      const compressionCost: Record<string, unknown> = {};
      /** The tracing row: each tracing target against lintel-net (no tracer) in the same run. */
      const tracingCost: Record<string, unknown> = {};
      const wrkThreads = Math.max(1, Math.min(loadCores, 2));
      for (const sc of scenarios) {
        if (!o.rows.includes(sc.row)) continue;
        const targets = live(sc.targets);
        console.log(`\n[${sc.row}] ${sc.name}: ${sc.what}`);
        try {
          const results = new Map<string, LoadResult[]>(targets.map((t) => [t.name, []]));
          const cpuPerRequest = new Map<string, number[]>(targets.map((t) => [t.name, []]));
          const run = (t: Target, seconds: number): Promise<LoadResult> =>
            sc.drive
              ? sc.drive(t, seconds)
              : runWrk({
                  url: t.url,
                  connections: sc.connections ?? connections,
                  durationS: seconds,
                  cpus: loadCpus,
                  threads: pinned ? 1 : wrkThreads,
                  headers: sc.headers,
                });
          if (sc.probe)
            for (const t of targets) {
              const problem = await sc.probe(t);
              if (problem !== undefined) throw new RowFailed(`${t.name} (${t.url}): ${problem}`);
            }
          for (const t of targets) await run(t, warmupS);
          // CPU used on the proxy cores by anything but the target (other work on the
          // machine), in % of those cores: a round it disturbed says so.
          let othersOnProxyMax = 0;
          for (let r = 0; r < rounds; r++) {
            for (const t of targets) {
              if (t.proc.child.exitCode !== null)
                throw new Error(`${t.proc.name} died:\n${t.proc.output()}`);
              const cpuBefore = cpuSeconds(t.proc);
              const proxyBusy0 = proxyCpus ? cpuTimes(proxyCpus) : undefined;
              const t0 = performance.now();
              const res = await run(t, durationS);
              const cpuUsed = cpuSeconds(t.proc) - cpuBefore;
              const cpuUs = (cpuUsed * 1e6) / Math.max(1, res.requests);
              const unit = sc.unit ?? "req";
              let others = "";
              if (proxyBusy0) {
                const b = cpuTimes(proxyCpus);
                const busyPct =
                  (100 * (b.busy - proxyBusy0.busy)) / Math.max(1, b.total - proxyBusy0.total);
                const own =
                  t.name === "direct"
                    ? 0
                    : (100 * cpuUsed) / ((performance.now() - t0) / 1000) / threads;
                const pct = Math.max(0, busyPct - own);
                othersOnProxyMax = Math.max(othersOnProxyMax, pct);
                if (pct > 10) others = `  (other work on cpu ${proxyCpus}: ${pct.toFixed(0)}%)`;
              }
              results.get(t.name)!.push(res);
              cpuPerRequest.get(t.name)!.push(cpuUs);
              const mb =
                sc.bodyBytes >= 4096 ? `  ${((res.rps * sc.bodyBytes) / 1e6).toFixed(0)} MB/s` : "";
              console.log(
                `  round ${r + 1} ${t.name.padEnd(17)} ${res.rps.toFixed(0).padStart(8)} ${unit}/s${mb}  p99 ${res.p99Ms.toFixed(2)} ms  cpu ${cpuUs.toFixed(1)} us/req${res.errors > 0 ? `  ${res.errors} errors` : ""}${others}`,
              );
            }
          }
          const scRows = targets.map((t): Row => {
            const rs = results.get(t.name)!;
            const rps = median(rs.map((x) => x.rps));
            return {
              row: sc.row,
              name: sc.name,
              target: t.name,
              rps,
              p50_ms: median(rs.map((x) => x.p50Ms)),
              p99_ms: median(rs.map((x) => x.p99Ms)),
              min_rps: Math.min(...rs.map((x) => x.rps)),
              max_rps: Math.max(...rs.map((x) => x.rps)),
              errors: rs.reduce((s, x) => s + x.errors, 0),
              cpu_us_per_req: median(cpuPerRequest.get(t.name)!),
              body_mb_per_s: (rps * sc.bodyBytes) / 1e6,
            };
          });
          rows.push(...scRows);
          const rowOf = (name: string) => scRows.find((x) => x.target === name);
          const direct = rowOf("direct");
          const haproxyRps = rowOf("haproxy")!.rps;
          const nginxRps = rowOf("nginx")?.rps;
          const caddyRps = rowOf("caddy")?.rps;
          // The table's ratio columns, by target: every proxy against HAProxy, nginx, direct.
          const cols = { haproxy: {}, nginx: {}, direct: {} } as Record<
            "haproxy" | "nginx" | "direct",
            Record<string, number>
          >;
          const goals: string[] = [];
          for (const r of scRows.filter((x) => x.target !== "direct")) {
            const key = `${sc.name}/${r.target}`;
            const vsH = r.rps / haproxyRps;
            const vsN = nginxRps === undefined ? undefined : r.rps / nginxRps;
            if (r.target !== "haproxy") cols.haproxy[r.target] = vsH;
            if (vsN !== undefined && r.target !== "nginx") cols.nginx[r.target] = vsN;
            if (direct) cols.direct[r.target] = vsDirect[key] = r.rps / direct.rps;
            if (!r.target.startsWith("lintel")) {
              if (r.target !== "haproxy") peersVsHaproxy[key] = vsH;
              continue;
            }
            ratios[key] = vsH;
            if (vsN !== undefined) ratiosVsNginx[key] = vsN;
            if (caddyRps !== undefined) ratiosVsCaddy[key] = r.rps / caddyRps;
            // A compressing target does work HAProxy does not do here: its cost is against
            // lintel-net (reportCompressionCost), not a goal against HAProxy.
            if (sc.row === "compression" && r.target !== "lintel-net") continue;
            if (sc.row === "tracing" && r.target !== "lintel-net") continue;
            const okH = vsH >= GOAL_VS_HAPROXY;
            const okN = vsN === undefined || vsN >= GOAL_VS_NGINX;
            goalsMet[key] = okH && okN;
            const mark = (ok: boolean) => (ok ? "ok" : "MISSED");
            goals.push(
              `${r.target} ${vsH.toFixed(2)} x HAProxy ${mark(okH)}${vsN === undefined ? "" : `, ${vsN.toFixed(2)} x nginx ${mark(okN)}`}`,
            );
          }
          printTable(scRows, cols, sc.bodyBytes >= 4096, sc.unit);
          if (sc.row === "compression")
            Object.assign(compressionCost, reportCompressionCost(scRows, compressedSizes));
          if (sc.row === "tracing") Object.assign(tracingCost, reportTracingCost(scRows));
          if (goals.length > 0)
            console.log(
              `goals (lintel >= ${GOAL_VS_HAPROXY} x HAProxy${nginxRps === undefined ? "" : `, >= ${GOAL_VS_NGINX.toFixed(1)} x nginx`}): ${goals.join("; ")}`,
            );
          if (PEER_ROWS.includes(sc.row))
            for (const p of PEERS)
              if (peerStatus[p.name]?.status === "skipped")
                console.log(
                  `(${p.name} not measured: ${peerStatus[p.name]!.reason!.split("\n")[0]})`,
                );
          const withErrors = scRows.filter((r) => r.errors > 0);
          if (withErrors.length > 0)
            console.log(
              sc.row === "websocket"
                ? `warning: errors (connections that failed or closed early, echoes that differed, all rounds): ${withErrors.map((r) => `${r.target} ${r.errors}`).join(", ")}`
                : `warning: errors (${sc.drive ? "h2load's failed requests" : "wrk's socket errors"} and non-2xx answers, all rounds): ${withErrors.map((r) => `${r.target} ${r.errors}`).join(", ")}; their req/s count those answers too`,
            );
          if (othersOnProxyMax > 15)
            console.log(
              `warning: something other than the target used up to ${othersOnProxyMax.toFixed(0)}% of the proxy cores (${proxyCpus}) during a round: that round's numbers are disturbed (other work on the machine?)`,
            );
          const fastest = Math.max(...scRows.filter((r) => r !== direct).map((r) => r.rps));
          if (direct && direct.rps < fastest * 1.3) {
            console.log(
              `warning: direct-to-backend (${direct.rps.toFixed(0)} req/s) is not well above the proxies (${fastest.toFixed(0)}); the load generator or backend may be the limit, so the ratios understate the gap`,
            );
          }
          if (o.profile === sc.row)
            for (const t of targets.filter((x) => x.proc === lintel))
              await profileDuring(sc.row, t.name, () => run(t, durationS));
        } catch (e) {
          if (!(e instanceof RowFailed)) throw e;
          failedRows[sc.row] = e.message;
          console.log(`ERROR: the ${sc.row} row FAILED and has no numbers: ${e.message}`);
        }
      }
      result.rows = rows;
      result.ratios = ratios;
      result.vs_direct = vsDirect;
      if (Object.keys(compressionCost).length > 0) result.compression_cost = compressionCost;
      if (Object.keys(tracingCost).length > 0) result.tracing_cost = tracingCost;
      result.ratios_vs_nginx = ratiosVsNginx;
      result.ratios_vs_caddy = ratiosVsCaddy;
      result.peers_vs_haproxy = peersVsHaproxy;
      result.goals = { vs_haproxy: GOAL_VS_HAPROXY, vs_nginx: GOAL_VS_NGINX, met: goalsMet };
      if (Object.keys(failedRows).length > 0) {
        result.failed_rows = failedRows;
        exitCode = 1;
      }

      if (o.rows.includes("latency")) {
        // The rate: half of HAProxy's peak on the plaintext row of this run.
        let rate = o.latencyRate;
        let peakFrom = "--latency-rate";
        if (rate === undefined) {
          let peak = rows.find((r) => r.row === "plaintext" && r.target === "haproxy")?.rps;
          peakFrom = "the plaintext row's HAProxy median";
          if (peak === undefined) {
            const t = plainTargets[1]!;
            const w = { url: t.url, connections, cpus: loadCpus, threads: pinned ? 1 : wrkThreads };
            await runWrk({ ...w, durationS: warmupS });
            peak = (await runWrk({ ...w, durationS })).rps;
            peakFrom = `one ${durationS}s wrk run on HAProxy (plaintext, ${connections} connections; the plaintext row did not run)`;
          }
          rate = Math.round(peak / 2);
          console.log(`\nHAProxy's peak: ${peak.toFixed(0)} req/s, from ${peakFrom}`);
        }
        const latency = await latencyRow({
          targets: live(plainTargets),
          rate,
          o,
          dir,
          loadCpus,
          proxyCpus,
          proxyThreads: threads,
          profile:
            o.profile === "latency"
              ? (target, drive) => profileDuring("latency", target, drive)
              : undefined,
          lintel,
        });
        result.latency = { rate, rate_from: peakFrom, ...latency };
      }
      if (profiles.length > 0) result.profiles = profiles;

      // Idle memory after the load: two seconds without requests.
      await sleep(2000);
      const rssIdle = rssOf();
      const total = (xs: { rss_kb: number }[]) => xs.reduce((s, x) => s + x.rss_kb, 0);
      const mib = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;
      const others = Object.keys(rssIdle)
        .filter((k) => k !== "lintel" && rssStart[k])
        .map(
          (k) =>
            `${k === "haproxy" ? "HAProxy" : k} ${mib(total(rssStart[k]!))} / ${mib(total(rssIdle[k]!))}`,
        );
      console.log(
        `\nidle RSS (VmRSS, every process of each): lintel ${mib(total(rssStart.lintel))} after start, ${mib(total(rssIdle.lintel))} idle after the load (${rssIdle.lintel.length} process${rssIdle.lintel.length > 1 ? "es" : ""}); ${others.join("; ")}`,
      );
      result.idle_rss = Object.fromEntries(
        Object.keys(rssIdle)
          .filter((k) => rssStart[k])
          .map((k) => [
            k,
            {
              after_start_kb: total(rssStart[k]!),
              after_load_kb: total(rssIdle[k]!),
              processes: rssIdle[k]!,
            },
          ]),
      );
      // The row processes are not needed by what follows.
      await stopAll();
      (result.idle_rss as Record<string, unknown>).per_worker = await workerRss(dir);
    }

    if (scalingConfigs) result.scaling = await scalingTest(o, dir, bodyFile, scalingConfigs);

    mkdirSync(resultsDir, { recursive: true });
    const all = o.rows.length === ROW_NAMES.length;
    const file = all ? "latest.json" : `latest-${o.rows.join("+") || "scaling"}.json`;
    writeFileSync(join(resultsDir, file), `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote loadtest/results/${file}`);
    if (exitCode !== 0)
      console.error(
        `\nFAILED rows: ${Object.entries(result.failed_rows as Record<string, string>)
          .map(([row, why]) => `${row}: ${why}`)
          .join("; ")}`,
      );
    return exitCode;
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface LatencyInput {
  /** direct, haproxy, the peers and lintel's engines (plaintext). */
  readonly targets: readonly Target[];
  readonly rate: number;
  readonly o: Options;
  readonly dir: string;
  readonly loadCpus?: string;
  readonly proxyCpus?: string;
  /** Cores in proxyCpus (the proxies' thread count when they are pinned). */
  readonly proxyThreads: number;
  readonly lintel: Proc;
  readonly profile?: (target: string, drive: () => Promise<unknown>) => Promise<void>;
}

/** Seconds at the rate before each measured latency round (see latencyRow). */
const LATENCY_ROUND_WARMUP_S = 2;

/** Latency at a fixed rate, per target and added over direct-to-backend. */
async function latencyRow(x: LatencyInput) {
  const { o, rate } = x;
  console.log(
    `\n[latency] fixed-rate-${rate}rps: plaintext HTTP/1.1, keep-alive, ${rate} req/s (half HAProxy's peak) with h2load, open loop; latency added over direct`,
  );
  const drive = (t: Target, seconds: number) =>
    runOpenLoop({
      url: t.url,
      rate,
      durationS: seconds,
      dir: join(x.dir, "h2load"),
      cpus: x.loadCpus,
    });
  for (const t of x.targets) await drive(t, o.warmupS);
  const per = new Map<string, { res: OpenLoopResult; cpuPct: number }[]>(
    x.targets.map((t) => [t.name, []]),
  );
  let loadBusyMax = 0;
  // CPU used on the proxy cores by anything but the target (another proxy of this bench
  // still busy, or other work on the machine), in % of those cores.
  let othersOnProxyMax = 0;
  for (let r = 0; r < o.rounds; r++) {
    for (const t of x.targets) {
      if (t.proc.child.exitCode !== null)
        throw new Error(`${t.proc.name} died:\n${t.proc.output()}`);
      // Steady state: the other targets' rounds left this one idle long enough for its
      // upstream connections to close; 2 s at the rate open them again, unmeasured.
      await drive(t, LATENCY_ROUND_WARMUP_S);
      const cpu0 = cpuSeconds(t.proc);
      const busy0 = cpuTimes(x.loadCpus);
      const proxyBusy0 = cpuTimes(x.proxyCpus);
      const t0 = performance.now();
      const res = await drive(t, o.durationS);
      const wall = (performance.now() - t0) / 1000;
      const busy1 = cpuTimes(x.loadCpus);
      const proxyBusy1 = cpuTimes(x.proxyCpus);
      const cpuPct = (100 * (cpuSeconds(t.proc) - cpu0)) / wall;
      const b = (100 * (busy1.busy - busy0.busy)) / Math.max(1, busy1.total - busy0.total);
      const pb =
        (100 * (proxyBusy1.busy - proxyBusy0.busy)) /
        Math.max(1, proxyBusy1.total - proxyBusy0.total);
      loadBusyMax = Math.max(loadBusyMax, b);
      if (x.proxyCpus) {
        const own = t.name === "direct" ? 0 : cpuPct / x.proxyThreads;
        othersOnProxyMax = Math.max(othersOnProxyMax, pb - own);
      }
      per.get(t.name)!.push({ res, cpuPct });
      console.log(
        `  round ${r + 1} ${t.name.padEnd(12)} ${res.achievedRps.toFixed(0).padStart(7)} req/s  p50 ${res.p50Ms.toFixed(2)}  p99 ${res.p99Ms.toFixed(2)}  p99.9 ${res.p999Ms.toFixed(2)} ms  late ${res.latePct.toFixed(2)}%  cpu ${cpuPct.toFixed(0)}%  busy: load cores ${b.toFixed(0)}%, proxy cores ${pb.toFixed(0)}%${res.timedOut ? "  (timed out)" : ""}`,
      );
    }
  }
  const direct = per.get("direct")!;
  const rows: LatencyRow[] = x.targets.map((t) => {
    const rs = per.get(t.name)!;
    const m = (f: (r: OpenLoopResult) => number) => median(rs.map((e) => f(e.res)));
    return {
      target: t.name,
      rate,
      achieved_rps: m((r) => r.achievedRps),
      p50_ms: m((r) => r.p50Ms),
      p99_ms: m((r) => r.p99Ms),
      p999_ms: m((r) => r.p999Ms),
      max_ms: Math.max(...rs.map((e) => e.res.maxMs)),
      p99_added_ms:
        t.name === "direct"
          ? undefined
          : median(rs.map((e, i) => e.res.p99Ms - direct[i]!.res.p99Ms)),
      late_pct: m((r) => r.latePct),
      errors: rs.reduce((s, e) => s + e.res.errors, 0),
      cpu_pct: median(rs.map((e) => e.cpuPct)),
      held_rate: rs.every((e) => e.res.achievedRps >= 0.97 * rate && !e.res.timedOut),
    };
  });
  const f2 = (v: number | undefined) => (v === undefined ? "" : v.toFixed(2));
  console.log(
    `${"target".padEnd(12)} ${"req/s".padStart(7)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"p99.9 ms".padStart(8)} ${"+p99 ms".padStart(7)} ${"late %".padStart(6)} ${"errors".padStart(6)} ${"cpu %".padStart(5)}`,
  );
  for (const r of rows)
    console.log(
      `${r.target.padEnd(12)} ${r.achieved_rps.toFixed(0).padStart(7)} ${f2(r.p50_ms).padStart(7)} ${f2(r.p99_ms).padStart(7)} ${f2(r.p999_ms).padStart(8)} ${f2(r.p99_added_ms).padStart(7)} ${r.late_pct.toFixed(2).padStart(6)} ${String(r.errors).padStart(6)} ${r.cpu_pct.toFixed(0).padStart(5)}${r.held_rate ? "" : "  did not hold the rate"}`,
    );
  const d = rows[0]!;
  console.log(
    `(+p99: p99 added over direct, median of per-round differences. The direct p99 of ${d.p99_ms.toFixed(2)} ms is the floor this load generator measures on this machine; differences well below it are noise.)`,
  );
  for (const r of rows.slice(1)) {
    const verdict = !r.held_rate
      ? `did not hold ${rate} req/s (achieved ${r.achieved_rps.toFixed(0)}): saturated, and its latencies are understated (coordinated omission)`
      : r.p99_added_ms! <= P99_ADDED_TARGET_MS
        ? `meets the target (p99 added ${f2(r.p99_added_ms)} ms <= ${P99_ADDED_TARGET_MS} ms)`
        : `misses the target (p99 added ${f2(r.p99_added_ms)} ms > ${P99_ADDED_TARGET_MS} ms)`;
    console.log(`  ${r.target}: ${verdict}`);
  }
  if (!d.held_rate)
    console.log(
      "warning: direct-to-backend did not hold the rate: the load generator (or backend) is the limit, and the row says little about the proxies",
    );
  if (loadBusyMax > 85)
    console.log(
      `warning: ${x.loadCpus ? `the load generator's cores (${x.loadCpus})` : "the cores (nothing is pinned)"} were up to ${loadBusyMax.toFixed(0)}% busy (h2load, the backend and anything else running): the latencies include waiting for a CPU`,
    );
  if (x.profile)
    for (const t of x.targets.filter((t) => t.proc === x.lintel))
      await x.profile(t.name, () => drive(t, o.durationS));
  if (othersOnProxyMax > 15)
    console.log(
      `warning: something other than the target used up to ${othersOnProxyMax.toFixed(0)}% of the proxy cores (${x.proxyCpus}) during a run: the numbers are disturbed (other work on the machine?)`,
    );
  return {
    rows,
    load_cpu_busy_max_pct: loadBusyMax,
    others_on_proxy_cpu_max_pct: othersOnProxyMax,
  };
}

/**
 * lintel's idle RSS with workers: 0, 1 and 2 (one uws listener, no load), one at a time;
 * the difference between 1 and 2 workers is what each worker adds.
 */
async function workerRss(dir: string) {
  const kb: Record<string, number> = {};
  for (const w of [0, 1, 2]) {
    const [port, admin] = await Promise.all([freePort(), freePort()]);
    const cfg = join(dir, `rss-w${w}.yaml`);
    writeFileSync(cfg, scalingYaml(w, port, admin, 9));
    const proc = start(`lintel workers ${w} (idle)`, process.execPath, [lintelBin, "run", cfg]);
    await waitForPort(port, proc);
    await sleep(1000);
    kb[w] = rssKb(proc).reduce((t, x) => t + x.rss_kb, 0);
    await proc.stop();
  }
  const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
  const perWorker = kb[2]! - kb[1]!;
  console.log(
    `idle RSS by worker count (one uws listener, no load): workers 0 ${mib(kb[0]!)}, 1 ${mib(kb[1]!)}, 2 ${mib(kb[2]!)}; each worker adds ${mib(perWorker)} (target <= 64 MB)`,
  );
  return {
    workers_0_kb: kb[0]!,
    workers_1_kb: kb[1]!,
    workers_2_kb: kb[2]!,
    per_worker_kb: perWorker,
  };
}

/**
 * lintel configs with workers: 1 and 2 and one uws listener, for `lintel check` before
 * anything starts; the scaling test rewrites them with the ports it gets.
 */
function writeScalingConfigs(dir: string): Map<number, string> {
  const configs = new Map<number, string>();
  for (const w of [1, 2]) {
    const path = join(dir, `lintel-w${w}.yaml`);
    writeFileSync(path, scalingYaml(w, 4140, 9990, 8080));
    configs.set(w, path);
  }
  return configs;
}

function scalingYaml(
  workers: number,
  port: number,
  admin: number,
  backend: number,
  tls?: { port: number; cert: BenchCert },
): string {
  return `workers: ${workers}
admin: {ip: 127.0.0.1, port: ${admin}}
routers:
- protocol: http
  label: scaling
  dtab: /svc => /$/inet/127.0.0.1/${backend}
  servers:
  - {ip: 127.0.0.1, port: ${port}, engine: uws}
${tls ? `  - {ip: 127.0.0.1, port: ${tls.port}, engine: uws, tls: {certPath: ${tls.cert.certPath}, keyPath: ${tls.cert.keyPath}}}\n` : ""}`;
}

/**
 * lintel-uws with workers: 1 and 2, and HAProxy with nbthread 1 and 2 as this machine's
 * reference, on two loads. The backend and the load generators share the last core; a
 * one-thread proxy gets core 0, which the load saturates; a two-thread proxy gets cores 0
 * and 1, so what the second thread adds is what it can take of core 1 (all of it with 3
 * cores or more, what the load generator leaves on 2).
 * - Plaintext keep-alive: the generator and backend spend about what the proxy does per
 *   request, so on 2 cores they leave the second thread little.
 * - Full TLS handshakes with an RSA 4096 certificate, one request per connection: the
 *   proxy's signature costs several times what the client spends, so the second thread
 *   has most of core 1 to work with.
 */
async function scalingTest(
  o: Options,
  dir: string,
  bodyFile: string,
  configs: Map<number, string>,
) {
  const n = cpus().length;
  if (n < 2) throw new Error("--scaling needs at least 2 cores");
  const loadCpus = String(n - 1);
  const proxyCpus = (threads: 1 | 2) => (threads === 1 ? "0" : "0,1");
  console.log(
    `\n[scaling] lintel-uws with workers 1 and 2, HAProxy with nbthread 1 and 2; backend and load generators on cpu ${loadCpus}, one-thread proxies on cpu 0 (saturated), two-thread proxies on cpus 0,1`,
  );
  const rsa = makeBenchCert(join(dir, "certs"), "rsa4096");
  const ports = await Promise.all(Array.from({ length: 11 }, () => freePort()));
  const [backendPort, ...rest] = ports as [number, ...number[]];
  const next = () => rest.shift()!;
  writeFileSync(
    join(dir, "scaling-backend.cfg"),
    backendConfig(backendPort, bodyFile, o.bodyBytes),
  );
  const backend = start(
    "scaling backend",
    "haproxy",
    ["-f", join(dir, "scaling-backend.cfg")],
    loadCpus,
  );
  type ScalingTarget = Target & { readonly tlsUrl: string };
  const targets: ScalingTarget[] = [];
  for (const threads of [1, 2] as const) {
    const [p, tlsPort] = [next(), next()];
    const cfg = join(dir, `scaling-haproxy-${threads}.cfg`);
    writeFileSync(
      cfg,
      proxyConfig({
        listenPort: p,
        backendPort,
        threads,
        tls: { port: tlsPort, pem: rsa.combinedPath },
      }),
    );
    const proc = start(`haproxy nbthread ${threads}`, "haproxy", ["-f", cfg], proxyCpus(threads));
    targets.push({
      name: `haproxy-t${threads}`,
      url: `http://127.0.0.1:${p}/`,
      tlsUrl: `https://127.0.0.1:${tlsPort}/`,
      proc,
    });
  }
  for (const w of [1, 2] as const) {
    const [p, tlsPort, admin] = [next(), next(), next()];
    const cfg = configs.get(w)!;
    writeFileSync(cfg, scalingYaml(w, p, admin, backendPort, { port: tlsPort, cert: rsa }));
    const proc = start(
      `lintel workers ${w}`,
      process.execPath,
      [lintelBin, "run", cfg],
      proxyCpus(w),
    );
    targets.push({
      name: `lintel-uws-w${w}`,
      url: `http://127.0.0.1:${p}/`,
      tlsUrl: `https://127.0.0.1:${tlsPort}/`,
      proc,
    });
  }
  await waitForPort(backendPort, backend);
  for (const t of targets) {
    await waitForPort(Number(new URL(t.url).port), t.proc);
    await waitForPort(Number(new URL(t.tlsUrl).port), t.proc);
  }

  console.log(`plaintext keep-alive, ${o.connections} connections (wrk):`);
  const run = (t: Target, seconds: number) =>
    runWrk({
      url: t.url,
      connections: o.connections,
      durationS: seconds,
      threads: 1,
      cpus: loadCpus,
    });
  for (const t of targets) await run(t, o.warmupS);
  const keepAlive = await scalingRounds(o, targets, async (t) => (await run(t, o.durationS)).rps);

  // Enough connections for a run of about durationS on one thread of this machine.
  const connections = 150 * o.durationS;
  const rate = 1000;
  console.log(
    `full TLS handshakes (RSA 4096 certificate, no session resumption), one request per connection, ${connections} connections opened at ${rate}/s (h2load):`,
  );
  const handshakes = await scalingRounds(o, targets, async (t) => {
    const r = await runHandshakes({ url: t.tlsUrl, connections, rate, cpus: loadCpus });
    if (r.errors > connections / 100)
      console.log(`  warning: ${t.name}: ${r.errors} of ${connections} connections failed`);
    if (r.perSecond > 0.9 * rate)
      console.log(
        `  warning: ${t.name} kept up with the ${rate}/s offered: the rate, not the proxy, set the result`,
      );
    return r.perSecond;
  });
  for (const t of targets) await t.proc.stop();
  await backend.stop();
  const factors = (m: ScalingMedians) => ({
    lintel_factor: m.rate["lintel-uws-w2"]! / m.rate["lintel-uws-w1"]!,
    haproxy_factor: m.rate["haproxy-t2"]! / m.rate["haproxy-t1"]!,
  });
  const out = {
    keepalive: { ...keepAlive, ...factors(keepAlive) },
    handshakes: { ...handshakes, ...factors(handshakes) },
  };
  for (const [what, f] of [
    ["plaintext keep-alive", out.keepalive],
    ["full TLS handshakes", out.handshakes],
  ] as const)
    console.log(
      `scaling factor 1 -> 2, ${what}: lintel-uws ${f.lintel_factor.toFixed(2)}, HAProxy ${f.haproxy_factor.toFixed(2)} (the same machine's reference)`,
    );
  if (n <= 2)
    console.log(
      `note: on ${n} cores the second thread shares core 1 with the backend and the load generator, so each factor is bounded by what they leave; with a core to spare it would approach 2`,
    );
  return out;
}

interface ScalingMedians {
  /** Median requests (or handshakes) per second per target. */
  readonly rate: Record<string, number>;
  /** Median CPU the proxy process used, in cores (1 = one core busy all the time). */
  readonly cores: Record<string, number>;
  /** Median CPU time per request (or handshake), in microseconds. */
  readonly cpu_us: Record<string, number>;
}

/** Interleaved rounds of `measure` over the targets, with each proxy's CPU use. */
async function scalingRounds<T extends Target>(
  o: Options,
  targets: readonly T[],
  measure: (t: T) => Promise<number>,
): Promise<ScalingMedians> {
  const rates = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const cores = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const perOp = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  for (let r = 0; r < o.rounds; r++)
    for (const t of targets) {
      if (t.proc.child.exitCode !== null)
        throw new Error(`${t.proc.name} died:\n${t.proc.output()}`);
      const cpu0 = cpuSeconds(t.proc);
      const t0 = performance.now();
      const rate = await measure(t);
      const seconds = (performance.now() - t0) / 1000;
      const used = (cpuSeconds(t.proc) - cpu0) / seconds;
      rates.get(t.name)!.push(rate);
      cores.get(t.name)!.push(used);
      perOp.get(t.name)!.push((used * 1e6) / rate);
      console.log(
        `  round ${r + 1} ${t.name.padEnd(16)} ${rate.toFixed(0).padStart(8)}/s  ${used.toFixed(2)} cores  ${((used * 1e6) / rate).toFixed(1)} cpu us each`,
      );
    }
  const med = (m: Map<string, number[]>) =>
    Object.fromEntries(targets.map((t) => [t.name, median(m.get(t.name)!)]));
  const out = { rate: med(rates), cores: med(cores), cpu_us: med(perOp) };
  for (const t of targets)
    console.log(
      `  ${t.name.padEnd(16)} ${out.rate[t.name]!.toFixed(0).padStart(8)}/s  ${out.cores[t.name]!.toFixed(2)} cores  ${out.cpu_us[t.name]!.toFixed(1)} cpu us each`,
    );
  return out;
}

/**
 * A row's table; `cols` are the ratio columns by target: this target's req/s over
 * HAProxy's, nginx's and direct's in the same row (blank where it does not apply).
 */
function printTable(
  rows: readonly Row[],
  cols: Readonly<Record<"haproxy" | "nginx" | "direct", Readonly<Record<string, number>>>>,
  showMb: boolean,
  unit = "req",
): void {
  const fmt = (x: number | undefined) => (x === undefined ? "" : x.toFixed(2));
  const width = Math.max(12, ...rows.map((r) => r.target.length));
  const mbHead = showMb ? ` ${"MB/s".padStart(6)}` : "";
  console.log(
    `${"target".padEnd(width)} ${`${unit}/s`.padStart(9)}${mbHead} ${"min-max".padStart(17)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"errors".padStart(6)} ${"/haproxy".padStart(8)} ${"/nginx".padStart(6)} ${"/direct".padStart(7)} ${"cpu us/req".padStart(10)}`,
  );
  for (const row of rows) {
    const t = row.target;
    const mb = showMb ? ` ${row.body_mb_per_s.toFixed(0).padStart(6)}` : "";
    console.log(
      `${t.padEnd(width)} ${row.rps.toFixed(0).padStart(9)}${mb} ${`${row.min_rps.toFixed(0)}-${row.max_rps.toFixed(0)}`.padStart(17)} ${row.p50_ms.toFixed(2).padStart(7)} ${row.p99_ms.toFixed(2).padStart(7)} ${String(row.errors).padStart(6)} ${fmt(cols.haproxy[t]).padStart(8)} ${fmt(cols.nginx[t]).padStart(6)} ${fmt(cols.direct[t]).padStart(7)} ${row.cpu_us_per_req.toFixed(1).padStart(10)}`,
    );
  }
  if (unit !== "req")
    console.log(`(${unit}/s: round trips per second; cpu us/req: per round trip)`);
}

// Ctrl-C or a kill: stop what the benchmark started (by PID) before leaving.
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    console.error(`\n${sig}: stopping the benchmark's processes`);
    void stopAll().finally(() => process.exit(130));
  });

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (e: Error) => {
    await stopAll();
    console.error(`benchmark failed: ${e.message}`);
    process.exitCode = 1;
  },
);
