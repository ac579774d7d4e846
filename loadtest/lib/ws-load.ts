// The websocket row's load generator (the `ws` package), run by the bench as a process of
// its own pinned to the load generator's cores:
//
//   node dist/loadtest/lib/ws-load.js URL CONNECTIONS MESSAGE_BYTES SECONDS
//
// opens CONNECTIONS WebSockets to URL (compression off), then on each sends a
// MESSAGE_BYTES binary message and waits for its echo before sending the next (closed
// loop: one message in flight per connection), for SECONDS from when the last connection
// opened. It prints one JSON line: round trips per second, their p50 and p99, and the
// errors (connections that failed or closed early, echoes that differed). `runWsLoad`
// is the bench's side: it starts this file with node and reads that line.

import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { start, waitExit } from "./processes.js";

export interface WsLoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly messageBytes: number;
  readonly durationS: number;
  /** CPU list for taskset. */
  readonly cpus?: string;
}

export interface WsLoadResult {
  /** Round trips (message and its echo) per second, over all connections. */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly errors: number;
  /** The first error, in words. */
  readonly problem?: string;
}

/** Starts this file as a load generator process and reads its result. */
export async function runWsLoad(o: WsLoadOptions): Promise<WsLoadResult> {
  const self = fileURLToPath(import.meta.url);
  const proc = start(
    "ws load",
    process.execPath,
    [self, o.url, String(o.connections), String(o.messageBytes), String(o.durationS)],
    o.cpus,
  );
  const finished = await waitExit(proc, o.durationS * 1000 + 30_000);
  await proc.stop();
  const out = proc.output();
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!finished || !line)
    throw new Error(
      `the WebSocket load generator did not finish on ${o.url}:\n${out.slice(-2000)}`,
    );
  return JSON.parse(line) as WsLoadResult;
}

async function generate(url: string, connections: number, size: number, seconds: number) {
  const payload = Buffer.alloc(size, "m");
  const rtts: number[] = [];
  let errors = 0;
  let problem: string | undefined;
  let measuring = false;
  let stopped = false;
  const fail = (what: string) => {
    errors++;
    problem ??= what;
  };
  const sockets: WebSocket[] = [];
  const opened = await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<boolean>((done) => {
          const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000 });
          sockets.push(ws);
          let sentAt = 0;
          let broken = false; // one error per connection, whatever events follow
          const lost = (what: string) => {
            if (!broken && !stopped) fail(what);
            broken = true;
            done(false);
          };
          const send = () => {
            sentAt = performance.now();
            ws.send(payload, { binary: true });
          };
          ws.on("open", () => {
            done(true);
            send();
          });
          ws.on("message", (data: Buffer) => {
            const rtt = performance.now() - sentAt;
            if (!Buffer.isBuffer(data) || !data.equals(payload))
              fail(`an echo of ${Buffer.isBuffer(data) ? data.length : "?"} bytes differed`);
            else if (measuring) rtts.push(rtt);
            if (!stopped) send();
          });
          ws.on("unexpected-response", (_req, res) => {
            lost(`the handshake was answered with status ${res.statusCode}, not 101`);
            res.resume();
            ws.terminate();
          });
          ws.on("error", (e) => lost(e.message));
          ws.on("close", () => lost("a connection closed during the run"));
        }),
    ),
  );
  const t0 = performance.now();
  measuring = true;
  if (opened.every(Boolean)) await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  stopped = true;
  const elapsed = (performance.now() - t0) / 1000;
  for (const ws of sockets) ws.terminate();
  const sorted = Float64Array.from(rtts).sort();
  const pct = (q: number) =>
    sorted.length === 0
      ? Number.NaN
      : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const result: WsLoadResult = {
    rps: rtts.length / elapsed,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    requests: rtts.length,
    errors,
    ...(problem ? { problem } : {}),
  };
  console.log(JSON.stringify(result));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [url, c, size, seconds] = process.argv.slice(2);
  const nums = [c, size, seconds].map(Number);
  if (!url || nums.some((x) => !Number.isFinite(x) || x <= 0)) {
    console.error("usage: node ws-load.js URL CONNECTIONS MESSAGE_BYTES SECONDS");
    process.exit(2);
  }
  generate(url, nums[0]!, nums[1]!, nums[2]!).then(
    () => process.exit(0),
    (e: Error) => {
      console.error(e.message);
      process.exit(1);
    },
  );
}
