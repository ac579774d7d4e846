// `npm run bench`: lintel next to HAProxy, measured in the same run on the same machine.
// A fast backend (HAProxy answering from memory), HAProxy as a proxy (one thread,
// keep-alive to the backend) and lintel (one thread; uws and node engines) run on
// loopback; wrk drives each target with the same connections and duration, in
// interleaved rounds. Each row also gives the CPU time the proxy spent per request, which
// stays meaningful when the load generator, not the proxy, sets the pace (the handshake
// row on a small machine). Prints a table and writes loadtest/results/latest.json.
//
//   npm run bench -- [--quick] [--duration S] [--connections N] [--body BYTES] [--rounds N]

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makeBenchCert } from "./lib/certs.js";
import { backendConfig, proxyConfig } from "./lib/haproxy.js";
import {
  commandExists,
  cpuSeconds,
  freePort,
  type Proc,
  start,
  stopAll,
  waitForPort,
} from "./lib/processes.js";
import { runWrk, type WrkResult } from "./lib/wrk.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

interface Target {
  readonly name: string;
  readonly url: string;
  /** The process serving it, checked between rounds. */
  readonly proc: Proc;
}

interface Scenario {
  readonly name: string;
  readonly what: string;
  readonly targets: readonly Target[];
  readonly connections?: number;
  readonly headers?: Record<string, string>;
}

