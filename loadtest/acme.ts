// `npm run bench:acme`: lintel next to Caddy for ACME, each against its own fresh Pebble on
// loopback in one run: the time from process start until 20 names serve certificates
// ordered through HTTP-01, and the first handshake for new on-demand names.

import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { createServer, type Server } from "node:http";
import { cpus, release } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "node:tls";
import { adminStatus } from "../test/e2e/child.js";
import { cleanup, freePort, tempDir, writeFiles } from "../test/e2e/harness.js";
import { type Pebble, startPebble } from "../test/support/pebble.js";
import { commandExists, type Proc, start, stopAll, waitForPort } from "./lib/processes.js";

const ROUNDS = 3;
const NAMES = Array.from({ length: 20 }, (_, i) => `n${i + 1}.test`);
const ON_DEMAND_NAMES = Array.from({ length: 10 }, (_, i) => `a${i + 1}.od.test`);
/** Polling the 20 names: a pass over the pending ones, then this pause; the whole wait is bounded. */
const POLL_MS = 50;
const ISSUE_TIMEOUT_MS = 120_000;
/** One poll handshake; a first on-demand handshake may wait for its order (lintel: waitMs 15 s). */
const POLL_HANDSHAKE_MS = 5_000;
const ON_DEMAND_HANDSHAKE_MS = 30_000;
const READY_MS = 15_000;
const EMAIL = "ops@example.com";

const ROOT = resolve(import.meta.dirname, "../..");
const LINTEL = join(ROOT, "bin", "lintel.js");

type TargetName = "lintel" | "caddy";
const TARGETS: readonly TargetName[] = ["lintel", "caddy"];
const LABEL: Record<TargetName, string> = { lintel: "lintel", caddy: "Caddy" };

// ---- handshakes -----------------------------------------------------------------------------

type Seen =
  | { readonly kind: "refused" }
  | { readonly kind: "failed"; readonly error: string }
  | { readonly kind: "cert"; readonly pebble: boolean; readonly subject: string };

/** One TLS handshake with SNI `name` on 127.0.0.1:`port`: how long it took and what it presented. */
function handshake(port: number, name: string, timeoutMs: number): Promise<[number, Seen]> {
  return new Promise((done) => {
    const t0 = performance.now();
    const s = connect({ host: "127.0.0.1", port, servername: name, rejectUnauthorized: false });
    const finish = (seen: Seen) => {
      clearTimeout(timer);
      s.destroy();
      done([performance.now() - t0, seen]);
    };
    const timer = setTimeout(
      () => finish({ kind: "failed", error: `no handshake in ${timeoutMs} ms` }),
      timeoutMs,
    );
    s.once("secureConnect", () => {
      const c = s.getPeerCertificate();
      // Issued by Pebble (its intermediate) for this very name, not a default certificate.
      const pebble =
        c.raw !== undefined &&
        /^Pebble Intermediate CA/.test(String(c.issuer?.CN ?? "")) &&
        new X509Certificate(c.raw).checkHost(name) !== undefined;
      finish({ kind: "cert", pebble, subject: c.subjectaltname ?? String(c.subject?.CN) });
    });
    s.once("error", (e: NodeJS.ErrnoException) =>
      finish(
        e.code === "ECONNREFUSED" ? { kind: "refused" } : { kind: "failed", error: e.message },
      ),
    );
  });
}

// ---- the targets ----------------------------------------------------------------------------

interface Ports {
  readonly http: number;
  readonly tls: number;
  readonly admin: number;
}

async function freePorts(): Promise<Ports> {
  const taken = new Set<number>();
  const next = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  return { http: await next(), tls: await next(), admin: await next() };
}

/** What a target serves: the 20 names, or on-demand names approved by the ask endpoint. */
type Mode = { readonly kind: "names" } | { readonly kind: "onDemand"; readonly ask: string };

