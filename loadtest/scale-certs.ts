// Many certificates on one listener, lintel next to HAProxy in the same run: N ECDSA
// certificates in one folder (lib/cert-folder.ts), served by HAProxy (`crt <folder>`) and
// by lintel (`certs: [{dir: <folder>}]`, net engine). For each N it measures the time from
// the proxy's start until it first presents the right certificate for a name in the middle
// of the set, resident memory then, and full handshakes per second for that name next to
// a one-certificate listener in the same process (interleaved rounds, the best of each
// kept: this machine is shared, and the best round is the one least disturbed); for
// lintel also the time and CPU to serve one certificate changed, added and removed
// (HAProxy reads a folder only when it starts). Proxies run on CPU 0, the backend and
// h2load on CPU 1. Prints a table with the ratios to HAProxy and writes
// loadtest/results/scale-certs.json.
//
//   npm run -s build && node dist/loadtest/scale-certs.js [--certs 10000,50000] [--quick]

import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Issuer, newIssuer, writeCertFolder, writeLeaf } from "./lib/cert-folder.js";
import { makeBenchCert } from "./lib/certs.js";
import type { HandshakeLoadResult } from "./lib/handshakes.js";
import { backendConfig } from "./lib/haproxy.js";
import {
  commandExists,
  cpuSeconds,
  freePort,
  type Proc,
  rssKb,
  start,
  stopAll,
} from "./lib/processes.js";
import { msUntil, presented, runSniHandshakes } from "./lib/sni-probe.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const lintelBin = join(root, "bin/lintel.js");
const PROXY_CPU = "0";
const LOAD_CPU = "1";
/** Longest wait for a proxy to start serving (50,000 certificates take HAProxy about a minute). */
const START_TIMEOUT_MS = 300_000;
/** Longest wait for a change to be served (lintel waits 200 ms for a burst of writes to end). */
const CHANGE_TIMEOUT_MS = 30_000;

interface ProxyRun {
  readonly startMs: number;
  readonly rssMb: number;
  /** The best round for the middle name, and for the one-certificate listener. */
  readonly handshakes: HandshakeLoadResult;
  readonly oneCert: HandshakeLoadResult;
  /**
   * The proxy's CPU per handshake over all rounds (microseconds): what a handshake costs
   * it, whatever else the machine is doing.
   */
  readonly cpuUs: number;
  readonly oneCertCpuUs: number;
}

interface ChangeRun {
  readonly ms: number;
  readonly cpuMs: number;
}

interface ScaleRow {
  readonly certs: number;
  readonly haproxy: ProxyRun;
  readonly lintel: ProxyRun & {
    readonly changed: ChangeRun;
    readonly added: ChangeRun;
    readonly removed: ChangeRun;
  };
}

const rssMbOf = (p: Proc) => rssKb(p).reduce((n, r) => n + r.rss_kb, 0) / 1024;

interface Ports {
  readonly many: number;
  readonly one: number;
}

/** The one-certificate listener's certificate. */
interface OneCert {
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly combinedPath: string;
}

function haproxyConfig(ports: Ports, folder: string, one: OneCert, backendPort: number): string {
  // ssl-load-extra-del-ext + key: X.crt's key is X.key (the same folder lintel reads).
  return `global
  nbthread 1
  maxconn 4096
  ssl-load-extra-files key
  ssl-load-extra-del-ext

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive

frontend scale
  bind 127.0.0.1:${ports.many} ssl crt ${folder}
  bind 127.0.0.1:${ports.one} ssl crt ${one.combinedPath}
  default_backend app

backend app
  server app 127.0.0.1:${backendPort}
`;
}

function lintelConfig(
  ports: Ports,
  admin: number,
  folder: string,
  one: OneCert,
  backendPort: number,
): string {
  return `admin: {ip: 127.0.0.1, port: ${admin}}
routers:
- protocol: http
  label: scale
  dtab: /svc => /$/inet/127.0.0.1/${backendPort}
  servers:
  - {ip: 127.0.0.1, port: ${ports.many}, tls: {certs: [{dir: ${folder}}]}}
  - {ip: 127.0.0.1, port: ${ports.one}, tls: {certPath: ${one.certPath}, keyPath: ${one.keyPath}}}
`;
}

/** Starts a proxy and waits until it presents `name`'s certificate: the milliseconds that took. */
async function startServing(
  label: string,
  cmd: string,
  args: string[],
  port: number,
  name: string,
): Promise<{ proc: Proc; startMs: number }> {
  const t0 = performance.now();
  const proc = start(label, cmd, args, PROXY_CPU);
  const ms = await msUntil(
    async () => (await presented(port, name))?.cn === name,
    START_TIMEOUT_MS,
    proc,
  );
  if (ms === undefined) throw new Error(`${label} did not serve ${name} in time`);
  return { proc, startMs: performance.now() - t0 };
}

