// The h2 row's load: h2load (Debian: nghttp2-client) over TLS, negotiating HTTP/2 by
// ALPN, many streams per connection (`-c 16 -m 16`: 16 connections with up to 16 requests
// in flight on each), closed loop for a duration (`-D`). Every request is logged
// (`--log-file`) for the percentiles, which h2load's summary does not give.

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { start, waitExit } from "./processes.js";

export interface H2LoadOptions {
  readonly url: string;
  readonly clients: number;
  /** Concurrent streams (requests in flight) per connection. */
  readonly streams: number;
  readonly durationS: number;
  /** A scratch directory for the per-request log (deleted once read). */
  readonly dir: string;
  /** CPU list for taskset. */
  readonly cpus?: string;
}

export interface H2LoadResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses that were not 2xx, and requests h2load counted as failed, errored or timed out. */
  readonly errors: number;
  readonly requests: number;
  /** The protocol ALPN gave ("h2" is what the row wants). */
  readonly protocol: string;
  /** What was wrong, in words, when errors > 0 or the protocol is not h2. */
  readonly problem?: string;
}

/** Reads h2load's summary (undefined when it printed none). */
export function parseH2Load(out: string) {
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out);
  const counts =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out,
    );
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const protocol = /Application protocol: (\S+)/.exec(out)?.[1] ?? "none";
  if (!finished || !counts || !status) return undefined;
  return {
    seconds: Number(finished[1]),
    rps: Number(finished[2]),
    done: Number(counts[3]),
    succeeded: Number(counts[4]),
    failed: Number(counts[5]) + Number(counts[6]) + Number(counts[7]),
    ok: Number(status[1]),
    notOk: Number(status[2]) + Number(status[3]) + Number(status[4]),
    protocol,
  };
}

export async function runH2Load(o: H2LoadOptions): Promise<H2LoadResult> {
  const log = join(o.dir, `h2load-h2-${Date.now()}.log`);
  const proc = start(
    "h2load h2",
    "h2load",
    [
      "-c",
      String(o.clients),
      "-m",
      String(o.streams),
      "-t",
      "1",
      "-D",
      String(o.durationS),
      "--log-file",
      log,
      o.url,
    ],
    o.cpus,
  );
  const finished = await waitExit(proc, o.durationS * 1000 + 30_000);
  await proc.stop();
  const out = proc.output();
  const s = parseH2Load(out);
  let text = "";
  try {
    text = readFileSync(log, "utf8");
    rmSync(log);
  } catch {
    // nothing logged
  }
  if (!finished || !s) throw new Error(`h2load did not finish on ${o.url}:\n${out.slice(-2000)}`);
  const durations: number[] = [];
  for (const line of text.split("\n")) {
    const d = line.split("\t")[2];
    if (d !== undefined) durations.push(Number(d));
  }
  const sorted = Float64Array.from(durations).sort();
  const pct = (q: number) =>
    sorted.length === 0
      ? Number.NaN
      : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! / 1000;
  // h2load counts a non-2xx answer as failed too: the errors are the larger of the two.
  const errors = Math.max(s.notOk, s.failed);
  const problems: string[] = [];
  if (s.protocol !== "h2") problems.push(`ALPN gave ${s.protocol}, not h2`);
  if (s.ok === 0) problems.push("no 2xx response");
  if (s.notOk > 0) problems.push(`${s.notOk} responses not 2xx`);
  if (s.failed > s.notOk)
    problems.push(`${s.failed - s.notOk} requests failed, errored or timed out`);
  return {
    rps: s.rps,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    errors,
    requests: s.ok + s.notOk,
    protocol: s.protocol,
    problem: problems.length > 0 ? problems.join("; ") : undefined,
  };
}