function lintelConfig(ports: Ports, pebble: Pebble, dir: string, mode: Mode, upstream: number) {
  const which =
    mode.kind === "names"
      ? `names: [${NAMES.join(", ")}]`
      : `onDemand: {ask: "${mode.ask}", waitMs: 15000, maxPerMinute: 100, maxConcurrent: 10}`;
  return `admin: {ip: 127.0.0.1, port: ${ports.admin}}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${upstream}
  servers:
  - {ip: 127.0.0.1, port: ${ports.http}, httpsRedirect: {port: ${ports.tls}}}
  - ip: 127.0.0.1
    port: ${ports.tls}
    tls:
      acme:
        directory: ${pebble.directoryUrl}
        email: ${EMAIL}
        trustCerts: [${dir}/pebble-ca.pem]
        storage: {kind: dir, path: ${dir}/acme}
        challenges: [http-01]
        ${which}
`;
}

/** Caddy 2.6's JSON: HTTP and HTTPS servers on loopback, one ACME policy on Pebble, HTTP-01 only. */
function caddyConfig(ports: Ports, pebble: Pebble, dir: string, mode: Mode): object {
  const issuer = {
    module: "acme",
    ca: pebble.directoryUrl,
    email: EMAIL,
    trusted_roots_pem_files: [`${dir}/pebble-ca.pem`],
    challenges: {
      bind_host: "127.0.0.1",
      http: { alternate_port: ports.http },
      "tls-alpn": { disabled: true },
    },
  };
  const respond = [{ handler: "static_response", body: "ok" }];
  return {
    admin: { disabled: true },
    storage: { module: "file_system", root: `${dir}/caddy-data` },
    apps: {
      http: {
        http_port: ports.http,
        https_port: ports.tls,
        servers: {
          http: { listen: [`127.0.0.1:${ports.http}`], routes: [] },
          https: {
            listen: [`127.0.0.1:${ports.tls}`],
            routes: [
              mode.kind === "names"
                ? { match: [{ host: NAMES }], handle: respond, terminal: true }
                : { handle: respond, terminal: true },
            ],
          },
        },
      },
      tls: {
        automation:
          mode.kind === "names"
            ? { policies: [{ subjects: NAMES, issuers: [issuer] }] }
            : { policies: [{ issuers: [issuer], on_demand: true }], on_demand: { ask: mode.ask } },
      },
    },
  };
}

interface Running {
  readonly proc: Proc;
  readonly pebble: Pebble;
  readonly ports: Ports;
  /** performance.now() just before the process was spawned. */
  readonly startedAt: number;
  readonly complaints: readonly string[];
}

/** A fresh Pebble on the target's ports, then the target on empty storage. */
async function launch(target: TargetName, mode: Mode, upstream: number): Promise<Running> {
  const ports = await freePorts();
  const pebble = await startPebble({ httpPort: ports.http, tlsPort: ports.tls });
  const dir = tempDir(`lintel-bench-acme-${target}-`);
  writeFiles(dir, { "pebble-ca.pem": pebble.caCertPem });
  let cmd: string;
  let args: string[];
  let env: Record<string, string>;
  if (target === "lintel") {
    writeFiles(dir, { "lintel.yaml": lintelConfig(ports, pebble, dir, mode, upstream) });
    [cmd, args] = [process.execPath, [LINTEL, "run", join(dir, "lintel.yaml")]];
    env = { LINTEL_LOG_LEVEL: "info" };
  } else {
    writeFiles(dir, {
      "caddy.json": JSON.stringify(caddyConfig(ports, pebble, dir, mode), null, 2),
      "home/.keep": "",
    });
    [cmd, args] = ["caddy", ["run", "--config", join(dir, "caddy.json")]];
    // Caddy keeps its data, autosaved config and locks under these: all in the temp dir.
    env = {
      HOME: `${dir}/home`,
      XDG_DATA_HOME: `${dir}/home/data`,
      XDG_CONFIG_HOME: `${dir}/home/config`,
    };
  }
  const startedAt = performance.now();
  const proc = start(target, cmd, args, undefined, env);
  return { proc, pebble, ports, startedAt, complaints: complaintsOf(proc) };
}

async function stop(r: Running): Promise<void> {
  await r.proc.stop();
  await r.pebble.stop();
}

/** Both ports accept connections (and lintel's admin says ready). */
async function ready(target: TargetName, r: Running): Promise<void> {
  await waitForPort(r.ports.http, r.proc, READY_MS);
  await waitForPort(r.ports.tls, r.proc, READY_MS);
  if (target !== "lintel") return;
  const end = performance.now() + READY_MS;
  while ((await adminStatus(r.ports.admin, "/admin/ready")) !== 200) {
    if (performance.now() > end) throw new Error(`lintel not ready:\n${r.proc.output()}`);
    await sleep(POLL_MS);
  }
}