interface Row {
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
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The first line a tool prints about its version (wrk prints it and exits 1). */
function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n")[0]!.trim() || "unknown";
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean" },
      duration: { type: "string" },
      connections: { type: "string" },
      body: { type: "string" },
      rounds: { type: "string" },
    },
  });
  const quick = values.quick ?? false;
  const durationS = Number(values.duration ?? (quick ? 3 : 10));
  const connections = Number(values.connections ?? 64);
  const bodyBytes = Number(values.body ?? 64);
  const rounds = Number(values.rounds ?? (quick ? 2 : 3));
  // Long enough for the JIT to settle and every connection pool to fill.
  const warmupS = quick ? 2 : 4;

  const missing = ["wrk", "haproxy", "taskset", "openssl"].filter((c) => !commandExists(c));
  if (missing.length > 0) {
    console.error(
      `the benchmark needs ${missing.join(", ")}; install them, e.g. apt-get install -y wrk haproxy util-linux openssl`,
    );
    return 2;
  }
  const lintelBin = join(root, "bin/lintel.js");
  if (!existsSync(join(root, "dist/gateway/cli/main.js"))) {
    console.error("build lintel first: npm run build");
    return 2;
  }

  // Two cores or more: the proxies get core 0 alone; the backend and wrk share the rest.
  const n = cpus().length;
  const proxyCpu = n >= 2 ? "0" : undefined;
  const loadCpus = n >= 2 ? `1-${n - 1}` : undefined;

  const dir = mkdtempSync(join(tmpdir(), "lintel-bench-"));
  try {
    const bodyFile = join(dir, "body.bin");
    writeFileSync(bodyFile, Buffer.alloc(bodyBytes, "x"));
    const cert = makeBenchCert(dir);
    const ports = await Promise.all(Array.from({ length: 12 }, () => freePort()));
    const [backendPort, haproxyPort, uwsPort, nodePort, adminPort, haproxyTls, uwsTls, nodeTls] =
      ports as [number, number, number, number, number, number, number, number];
    // The egress row: plaintext in, TLS (verified, SNI) out to the backend's TLS port.
    const [backendTls, haproxyEgress, uwsEgress, nodeEgress] = ports.slice(8) as [
      number,
      number,
      number,
      number,
    ];
    writeFileSync(
      join(dir, "backend.cfg"),
      backendConfig(backendPort, bodyFile, bodyBytes, {
        port: backendTls,
        pem: cert.combinedPath,
      }),
    );
    writeFileSync(
      join(dir, "haproxy.cfg"),
      proxyConfig(
        haproxyPort,
        backendPort,
        { port: haproxyTls, pem: cert.combinedPath },
        { port: haproxyEgress, backendTlsPort: backendTls, caFile: cert.certPath, name: cert.name },
      ),
    );
    mkdirSync(join(dir, "lintel"));
    const tls = `tls: {certPath: ${cert.certPath}, keyPath: ${cert.keyPath}}`;
    writeFileSync(
      join(dir, "lintel", "lintel.yaml"),
      `admin: {ip: 127.0.0.1, port: ${adminPort}}
routers:
- protocol: http
  label: bench
  dtab: /svc => /$/inet/127.0.0.1/${backendPort}
  servers:
  - {ip: 127.0.0.1, port: ${uwsPort}, engine: uws}
  - {ip: 127.0.0.1, port: ${nodePort}, engine: node}
  - {ip: 127.0.0.1, port: ${uwsTls}, engine: uws, ${tls}}
  - {ip: 127.0.0.1, port: ${nodeTls}, engine: node, ${tls}}
- protocol: http
  label: egress
  dtab: /svc => /$/inet/127.0.0.1/${backendTls}
  client:
    tls: {commonName: ${cert.name}, trustCerts: [${cert.certPath}]}
  egress: {allowCidrs: [127.0.0.0/8]}
  servers:
  - {ip: 127.0.0.1, port: ${uwsEgress}, engine: uws}
  - {ip: 127.0.0.1, port: ${nodeEgress}, engine: node}
`,
    );

    const backend = start("backend", "haproxy", ["-f", join(dir, "backend.cfg")], loadCpus);
    const haproxy = start("haproxy", "haproxy", ["-f", join(dir, "haproxy.cfg")], proxyCpu);
    const lintel = start(
      "lintel",
      process.execPath,
      [lintelBin, "run", join(dir, "lintel", "lintel.yaml")],
      proxyCpu,
    );
    await waitForPort(backendPort, backend);
    for (const p of [haproxyPort, haproxyTls, haproxyEgress]) await waitForPort(p, haproxy);
    for (const p of [uwsPort, nodePort, uwsTls, nodeTls, uwsEgress, nodeEgress])
      await waitForPort(p, lintel);

    const plain = (name: string, port: number, proc: Proc): Target => ({
      name,
      url: `http://127.0.0.1:${port}/`,
      proc,
    });
    const secure = (name: string, port: number, proc: Proc): Target => ({
      name,
      url: `https://127.0.0.1:${port}/`,
      proc,
    });
    const handshakeConnections = Math.min(16, connections);
    const scenarios: Scenario[] = [
      {
        name: `keepalive-${bodyBytes}B-${connections}c`,
        what: "plaintext HTTP/1.1, keep-alive",
        targets: [
          plain("direct", backendPort, backend),
          plain("haproxy", haproxyPort, haproxy),
          plain("lintel-uws", uwsPort, lintel),
          plain("lintel-node", nodePort, lintel),
        ],
      },
      {
        name: `tls-keepalive-${bodyBytes}B-${connections}c`,
        what: "TLS (ECDSA P-256) terminated by the proxy, keep-alive",
        targets: [
          secure("haproxy", haproxyTls, haproxy),
          secure("lintel-uws", uwsTls, lintel),
          secure("lintel-node", nodeTls, lintel),
        ],
      },
      {
        // Fewer connections: with 64 the client's own handshakes (same core as the
        // backend) swamp the measurement.
        name: `tls-handshake-${handshakeConnections}c`,
        what: "a new TLS connection (full handshake) per request",
        connections: handshakeConnections,
        headers: { connection: "close" },
        targets: [
          secure("haproxy", haproxyTls, haproxy),
          secure("lintel-uws", uwsTls, lintel),
          secure("lintel-node", nodeTls, lintel),
        ],
      },
      {
        name: `egress-tls-origination-${bodyBytes}B-${connections}c`,
        what: "plaintext in, TLS out to the backend (verified, SNI), keep-alive both sides",
        targets: [
          plain("haproxy", haproxyEgress, haproxy),
          plain("lintel-uws", uwsEgress, lintel),
          plain("lintel-node", nodeEgress, lintel),
        ],
      },
    ];
    console.log(
      `lintel benchmark: ${durationS}s x ${rounds} rounds per target, ${connections} connections, ${bodyBytes}-byte responses; ${cpus()[0]?.model ?? "?"} x ${n}` +
        (proxyCpu ? ` (proxies on cpu ${proxyCpu}, backend and wrk on cpu ${loadCpus})` : ""),
    );

    const rows: Row[] = [];
    const ratios: Record<string, number> = {};
    const vsDirect: Record<string, number> = {};
    for (const sc of scenarios) {
      console.log(`\n${sc.name}: ${sc.what}`);
      const results = new Map<string, WrkResult[]>(sc.targets.map((t) => [t.name, []]));
      const cpuPerRequest = new Map<string, number[]>(sc.targets.map((t) => [t.name, []]));
      const run = (t: Target, seconds: number) =>
        runWrk({
          url: t.url,
          connections: sc.connections ?? connections,
          durationS: seconds,
          cpus: loadCpus,
          headers: sc.headers,
        });
      for (const t of sc.targets) await run(t, warmupS);
      for (let r = 0; r < rounds; r++) {
        for (const t of sc.targets) {
          if (t.proc.child.exitCode !== null)
            throw new Error(`${t.proc.name} died:\n${t.proc.output()}`);
          const cpuBefore = cpuSeconds(t.proc);
          const res = await run(t, durationS);
          const cpuUs = ((cpuSeconds(t.proc) - cpuBefore) * 1e6) / Math.max(1, res.requests);
          results.get(t.name)!.push(res);
          cpuPerRequest.get(t.name)!.push(cpuUs);
          console.log(
            `  round ${r + 1} ${t.name.padEnd(12)} ${res.rps.toFixed(0).padStart(8)} req/s  p99 ${res.p99Ms.toFixed(2)} ms  cpu ${cpuUs.toFixed(1)} us/req`,
          );
        }
      }
      const scRows = sc.targets.map((t): Row => {
        const rs = results.get(t.name)!;
        return {
          name: sc.name,
          target: t.name,
          rps: median(rs.map((x) => x.rps)),
          p50_ms: median(rs.map((x) => x.p50Ms)),
          p99_ms: median(rs.map((x) => x.p99Ms)),
          min_rps: Math.min(...rs.map((x) => x.rps)),
          max_rps: Math.max(...rs.map((x) => x.rps)),
          errors: rs.reduce((s, x) => s + x.errors, 0),
          cpu_us_per_req: median(cpuPerRequest.get(t.name)!),
        };
      });
      rows.push(...scRows);
      const rowOf = (name: string) => scRows.find((x) => x.target === name);
      for (const t of ["lintel-uws", "lintel-node"]) {
        const key = `${sc.name}/${t}`;
        ratios[key] = rowOf(t)!.rps / rowOf("haproxy")!.rps;
        const direct = rowOf("direct");
        if (direct) vsDirect[key] = rowOf(t)!.rps / direct.rps;
      }
      printTable(scRows, sc.name, ratios, vsDirect);
      const direct = rowOf("direct");
      const fastest = Math.max(rowOf("haproxy")!.rps, rowOf("lintel-uws")!.rps);
      if (direct && direct.rps < fastest * 1.3) {
        console.log(
          `warning: direct-to-backend (${direct.rps.toFixed(0)} req/s) is not well above the proxies (${fastest.toFixed(0)}); the load generator or backend may be the limit, so the ratios understate the gap`,
        );
      }
    }

    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    const result = {
      date: new Date().toISOString(),
      machine: {
        cpu: cpus()[0]?.model ?? "unknown",
        cores: n,
        os: `${process.platform} ${release()}`,
      },
      versions: {
        lintel: pkg.version,
        node: process.version,
        haproxy: version("haproxy", ["-v"]),
        wrk: version("wrk", ["-v"]),
        openssl: version("openssl", ["version"]),
      },
      params: { durationS, connections, bodyBytes, rounds, quick },
      rows,
      ratios,
      vs_direct: vsDirect,
    };
    mkdirSync(join(root, "loadtest/results"), { recursive: true });
    writeFileSync(
      join(root, "loadtest/results/latest.json"),
      `${JSON.stringify(result, null, 2)}\n`,
    );
    console.log("\nwrote loadtest/results/latest.json");
    return 0;
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function printTable(
  rows: readonly Row[],
  scenario: string,
  ratios: Readonly<Record<string, number>>,
  vsDirect: Readonly<Record<string, number>>,
): void {
  const fmt = (x: number | undefined) => (x === undefined ? "" : x.toFixed(2));
  console.log(
    `${"target".padEnd(12)} ${"req/s".padStart(9)} ${"min-max".padStart(17)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"errors".padStart(6)} ${"/haproxy".padStart(8)} ${"/direct".padStart(7)} ${"cpu us/req".padStart(10)}`,
  );
  for (const row of rows) {
    const key = `${scenario}/${row.target}`;
    console.log(
      `${row.target.padEnd(12)} ${row.rps.toFixed(0).padStart(9)} ${`${row.min_rps.toFixed(0)}-${row.max_rps.toFixed(0)}`.padStart(17)} ${row.p50_ms.toFixed(2).padStart(7)} ${row.p99_ms.toFixed(2).padStart(7)} ${String(row.errors).padStart(6)} ${fmt(ratios[key]).padStart(8)} ${fmt(vsDirect[key]).padStart(7)} ${row.cpu_us_per_req.toFixed(1).padStart(10)}`,
    );
  }
}

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