interface Load {
  readonly connections: number;
  readonly rate: number;
  readonly rounds: number;
}

const best = (a: HandshakeLoadResult | undefined, b: HandshakeLoadResult) =>
  a === undefined || b.perSecond > a.perSecond ? b : a;

async function measureRun(
  proc: Proc,
  startMs: number,
  ports: Ports,
  name: string,
  one: OneCert,
  load: Load,
): Promise<ProxyRun> {
  await new Promise((r) => setTimeout(r, 1000)); // settle: RSS after start, not mid-load
  const rssMb = rssMbOf(proc);
  let many: HandshakeLoadResult | undefined;
  let single: HandshakeLoadResult | undefined;
  const cpu = { many: 0, one: 0, manyN: 0, oneN: 0 };
  const measured = async (port: number, sni: string, into: "many" | "one") => {
    const c0 = cpuSeconds(proc);
    const r = await runSniHandshakes({ port, name: sni, ...load, cpus: LOAD_CPU });
    cpu[into] += cpuSeconds(proc) - c0;
    cpu[into === "many" ? "manyN" : "oneN"] += r.succeeded;
    return r;
  };
  // Warm-up, not counted: the first handshakes build the contexts, and the first major
  // GC collects what startup left behind.
  const warm = { connections: 500, rate: 500, cpus: LOAD_CPU };
  await runSniHandshakes({ port: ports.many, name, ...warm });
  await runSniHandshakes({ port: ports.one, name: one.name, ...warm });
  for (let i = 0; i < load.rounds; i++) {
    many = best(many, await measured(ports.many, name, "many"));
    single = best(single, await measured(ports.one, one.name, "one"));
  }
  return {
    startMs,
    rssMb,
    handshakes: many!,
    oneCert: single!,
    cpuUs: (cpu.many / cpu.manyN) * 1e6,
    oneCertCpuUs: (cpu.one / cpu.oneN) * 1e6,
  };
}

/** Time and lintel's CPU until `served` holds after `act`. */
async function change(
  proc: Proc,
  act: () => Promise<void>,
  served: () => Promise<boolean>,
): Promise<ChangeRun> {
  const cpu0 = cpuSeconds(proc);
  const t0 = performance.now();
  await act();
  const ms = await msUntil(served, CHANGE_TIMEOUT_MS, proc);
  if (ms === undefined) throw new Error("lintel did not serve a changed certificate in time");
  return { ms: performance.now() - t0, cpuMs: (cpuSeconds(proc) - cpu0) * 1000 };
}

async function scaleRow(
  dir: string,
  issuer: Issuer,
  count: number,
  one: OneCert,
  backendPort: number,
  load: Load,
): Promise<ScaleRow> {
  const folderDir = join(dir, `certs-${count}`);
  mkdirSync(folderDir);
  const t0 = performance.now();
  const folder = await writeCertFolder(folderDir, count, issuer);
  console.log(`${count} certificates written in ${Math.round(performance.now() - t0)} ms`);
  const mid = Math.floor(count / 2);
  const name = folder.nameOf(mid);

  const hPorts = { many: await freePort(), one: await freePort() };
  const hCfg = join(dir, `haproxy-${count}.cfg`);
  writeFileSync(hCfg, haproxyConfig(hPorts, folderDir, one, backendPort));
  const h = await startServing("haproxy", "haproxy", ["-f", hCfg], hPorts.many, name);
  const haproxy = await measureRun(h.proc, h.startMs, hPorts, name, one, load);
  await h.proc.stop();

  const ports = { many: await freePort(), one: await freePort() };
  const lPort = ports.many;
  const lCfg = join(dir, `lintel-${count}.yaml`);
  writeFileSync(lCfg, lintelConfig(ports, await freePort(), folderDir, one, backendPort));
  const l = await startServing("lintel", "node", [lintelBin, "run", lCfg], lPort, name);
  const run = await measureRun(l.proc, l.startMs, ports, name, one, load);
  const before = await presented(lPort, name);
  const changed = await change(
    l.proc,
    () => writeLeaf(folderDir, `h${mid}`, name, issuer.ca, issuer.pool[0]!),
    async () => {
      const now = await presented(lPort, name);
      return now !== undefined && now.serial !== before?.serial;
    },
  );
  const addedName = folder.nameOf(count);
  const added = await change(
    l.proc,
    () => writeLeaf(folderDir, `h${count}`, addedName, issuer.ca, issuer.pool[0]!),
    async () => (await presented(lPort, addedName))?.cn === addedName,
  );
  const gone = folder.nameOf(mid + 1);
  const removed = await change(
    l.proc,
    async () => {
      unlinkSync(join(folderDir, `h${mid + 1}.crt`));
      unlinkSync(join(folderDir, `h${mid + 1}.key`));
    },
    async () => {
      const now = await presented(lPort, gone);
      return now !== undefined && now.cn !== gone;
    },
  );
  await l.proc.stop();
  rmSync(folderDir, { recursive: true, force: true });
  return { certs: count, haproxy, lintel: { ...run, changed, added, removed } };
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);