/**
 * Warnings that come with Pebble, not with either server: no OCSP responder in its certificates
 * (Caddy), a root that is new at each start and in no trust store (lintel); and Caddy's notes
 * on this config (admin off, a plain-HTTP server).
 */
const EXPECTED =
  /no OCSP server specified|neither in the chain nor a known root CA|admin endpoint disabled|listening only on the HTTP port/;

/**
 * Collects the process's other warning and error lines (lintel's WARN/ERROR, Caddy's JSON
 * levels) as they come: the output the process keeps is only its tail.
 */
function complaintsOf(proc: Proc): string[] {
  const lines: string[] = [];
  for (const stream of [proc.child.stdout, proc.child.stderr]) {
    let partial = "";
    stream?.on("data", (d: Buffer) => {
      const parts = (partial + d.toString()).split("\n");
      partial = parts.pop()!;
      for (const l of parts)
        if (/^\S+ (WARN|ERROR) |"level":"(warn|error)"/.test(l) && !EXPECTED.test(l))
          lines.push(l.slice(0, 400));
    });
  }
  return lines;
}

function reportComplaints(target: TargetName, r: Running): void {
  if (r.complaints.length === 0) return;
  console.log(`    ${LABEL[target]} logged ${r.complaints.length} warning/error line(s):`);
  for (const l of r.complaints.slice(0, 5)) console.log(`      ${l}`);
}

// ---- 1. issuing 20 names ------------------------------------------------------------------------

interface IssueRound {
  readonly listeningMs: number;
  /** Milliseconds from spawn at which each name first presented its Pebble certificate, sorted. */
  readonly issuedMs: readonly number[];
  readonly orders: number;
}

async function issueRound(target: TargetName, upstream: number): Promise<IssueRound> {
  const r = await launch(target, { kind: "names" }, upstream);
  try {
    const done = new Map<string, number>();
    let listeningMs: number | undefined;
    const end = r.startedAt + ISSUE_TIMEOUT_MS;
    while (done.size < NAMES.length) {
      if (r.proc.child.exitCode !== null || r.proc.child.signalCode !== null)
        throw new Error(`${target} exited:\n${r.proc.output()}`);
      if (performance.now() > end) {
        const missing = NAMES.filter((n) => !done.has(n));
        throw new Error(
          `${target}: ${missing.length} names without a Pebble certificate after ${ISSUE_TIMEOUT_MS / 1000} s (${missing.join(", ")}); its output:\n${r.proc.output()}`,
        );
      }
      for (const name of NAMES) {
        if (done.has(name)) continue;
        const [, seen] = await handshake(r.ports.tls, name, POLL_HANDSHAKE_MS);
        const at = performance.now() - r.startedAt;
        if (seen.kind !== "refused") listeningMs ??= at;
        if (seen.kind === "cert" && seen.pebble) done.set(name, at);
      }
      await sleep(POLL_MS);
    }
    // Pebble's own record: each name was issued by this round's Pebble.
    for (const name of NAMES)
      if ((await r.pebble.issuedFor(name)) < 1)
        throw new Error(`${target}: Pebble has no certificate for ${name}`);
    reportComplaints(target, r);
    return {
      listeningMs: listeningMs ?? 0,
      issuedMs: [...done.values()].sort((a, b) => a - b),
      orders: r.pebble.orders(),
    };
  } finally {
    await stop(r);
  }
}

// ---- 2. on-demand ------------------------------------------------------------------------------

interface OnDemandRound {
  /** First handshake per new name, connect to secureConnect, in ms; NaN when it failed. */
  readonly first: readonly number[];
  /** A second handshake per name, once issued. */
  readonly again: readonly number[];
  readonly failures: readonly string[];
  readonly orders: number;
}

