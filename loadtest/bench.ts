// `npm run bench`: lintel next to HAProxy, measured in the same run on the same machine.
// A fast backend (HAProxy answering from memory), HAProxy as a proxy (one thread,
// keep-alive to the backend) and lintel (one thread; uws and node engines) run on
// loopback; wrk drives each target with the same connections and duration, in
// interleaved rounds. Prints a table and writes loadtest/results/latest.json.
//
//   npm run bench -- [--quick] [--duration S] [--connections N] [--body BYTES] [--rounds N]

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { backendConfig, proxyConfig } from "./lib/haproxy.js";
import {
  commandExists,
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
  readonly port: number;
  /** The proxy's process, for checks between rounds. */
  readonly proc?: Proc;
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

  const missing = ["wrk", "haproxy", "taskset"].filter((c) => !commandExists(c));
  if (missing.length > 0) {
    console.error(
      `the benchmark needs ${missing.join(", ")}; install them, e.g. apt-get install -y wrk haproxy util-linux`,
    );
    return 2;
  }
  const lintelBin = join(root, "bin/lintel.js");
  if (
    !commandExists("node") ||
    !readFileSync(join(root, "dist/gateway/cli/main.js"), { flag: "r" })
  ) {
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
    const [backendPort, haproxyPort, uwsPort, nodePort, adminPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    writeFileSync(join(dir, "backend.cfg"), backendConfig(backendPort, bodyFile, bodyBytes));
    writeFileSync(join(dir, "haproxy.cfg"), proxyConfig(haproxyPort, backendPort));
    mkdirSync(join(dir, "lintel"));
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
    await waitForPort(haproxyPort, haproxy);
    await waitForPort(uwsPort, lintel);
    await waitForPort(nodePort, lintel);

    const targets: Target[] = [
      { name: "direct", port: backendPort, proc: backend },
      { name: "haproxy", port: haproxyPort, proc: haproxy },
      { name: "lintel-uws", port: uwsPort, proc: lintel },
      { name: "lintel-node", port: nodePort, proc: lintel },
    ];
    const scenario = `keepalive-${bodyBytes}B-${connections}c`;
    console.log(
      `lintel benchmark: ${scenario}, ${durationS}s x ${rounds} rounds per target, ${cpus()[0]?.model ?? "?"} x ${n}` +
        (proxyCpu ? ` (proxies on cpu ${proxyCpu}, backend and wrk on cpu ${loadCpus})` : ""),
    );
    const results = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
    for (const t of targets) {
      await runWrk({
        url: `http://127.0.0.1:${t.port}/`,
        connections,
        durationS: warmupS,
        cpus: loadCpus,
      });
    }
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) {
        if (t.proc && t.proc.child.exitCode !== null)
          throw new Error(`${t.proc.name} died:\n${t.proc.output()}`);
        const res = await runWrk({
          url: `http://127.0.0.1:${t.port}/`,
          connections,
          durationS,
          cpus: loadCpus,
        });
        results.get(t.name)!.push(res);
        console.log(
          `  round ${r + 1} ${t.name.padEnd(12)} ${res.rps.toFixed(0).padStart(8)} req/s  p99 ${res.p99Ms.toFixed(2)} ms`,
        );
      }
    }

    const rows: Row[] = targets.map((t) => {
      const rs = results.get(t.name)!;
      return {
        name: scenario,
        target: t.name,
        rps: median(rs.map((x) => x.rps)),
        p50_ms: median(rs.map((x) => x.p50Ms)),
        p99_ms: median(rs.map((x) => x.p99Ms)),
        min_rps: Math.min(...rs.map((x) => x.rps)),
        max_rps: Math.max(...rs.map((x) => x.rps)),
        errors: rs.reduce((s, x) => s + x.errors, 0),
      };
    });
    const rowOf = (name: string) => rows.find((x) => x.target === name)!;
    const ratios: Record<string, number> = {};
    const vsDirect: Record<string, number> = {};
    for (const t of ["lintel-uws", "lintel-node"]) {
      ratios[`${scenario}/${t}`] = rowOf(t).rps / rowOf("haproxy").rps;
      vsDirect[`${scenario}/${t}`] = rowOf(t).rps / rowOf("direct").rps;
    }

    console.log("");
    console.log(
      `${"target".padEnd(12)} ${"req/s".padStart(9)} ${"min-max".padStart(17)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"errors".padStart(6)} ${"/haproxy".padStart(8)} ${"/direct".padStart(7)}`,
    );
    for (const row of rows) {
      const key = `${scenario}/${row.target}`;
      console.log(
        `${row.target.padEnd(12)} ${row.rps.toFixed(0).padStart(9)} ${`${row.min_rps.toFixed(0)}-${row.max_rps.toFixed(0)}`.padStart(17)} ${row.p50_ms.toFixed(2).padStart(7)} ${row.p99_ms.toFixed(2).padStart(7)} ${String(row.errors).padStart(6)} ${(ratios[key] === undefined ? "" : ratios[key]!.toFixed(2)).padStart(8)} ${(vsDirect[key] === undefined ? "" : vsDirect[key]!.toFixed(2)).padStart(7)}`,
      );
    }
    const direct = rowOf("direct").rps;
    const fastestProxy = Math.max(rowOf("haproxy").rps, rowOf("lintel-uws").rps);
    if (direct < fastestProxy * 1.3) {
      console.log(
        `\nwarning: direct-to-backend (${direct.toFixed(0)} req/s) is not well above the proxies (${fastestProxy.toFixed(0)}); the load generator or backend may be the limit, so the ratios understate the gap`,
      );
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
