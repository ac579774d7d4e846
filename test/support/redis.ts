// A real redis-server (Debian's) for the redis storage tests: loopback only, an ephemeral
// port, no persistence, in a temp dir of its own; stop() ends the process it started (by
// its PID) and removes the dir.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireBinary } from "../e2e/harness.js";

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:<port> (no password in it). */
  readonly url: string;
  /** The redis-server process, for tests that pause it (SIGSTOP) to play a hung server. */
  readonly pid: number;
  stop(): Promise<void>;
}

/** How long a redis-server may take to say it accepts connections. */
const START_TIMEOUT_MS = 5000;

/**
 * The path of redis-server, or undefined when it is missing (the caller skips, a reason
 * is printed); under CI=true a missing redis-server throws.
 */
export function redisServerBinary(suite: string): string | undefined {
  return requireBinary("redis-server", "redis-server", suite);
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (typeof a !== "object" || a === null) throw new Error("no port from the OS");
  return a.port;
}

/**
 * Starts redis-server on 127.0.0.1 at `opts.port` (another server's, to play a restart)
 * or at a free port, requiring `opts.password` when given.
 */
export async function startRedis(
  binary: string,
  opts: { port?: number; password?: string } = {},
): Promise<RedisServer> {
  // A free port may be taken before redis-server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startOn(binary, port, opts.password);
    } catch (e) {
      if (opts.port !== undefined || attempt === 3) throw e;
    }
  }
}

async function startOn(binary: string, port: number, password?: string): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "lintel-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir];
  args.push("--save", "", "--appendonly", "no", "--daemonize", "no");
  if (password !== undefined) args.push("--requirepass", password);
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL"); // child.kill signals this child's PID only
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let output = "";
  let onReady = () => {};
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes("Ready to accept connections")) onReady();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start in ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}) on port ${port}:\n${output.slice(-2000)}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  // Stop collecting its log, but keep reading so that the pipes never fill.
  child.stdout.off("data", onData).resume();
  child.stderr.off("data", onData).resume();
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid!, stop };
}