async function onDemandRound(
  target: TargetName,
  ask: string,
  upstream: number,
): Promise<OnDemandRound> {
  const r = await launch(target, { kind: "onDemand", ask }, upstream);
  try {
    await ready(target, r);
    const first: number[] = [];
    const failures: string[] = [];
    for (const name of ON_DEMAND_NAMES) {
      const [ms, seen] = await handshake(r.ports.tls, name, ON_DEMAND_HANDSHAKE_MS);
      if (seen.kind === "cert" && seen.pebble) first.push(ms);
      else {
        first.push(Number.NaN);
        failures.push(
          `${name}: ${seen.kind === "cert" ? `presented ${seen.subject}` : seen.kind === "failed" ? seen.error : "refused"} after ${ms.toFixed(0)} ms`,
        );
      }
    }
    const again: number[] = [];
    for (const [i, name] of ON_DEMAND_NAMES.entries()) {
      if (Number.isNaN(first[i]!)) continue;
      const [ms, seen] = await handshake(r.ports.tls, name, POLL_HANDSHAKE_MS);
      if (seen.kind === "cert" && seen.pebble) again.push(ms);
      else failures.push(`${name} (second handshake): ${seen.kind}`);
    }
    if (failures.length > 0) {
      console.log(`    ${LABEL[target]} failures:\n      ${failures.join("\n      ")}`);
      console.log(`    ${LABEL[target]} output (last lines):`);
      for (const l of r.proc.output().trim().split("\n").slice(-15))
        console.log(`      ${l.slice(0, 300)}`);
    }
    reportComplaints(target, r);
    return { first, again, failures, orders: r.pebble.orders() };
  } finally {
    await stop(r);
  }
}

/** The ask endpoint both targets consult (200 for *.od.test), and lintel's upstream. */
async function startAskServer(): Promise<{ server: Server; port: number; asked: string[] }> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/ask") {
      res.end("ok");
      return;
    }
    const domain = url.searchParams.get("domain") ?? "";
    asked.push(domain);
    res.writeHead(domain.endsWith(".od.test") ? 200 : 403).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  return { server, port: typeof a === "object" && a ? a.port : 0, asked };
}

// ---- statistics and output --------------------------------------------------------------------

/** The value at rank p (0..1) of the sorted numbers, NaN left out. */
function rank(xs: readonly number[], p: number): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)] ?? Number.NaN;
}
const median = (xs: readonly number[]) => rank(xs, 0.5);
const sec = (ms: number) => (ms / 1000).toFixed(2);
const msf = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0));

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n")[0]!.trim() || "unknown";
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  for (const r of rows)
    console.log(
      r.map((x, j) => (j === 0 ? x.padEnd(widths[j]!) : x.padStart(widths[j]!))).join("  "),
    );
}

// ---- the run ---------------------------------------------------------------------------------

