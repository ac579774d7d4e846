// `npm run bench:idle`: what an idle keep-alive connection costs each proxy, measured in one
// run. HAProxy (one thread) and lintel (the net engine, and uws with one worker) each
// take connections that sent one request and then wait; the cost is the slope of the
// proxy's resident memory (VmRSS) between a quarter of the connections and all of them,
// so what the process holds anyway does not count. Then nobody sends anything for
// longer than the keep-alive timeout (10 s, lintel's, set on HAProxy too): every
// connection must have been closed by the proxy.
//
// Clients run in child processes (each holds at most CLIENT_SOCKETS), from many loopback
// source addresses, so the count is not bounded by one address's ephemeral ports. A
// process may hold only as many sockets as its open-files limit allows: the connection
// count is cut to what the proxy's limit allows, and the output says so.
//
//   npm run bench:idle -- [--connections N] [--targets haproxy,lintel-net,lintel-uws]

import { execFileSync, fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { backendConfig } from "./lib/haproxy.js";
import { freePort, type Proc, rssKb, start, stopAll, waitForPort } from "./lib/processes.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const lintelBin = join(root, "bin/lintel.js");
/** Sockets one client process opens at most (its own open-files limit allows ~20,000). */
const CLIENT_SOCKETS = 15_000;
/** lintel's keep-alive timeout (net engine and uws); HAProxy is given the same. */
const KEEP_ALIVE_S = 10;
const TARGETS = ["haproxy", "lintel-net", "lintel-uws"] as const;
type Target = (typeof TARGETS)[number];

// ---- the client side (a child process): opens sockets, one request each, and waits ----

interface ClientAsk {
  readonly port: number;
  readonly from: number;
  readonly count: number;
}

async function clientMain(): Promise<void> {
  const sockets: Socket[] = [];
  let closedByPeer = 0;
  const open = (port: number, i: number) =>
    new Promise<void>((resolve, reject) => {
      // 127.0.<1..200>.<1..250>: 50,000 source addresses, all of them loopback.
      const local = `127.0.${1 + (i % 200)}.${1 + (Math.floor(i / 200) % 250)}`;
      const s = connect({ port, host: "127.0.0.1", localAddress: local });
      s.once("error", reject);
      s.once("connect", () => s.write("GET / HTTP/1.1\r\nhost: idle\r\n\r\n"));
      s.once("data", () => {
        s.off("error", reject);
        s.on("error", () => {});
        s.once("close", () => closedByPeer++);
        resolve();
      });
      sockets.push(s);
    });
  process.on("message", async (m: ClientAsk | "count" | "close") => {
    if (m === "count") {
      process.send!({ open: sockets.length, closedByPeer });
      return;
    }
    if (m === "close") {
      for (const s of sockets) s.destroy();
      process.exit(0);
    }
    try {
      for (let i = 0; i < m.count; i += 250) {
        const n = Math.min(250, m.count - i);
        await Promise.all(Array.from({ length: n }, (_, k) => open(m.port, m.from + i + k)));
      }
      process.send!({ opened: m.count });
    } catch (e) {
      process.send!({ error: (e as Error).message });
    }
  });
}

// ---- the benchmark ----

interface Clients {
  /** Opens `count` more connections to `port`. */
  open(count: number): Promise<void>;
  /** Connections the proxies closed so far. */
  closedByPeer(): Promise<number>;
  close(): void;
}

function clients(port: number): Clients {
  const children: ReturnType<typeof fork>[] = [];
  let opened = 0;
  const ask = <T>(child: ReturnType<typeof fork>, m: unknown) =>
    new Promise<T>((resolve) => {
      child.once("message", (r) => resolve(r as T));
      child.send(m as object);
    });
  return {
    async open(count) {
      while (count > 0) {
        const slot = Math.floor(opened / CLIENT_SOCKETS);
        if (!children[slot])
          children[slot] = fork(fileURLToPath(import.meta.url), ["--client"], { stdio: "inherit" });
        const n = Math.min(count, CLIENT_SOCKETS - (opened % CLIENT_SOCKETS));
        const r = await ask<{ error?: string }>(children[slot]!, { port, from: opened, count: n });
        if (r.error) throw new Error(`opening connection ${opened}: ${r.error}`);
        opened += n;
        count -= n;
      }
    },
    async closedByPeer() {
      let closed = 0;
      for (const c of children)
        closed += (await ask<{ closedByPeer: number }>(c, "count")).closedByPeer;
      return closed;
    },
    close() {
      for (const c of children) c.send("close");
    },
  };
}

const rssOf = (p: Proc) => rssKb(p).reduce((a, r) => a + r.rss_kb, 0) * 1024;

interface Result {
  readonly target: Target;
  readonly connections: number;
  readonly bytes_per_connection: number;
  readonly rss_mib_at_all: number;
  readonly closed_after_idle: number;
}

async function measure(target: Target, proc: Proc, port: number, n: number): Promise<Result> {
  await waitForPort(port, proc);
  const c = clients(port);
  try {
    const first = Math.floor(n / 4);
    await c.open(first);
    await sleep(1000);
    const a = rssOf(proc);
    await c.open(n - first);
    await sleep(1000);
    const b = rssOf(proc);
    // Idle past the keep-alive timeout: the proxy closes every connection.
    const deadline = Date.now() + (KEEP_ALIVE_S + 10) * 1000;
    let closed = 0;
    while (Date.now() < deadline) {
      await sleep(1000);
      closed = await c.closedByPeer();
      if (closed === n) break;
    }
    return {
      target,
      connections: n,
      bytes_per_connection: Math.round((b - a) / (n - first)),
      rss_mib_at_all: Math.round((b / 1024 / 1024) * 10) / 10,
      closed_after_idle: closed,
    };
  } finally {
    c.close();
    await proc.stop();
  }
}

/** The open-files limit a child process inherits (soft; it cannot be raised beyond hard). */
function openFilesLimit(): number {
  try {
    const out = execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim();
    return out === "unlimited" ? 1 << 20 : Number(out);
  } catch {
    return 1024;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: "string" },
      targets: { type: "string" },
    },
  });
  const asked = Number(values.connections ?? 50_000);
  const targets = (values.targets?.split(",") ?? [...TARGETS]) as Target[];
  for (const t of targets)
    if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}; use ${TARGETS.join(", ")}`);
  // The proxy holds two descriptors per connection at most (client side; the upstream
  // connection is one, shared); leave room for its own files.
  const limit = openFilesLimit();
  const n = Math.min(asked, limit - 500);
  if (n < asked)
    console.log(
      `open-files limit ${limit} (ulimit -n): ${n} connections instead of ${asked}; raise the hard limit to measure more`,
    );
  const dir = mkdtempSync(join(tmpdir(), "lintel-idle-"));
  try {
    const body = join(dir, "body");
    writeFileSync(body, "ok");
    const backendPort = await freePort();
    writeFileSync(join(dir, "backend.cfg"), backendConfig(backendPort, body, 2));
    const backend = start("backend", "haproxy", ["-f", join(dir, "backend.cfg")], "1");
    await waitForPort(backendPort, backend);
    const results: Result[] = [];
    for (const target of targets) {
      const port = await freePort();
      let proc: Proc;
      if (target === "haproxy") {
        writeFileSync(
          join(dir, "haproxy.cfg"),
          `global\n  maxconn ${n + 1000}\n  no strict-limits\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive ${KEEP_ALIVE_S}s\n  option http-keep-alive\nfrontend idle\n  bind 127.0.0.1:${port}\n  default_backend app\nbackend app\n  server app 127.0.0.1:${backendPort}\n`,
        );
        proc = start("haproxy", "haproxy", ["-f", join(dir, "haproxy.cfg")], "0");
      } else {
        const engine = target === "lintel-net" ? "net" : "uws";
        const adminPort = await freePort();
        const config = join(dir, `${target}.yaml`);
        writeFileSync(
          config,
          `workers: ${engine === "uws" ? 1 : 0}\nadmin: {ip: 127.0.0.1, port: ${adminPort}}\nrouters:\n- protocol: http\n  label: idle\n  dtab: /svc => /$/inet/127.0.0.1/${backendPort}\n  servers:\n  - {ip: 127.0.0.1, port: ${port}, engine: ${engine}}\n`,
        );
        proc = start(target, process.execPath, [lintelBin, "run", config], "0");
      }
      const r = await measure(target, proc, port, n);
      results.push(r);
      console.log(
        `${target.padEnd(11)} ${r.connections} idle connections: ${r.bytes_per_connection} B each (RSS ${r.rss_mib_at_all} MiB with all open); closed after ${KEEP_ALIVE_S} s idle: ${r.closed_after_idle}/${r.connections}`,
      );
    }
    const haproxy = results.find((r) => r.target === "haproxy");
    if (haproxy)
      for (const r of results)
        if (r !== haproxy)
          console.log(
            `${r.target}: ${(r.bytes_per_connection / haproxy.bytes_per_connection).toFixed(2)} x HAProxy's memory per idle connection (goal: <= 4096 B each)`,
          );
    writeFileSync(
      join(root, "loadtest/results/latest-idle.json"),
      `${JSON.stringify({ date: new Date().toISOString(), connections: n, results }, null, 2)}\n`,
    );
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes("--client")) await clientMain();
else
  await main().catch(async (e) => {
    console.error(e instanceof Error ? e.message : e);
    await stopAll();
    process.exit(1);
  });
