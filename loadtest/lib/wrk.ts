// Runs wrk and reads its report: requests per second and the latency percentiles.

import { execFile } from "node:child_process";
import { promisify } from "node:util";

const exec = promisify(execFile);

export interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly requests: number;
  /** Response bytes (headers and bodies) read per second. */
  readonly bytesPerSec: number;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case "us":
      return v / 1000;
    case "ms":
      return v;
    case "s":
      return v * 1000;
    default:
      return v / 60_000;
  }
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(out);
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    out,
  );
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(out);
  const units: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
  const unit = units[transfer?.[2] ?? "B"] ?? 1;
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors =
    (socketErrors ? socketErrors.slice(1).reduce((n, x) => n + Number(x), 0) : 0) +
    (non2xx ? Number(non2xx[1]) : 0);
  if (!rps || !total) throw new Error(`cannot read wrk's output:\n${out}`);
  return {
    rps: Number(rps[1]),
    p50Ms: pct("50"),
    p99Ms: pct("99"),
    errors,
    requests: Number(total[1]),
    bytesPerSec: transfer ? Number(transfer[1]) * unit : Number.NaN,
  };
}

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationS: number;
  readonly threads?: number;
  readonly headers?: Record<string, string>;
  /** CPU list for taskset, so the load generator stays off the proxy's core. */
  readonly cpus?: string;
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    "-t",
    String(o.threads ?? 1),
    "-c",
    String(o.connections),
    "-d",
    `${o.durationS}s`,
    "--latency",
  ];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push("-H", `${k}: ${v}`);
  args.push(o.url);
  const [cmd, argv] = o.cpus ? ["taskset", ["-c", o.cpus, "wrk", ...args]] : ["wrk", args];
  const { stdout } = await exec(cmd, argv as string[], {
    maxBuffer: 1 << 20,
    timeout: (o.durationS + 30) * 1000,
  });
  return parseWrk(stdout);
}