async function main(): Promise<number> {
  const missing = [
    ["caddy", "caddy"],
    ["pebble", "pebble"],
    ["pebble-challtestsrv", "pebble"],
  ].filter(([cmd]) => !commandExists(cmd!));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map(([, pkg]) => pkg))].join(" ");
    console.error(
      `bench:acme needs ${missing.map(([cmd]) => `\`${cmd}\``).join(", ")} (Debian: apt-get install -y ${pkgs}); nothing was started`,
    );
    return 2;
  }
  console.log(
    `machine: ${cpus()[0]?.model ?? "unknown"} x ${cpus().length} cores, Linux ${release()}`,
  );
  console.log(
    `versions: node ${process.version}, caddy ${firstLine("caddy", ["version"])}, pebble ${firstLine("dpkg-query", ["-W", "-f=${Version}", "pebble"])} (Debian package)`,
  );
  console.log(
    "each target gets a fresh Pebble (default settings: 5% of nonces rejected, PEBBLE_VA_NOSLEEP=1) and empty storage per round; rounds interleaved; all on 127.0.0.1",
  );

  const ask = await startAskServer();
  const askUrl = `http://127.0.0.1:${ask.port}/ask`;
  try {
    console.log(
      `\n[issue] ${NAMES.length} names (${NAMES[0]} … ${NAMES.at(-1)}), HTTP-01 only; from spawn until a handshake for every name presents its Pebble certificate (polled every ${POLL_MS} ms)`,
    );
    const issue: Record<TargetName, IssueRound[]> = { lintel: [], caddy: [] };
    for (let round = 1; round <= ROUNDS; round++)
      for (const t of TARGETS) {
        const r = await issueRound(t, ask.port);
        issue[t].push(r);
        console.log(
          `  round ${round} ${LABEL[t].padEnd(6)}: listening ${sec(r.listeningMs)} s, first cert ${sec(r.issuedMs[0]!)} s, 10th ${sec(r.issuedMs[9]!)} s, all ${NAMES.length} ${sec(r.issuedMs.at(-1)!)} s; Pebble finalized ${r.orders} orders`,
        );
      }

    console.log(
      `\n[on-demand] ${ON_DEMAND_NAMES.length} new names per round (${ON_DEMAND_NAMES[0]} …), one after the other, approved by ${askUrl}; first handshake from connect to secureConnect with a Pebble certificate, then a second handshake per name`,
    );
    const od: Record<TargetName, OnDemandRound[]> = { lintel: [], caddy: [] };
    for (let round = 1; round <= ROUNDS; round++)
      for (const t of TARGETS) {
        const r = await onDemandRound(t, askUrl, ask.port);
        od[t].push(r);
        console.log(
          `  round ${round} ${LABEL[t].padEnd(6)}: first handshakes (ms) ${r.first.map(msf).join(" ")}; p50 ${msf(median(r.first))}, max ${msf(rank(r.first, 1))}; second p50 ${msf(median(r.again))} ms; ${r.failures.length} failures; Pebble finalized ${r.orders} orders`,
        );
      }
    console.log(`  the ask endpoint was asked ${ask.asked.length} times`);

    const issueAt = (t: TargetName, pick: (r: IssueRound) => number) => median(issue[t].map(pick));
    const all = (t: TargetName, pick: (r: OnDemandRound) => readonly number[]) =>
      od[t].flatMap(pick);
    const measures: [string, (t: TargetName) => number, (ms: number) => string][] = [
      ["issue: listening (s)", (t) => issueAt(t, (r) => r.listeningMs), sec],
      ["issue: first certificate (s)", (t) => issueAt(t, (r) => r.issuedMs[0]!), sec],
      ["issue: 10th certificate (s)", (t) => issueAt(t, (r) => r.issuedMs[9]!), sec],
      [
        `issue: all ${NAMES.length} certificates (s)`,
        (t) => issueAt(t, (r) => r.issuedMs.at(-1)!),
        sec,
      ],
      ["on-demand first handshake p50 (ms)", (t) => median(all(t, (r) => r.first)), msf],
      [
        "on-demand first handshake max (ms)",
        (t) =>
          rank(
            all(t, (r) => r.first),
            1,
          ),
        msf,
      ],
      ["on-demand, first name of a round (ms)", (t) => median(od[t].map((r) => r.first[0]!)), msf],
      ["second handshake p50 (ms)", (t) => median(all(t, (r) => r.again)), msf],
      [
        "second handshake max (ms)",
        (t) =>
          rank(
            all(t, (r) => r.again),
            1,
          ),
        msf,
      ],
    ];
    console.log(
      `\nsummary: medians of ${ROUNDS} rounds (issue), p50/max over ${ROUNDS} x ${ON_DEMAND_NAMES.length} names (on-demand); times: lower is better, so lintel/Caddy < 1 means lintel is faster`,
    );
    printTable([
      ["measurement", "lintel", "Caddy", "lintel/Caddy"],
      ...measures.map(([label, value, fmt]) => {
        const [l, c] = [value("lintel"), value("caddy")];
        return [label, fmt(l), fmt(c), (l / c).toFixed(2)];
      }),
    ]);
    const failed = TARGETS.map((t) => od[t].flatMap((r) => r.failures).length);
    if (failed.some((n) => n > 0))
      console.log(`on-demand failures: lintel ${failed[0]}, Caddy ${failed[1]} (listed above)`);
    return 0;
  } finally {
    ask.server.close();
  }
}

// Ctrl-C or a kill: stop what the benchmark started (by PID) before leaving.
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    console.error(`\n${sig}: stopping the benchmark's processes`);
    void stopAll()
      .then(cleanup)
      .finally(() => process.exit(130));
  });

try {
  process.exitCode = await main();
} catch (e) {
  console.error(`bench:acme failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  await cleanup();
}