function report(rows: ScaleRow[]): void {
  for (const r of rows) {
    const h = r.haproxy;
    const l = r.lintel;
    console.log(`\n${r.certs} certificates   haproxy        lintel         lintel/haproxy`);
    console.log(
      `first answer      ${fmt(h.startMs).padStart(8)} ms   ${fmt(l.startMs).padStart(8)} ms   ${fmt(l.startMs / h.startMs, 2)}`,
    );
    console.log(
      `RSS after start   ${fmt(h.rssMb).padStart(8)} MB   ${fmt(l.rssMb).padStart(8)} MB   ${fmt(l.rssMb / h.rssMb, 2)}`,
    );
    console.log(
      `handshakes/s      ${fmt(h.handshakes.perSecond).padStart(11)}   ${fmt(l.handshakes.perSecond).padStart(11)}   ${fmt(l.handshakes.perSecond / h.handshakes.perSecond, 2)}`,
    );
    console.log(
      `  one-cert        ${fmt(h.oneCert.perSecond).padStart(11)}   ${fmt(l.oneCert.perSecond).padStart(11)}`,
    );
    console.log(
      `  vs one-cert     ${fmt((100 * h.handshakes.perSecond) / h.oneCert.perSecond).padStart(10)}%   ${fmt((100 * l.handshakes.perSecond) / l.oneCert.perSecond).padStart(10)}%`,
    );
    console.log(
      `CPU/handshake     ${fmt(h.cpuUs).padStart(8)} us   ${fmt(l.cpuUs).padStart(8)} us   ${fmt(l.cpuUs / h.cpuUs, 2)}`,
    );
    console.log(
      `  one-cert        ${fmt(h.oneCertCpuUs).padStart(8)} us   ${fmt(l.oneCertCpuUs).padStart(8)} us`,
    );
    console.log(
      `  errors          ${String(h.handshakes.errors).padStart(11)}   ${String(l.handshakes.errors).padStart(11)}`,
    );
    for (const [what, c] of [
      ["changed", l.changed],
      ["added", l.added],
      ["removed", l.removed],
    ] as const) {
      console.log(
        `one ${what.padEnd(8)}     (restart)      ${fmt(c.ms).padStart(6)} ms, CPU ${fmt(c.cpuMs)} ms`,
      );
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { certs: { type: "string" }, quick: { type: "boolean", default: false } },
  });
  const counts = (values.certs ?? (values.quick ? "2000" : "10000,50000"))
    .split(",")
    .map((s) => Number(s.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 2))
    throw new Error("--certs takes certificate counts, e.g. 10000,50000");
  for (const cmd of ["haproxy", "h2load", "taskset"])
    if (!commandExists(cmd)) throw new Error(`${cmd} is needed (apt-get install ${cmd})`);
  // Offered above what either proxy serves on one core; h2load wants rate <= connections.
  const load = values.quick
    ? { connections: 2000, rate: 2000, rounds: 2 }
    : { connections: 4000, rate: 2000, rounds: 3 };
  const dir = mkdtempSync(join(tmpdir(), "lintel-scale-"));
  tempDir = dir;
  try {
    const backendPort = await freePort();
    writeFileSync(join(dir, "body"), "ok\n");
    writeFileSync(join(dir, "backend.cfg"), backendConfig(backendPort, join(dir, "body"), 3));
    start("backend", "haproxy", ["-f", join(dir, "backend.cfg")], LOAD_CPU);
    const issuer = await newIssuer();
    const one = makeBenchCert(dir);
    const rows: ScaleRow[] = [];
    for (const n of counts) rows.push(await scaleRow(dir, issuer, n, one, backendPort, load));
    report(rows);
    const results = join(root, "loadtest/results");
    mkdirSync(results, { recursive: true });
    writeFileSync(
      join(results, "scale-certs.json"),
      `${JSON.stringify({ date: new Date().toISOString(), load, rows }, null, 2)}\n`,
    );
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Removed however the run ends. */
let tempDir: string | undefined;

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    void stopAll().finally(() => {
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

main().catch(async (e) => {
  console.error((e as Error).message);
  await stopAll();
  process.exit(1);
});
