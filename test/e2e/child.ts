// lintel as a child process: the built `bin/lintel.js run CONFIG` (it imports dist/, so
// run `npm run -s build` first). For what only a separate process shows: its memory
// (/proc/PID/status), its exit code, signals, and what it prints. Every child is killed
// by PID after the test, with SIGKILL when it does not exit.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { freePort, onCleanup, tempDir, writeFiles } from "./harness.js";

export const ROOT = resolve(import.meta.dirname, "../..");
export const BIN = join(ROOT, "bin", "lintel.js");

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** performance.now() when the child exited. */
  readonly at: number;
}

export interface ChildRun {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** stdout and stderr together. */
  readonly output: () => string;
  readonly exited: Promise<Exit>;
  /** The exit once it happened, else undefined. */
  readonly exit: () => Exit | undefined;
}

/** Runs `node bin/lintel.js ...args`; the child is killed by PID in cleanup. */
export function runLintel(args: readonly string[], cwd = ROOT): ChildRun {
  if (!existsSync(join(ROOT, "dist", "gateway", "cli", "main.js")))
    throw new Error("dist/ is missing: run `npm run -s build` first");
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LINTEL_LOG_LEVEL: "info" },
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error("could not spawn lintel");
  let out = "";
  let err = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
  });
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((r) => {
    proc.once("exit", (code, signal) => {
      exit = { code, signal, at: performance.now() };
      r(exit);
    });
  });
  onCleanup(async () => {
    if (exit) return;
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      return;
    }
    if (await within(exited, 3000)) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return;
    }
    await within(exited, 3000);
  });
  return {
    proc,
    pid,
    stdout: () => out,
    stderr: () => err,
    output: () => `${out}${err}`,
    exited,
    exit: () => exit,
  };
}

/** Resolves true when `p` settles within `ms`, false otherwise. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(() => true),
    new Promise<boolean>((res) => {
      timer = setTimeout(() => res(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return r;
}

export interface ChildLintel extends ChildRun {
  readonly dir: string;
  readonly config: string;
  readonly port: number;
  readonly adminPort: number;
}

/**
 * Starts `lintel run` on the config `yaml(port, adminPort)` (fixed free ports, as a
 * child cannot report its ephemeral ones) and waits until /admin/ready answers 200.
 */
export async function startChildLintel(
  yaml: (port: number, adminPort: number) => string,
  files: Record<string, string> = {},
  readyTimeoutMs = 10_000,
): Promise<ChildLintel> {
  const dir = tempDir("lintel-child-");
  const port = await freePort();
  let adminPort = await freePort();
  while (adminPort === port) adminPort = await freePort();
  writeFiles(dir, { ...files, "disco/.keep": "", "lintel.yaml": yaml(port, adminPort) });
  const config = join(dir, "lintel.yaml");
  const run = runLintel(["run", config], dir);
  const end = performance.now() + readyTimeoutMs;
  for (;;) {
    const e = run.exit();
    if (e)
      throw new Error(
        `lintel exited (code ${e.code}, signal ${e.signal}) before ready:\n${run.output()}`,
      );
    if ((await adminStatus(adminPort, "/admin/ready")) === 200) break;
    if (performance.now() > end)
      throw new Error(`lintel was not ready after ${readyTimeoutMs} ms:\n${run.output()}`);
    await sleep(50);
  }
  return { ...run, dir, config, port, adminPort };
}

/** The status of GET (or POST) `path` on the admin port, or 0 when nothing answers. */
export function adminStatus(port: number, path: string, method = "GET"): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path, method, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", () => resolve(0));
    });
    req.setTimeout(2000, () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

export interface Memory {
  /** Peak resident set size so far, in bytes. */
  readonly hwm: number;
  /** Resident set size now, in bytes. */
  readonly rss: number;
}

/** VmHWM and VmRSS of process `pid` from /proc/PID/status. */
export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { hwm: kb("VmHWM"), rss: kb("VmRSS") };
}

export const MB = 1024 * 1024;

export const mb = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      s.destroy();
      resolve(true);
    }, 2000);
    s.once("connect", () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
