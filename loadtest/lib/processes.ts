// Starting and stopping the processes a benchmark needs, pinned to CPUs where asked,
// and always stopped by PID when the run ends (even when it fails).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { connect, createServer } from "node:net";

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  stop(): Promise<void>;
}

const running = new Set<Proc>();

export function commandExists(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Starts `cmd`, pinned to `cpus` (taskset execs it, so the PID is the command's own). */
export function start(
  name: string,
  cmd: string,
  args: string[],
  cpus?: string,
  env?: Record<string, string>,
): Proc {
  const [file, argv] = cpus ? ["taskset", ["-c", cpus, cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, {
    stdio: ["ignore", "pipe", "pipe"],
    env: env ? { ...process.env, ...env } : process.env,
  });
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const proc: Proc = {
    name,
    child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        running.delete(proc);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
  running.add(proc);
  return proc;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/** Waits until something accepts connections on 127.0.0.1:port. */
export async function waitForPort(port: number, proc: Proc, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null)
      throw new Error(`${proc.name} exited early:\n${proc.output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end)
      throw new Error(`${proc.name} is not listening on ${port}:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** Waits until the process exits; false when it is still running after `timeoutMs`. */
export function waitExit(proc: Proc, timeoutMs: number): Promise<boolean> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

/** The fields of /proc/<pid>/stat after the command name (which may contain spaces). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined; // gone
  }
}

/**
 * The process and all its descendants, found through each process's parent pid. Threads
 * (worker_threads included) are part of their process already; this is for child processes.
 */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f) parents.set(Number(name), Number(f[1]));
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++)
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  return tree;
}

/**
 * CPU time (user + system) a process and its live descendants have used so far, in seconds
 * (Linux /proc; 10 ms steps).
 */
export function cpuSeconds(proc: Proc): number {
  const USER_HZ = 100;
  let ticks = 0;
  for (const pid of processTree(proc.child.pid!)) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / USER_HZ;
}

/** Resident memory (VmRSS) of a process and each of its descendants, in KiB. */
export function rssKb(proc: Proc): { pid: number; rss_kb: number }[] {
  const out: { pid: number; rss_kb: number }[] = [];
  for (const pid of processTree(proc.child.pid!)) {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) out.push({ pid, rss_kb: Number(m[1]) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
