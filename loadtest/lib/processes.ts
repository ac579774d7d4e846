// Starting and stopping the processes a benchmark needs, pinned to CPUs where asked,
// and always stopped by PID when the run ends (even when it fails).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
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

export function start(name: string, cmd: string, args: string[], cpus?: string): Proc {
  const [file, argv] = cpus ? ["taskset", ["-c", cpus, cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
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

/** CPU time (user + system) a process has used so far, in seconds (Linux /proc; 10 ms steps). */
export function cpuSeconds(proc: Proc): number {
  const stat = readFileSync(`/proc/${proc.child.pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const USER_HZ = 100;
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}
