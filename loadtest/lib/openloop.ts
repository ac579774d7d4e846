// Latency at a fixed request rate (open loop) with h2load (Debian: nghttp2-client), for
// the "latency added over direct" row.
//
// Why h2load: wrk keeps every connection busy (closed loop), so its latencies are those
// of a saturated proxy, and it cannot hold a rate. h2load's `--rps` sends on each
// connection at a fixed rate from a C event loop (libev) and can log every request. A
// generator written in Node would share its core with the backend and put its own event
// loop's delays (GC pauses, 1 ms timers, a busy loop competing with the backend) into the
// tail it is measuring, which is what we want to read to a fraction of a millisecond.
//
// Two h2load behaviours are worked around, and what cannot be is measured and reported:
// - Each client (connection) starts its rate timer when it connects, so clients that
//   connect together send together, and h2load handles a burst one request after the
//   other: one h2load with 260 connections at 100 req/s each (26 000 req/s) measured a
//   p50 of 4 ms against the backend alone on the reference machine, against 0.5 ms when
//   spread as below. So each h2load opens `perSlot` connections per millisecond
//   (`-r perSlot --rate-period 1ms`) for as many milliseconds as the per-connection
//   interval (10 ms), which spreads its requests over the interval in bursts of
//   `perSlot` (8), and rate/(1000 x perSlot) processes run side by side, their
//   millisecond ticks offset by spawn jitter. One process per connection slot (perSlot
//   1) would spread them best, but costs h2load three times the CPU per request, and
//   the load generator shares its core with the backend.
// - HTTP/1.1 has one request in flight per connection. A request that falls due while the
//   previous one on its connection is still in flight waits, and h2load times it from
//   when it is sent, not when it was due (coordinated omission: the tail is understated
//   when the target falls behind). With a 10 ms interval that needs a response slower
//   than 10 ms; the result gives the share of those (at most that many requests can have
//   been sent late) and the rate actually achieved, and the caller flags a target that
//   did not hold the rate.
// What remains is the generator's own delay (its CPU time and wake-ups, on a core shared
// with the backend): it is in every target's numbers alike, which is why the row reports
// latency added over direct-to-backend at the same rate.

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { start, waitExit } from "./processes.js";

export interface OpenLoopOptions {
  readonly url: string;
  /** Requests per second across all connections. */
  readonly rate: number;
  readonly durationS: number;
  /**
   * A scratch directory for h2load's per-request logs (deleted once read). Not one a
   * process under test watches: lintel rescans its certificates' directory on every change.
   */
  readonly dir: string;
  /** CPU list for taskset. */
  readonly cpus?: string;
  /**
   * Milliseconds between two requests on one connection (default 10): responses slower
   * than this delay the next request on their connection. The connection count is
   * about rate × interval.
   */
  readonly intervalMs?: number;
  /** Connections opened per millisecond in one h2load process, which then send together. */
  readonly perSlot?: number;
}

export interface OpenLoopResult {
  readonly targetRps: number;
  /** The rate achieved while every h2load process was sending. */
  readonly achievedRps: number;
  readonly requests: number;
  /** Responses that were not 2xx, and requests h2load counted as failed or errored. */
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Share (%) of responses slower than the per-connection interval. */
  readonly latePct: number;
  readonly connections: number;
  readonly processes: number;
  /** Some h2load did not finish in time (the target could not keep up) and was stopped. */
  readonly timedOut: boolean;
}

/** The h2load in PATH can hold a rate and log each request (nghttp2 1.40 or newer). */
export function h2loadUsable(helpText: string): boolean {
  return ["--rps", "--log-file", "--rate-period", "--h1"].every((o) => helpText.includes(o));
}

export async function runOpenLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const intervalMs = o.intervalMs ?? 10;
  const perSlot = o.perSlot ?? 8;
  const processes = Math.max(1, Math.ceil(o.rate / (1000 * perSlot)));
  // perSlot new connections per millisecond for intervalMs ms.
  const perProcess = intervalMs * perSlot;
  const perClientRps = o.rate / (processes * perProcess);
  const perClient = Math.max(1, Math.round(perClientRps * o.durationS));
  const logs: string[] = [];
  const procs = [];
  for (let i = 0; i < processes; i++) {
    const log = join(o.dir, `h2load-${Date.now()}-${i}.log`);
    logs.push(log);
    procs.push(
      start(
        `h2load ${i}`,
        "h2load",
        [
          "--h1",
          "-t",
          "1",
          "-c",
          String(perProcess),
          "-r",
          String(perSlot),
          "--rate-period",
          "1ms",
          "-n",
          String(perClient * perProcess),
          "--rps",
          perClientRps.toFixed(3),
          "--log-file",
          log,
          o.url,
        ],
        o.cpus,
      ),
    );
  }
  // A target that cannot keep up stretches the run (the requests are counted, not timed).
  const deadline = o.durationS * 1500 + 10_000;
  const finished = await Promise.all(procs.map((p) => waitExit(p, deadline)));
  const timedOut = finished.includes(false);
  await Promise.all(procs.map((p) => p.stop()));

  let failed = 0;
  for (const p of procs) {
    const m = /(\d+) failed, (\d+) errored/.exec(p.output());
    if (m) failed += Number(m[1]) + Number(m[2]);
  }
  const durations: number[] = [];
  const firsts: number[] = [];
  const lasts: number[] = [];
  const startsUs: number[] = [];
  let non2xx = 0;
  for (const log of logs) {
    let text = "";
    try {
      text = readFileSync(log, "utf8");
      rmSync(log);
    } catch {
      continue; // stopped before writing anything
    }
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const line of text.split("\n")) {
      const [s, status, d] = line.split("\t");
      if (d === undefined) continue;
      const t = Number(s);
      first = Math.min(first, t);
      last = Math.max(last, t);
      startsUs.push(t);
      durations.push(Number(d));
      if (!/^2\d\d$/.test(status!)) non2xx++;
    }
    if (first <= last) {
      firsts.push(first);
      lasts.push(last);
    }
  }
  if (durations.length === 0) {
    const out = procs.map((p) => p.output()).join("\n");
    throw new Error(`h2load logged no request for ${o.url}:\n${out.slice(-2000)}`);
  }
  // The rate while all processes were sending (they start a few ms apart).
  let from = Math.max(...firsts);
  let to = Math.min(...lasts);
  if (to - from < 100_000) {
    from = Math.min(...firsts);
    to = Math.max(...lasts);
  }
  const inWindow = startsUs.filter((t) => t >= from && t <= to).length;
  const achievedRps = to > from ? inWindow / ((to - from) / 1e6) : Number.NaN;

  const sorted = Float64Array.from(durations).sort();
  const pct = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const intervalUs = 1e6 / perClientRps;
  const late = durations.filter((d) => d > intervalUs).length;
  return {
    targetRps: o.rate,
    achievedRps,
    requests: durations.length,
    errors: non2xx + failed,
    p50Ms: pct(0.5) / 1000,
    p99Ms: pct(0.99) / 1000,
    p999Ms: pct(0.999) / 1000,
    maxMs: sorted[sorted.length - 1]! / 1000,
    latePct: (100 * late) / durations.length,
    connections: processes * perProcess,
    processes,
    timedOut,
  };
}
