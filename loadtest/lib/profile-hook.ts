// Preloaded into lintel (`node --import`) only when the benchmark is asked to profile a
// row (`--profile ROW`). It does nothing until lintel receives SIGUSR2: the first starts
// V8's CPU profiler on every thread through the in-process inspector (the main thread's
// session, and each worker thread's through the NodeWorker domain: `--import` does not
// run in worker threads, and the uws servers are served by workers), the next stops them
// and writes one .cpuprofile per thread to $LINTEL_BENCH_PROFILE_DIR, then a manifest
// lintel-<pid>-<n>.json listing them (each file through a temporary name and a rename, so
// the benchmark never reads half of one). This profiles exactly the load the benchmark
// drives between the two signals, not startup or the other rows, and opens no port.

import { renameSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";

const dir = process.env.LINTEL_BENCH_PROFILE_DIR;
// 250 µs: four times V8's default resolution, still a small overhead.
const INTERVAL_US = 250;

interface ProtocolReply {
  readonly id?: number;
  readonly result?: { profile?: unknown };
  readonly error?: { message: string };
}

if (isMainThread && dir) {
  // A session exists only while profiling, so the rest of the run has no inspector attached.
  let session = new Session();
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))),
    );
  // Worker threads: messages to each go through NodeWorker.sendMessageToWorker.
  const workers = new Map<string, string>(); // sessionId -> "worker <threadId>"
  const pending = new Map<number, (r: ProtocolReply) => void>();
  let nextId = 1;
  const toWorker = (sessionId: string, method: string, params: object = {}) =>
    new Promise<ProtocolReply>((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve({ error: { message: `${method}: no answer in 10 s` } });
      }, 10_000);
      pending.set(id, (r) => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(r);
      });
      session.post("NodeWorker.sendMessageToWorker", {
        sessionId,
        message: JSON.stringify({ id, method, params }),
      });
    });
  const startIn = async (sessionId: string) => {
    await toWorker(sessionId, "Profiler.enable");
    await toWorker(sessionId, "Profiler.setSamplingInterval", { interval: INTERVAL_US });
    await toWorker(sessionId, "Profiler.start");
  };
  const write = (file: string, text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };

  const startAll = async () => {
    session = new Session();
    session.connect();
    session.on("NodeWorker.attachedToWorker", (m) => {
      const { sessionId, workerInfo } = m.params;
      // The title is "[worker <threadId>] ..."; workerId counts attachments instead.
      const thread = /worker (\d+)/.exec(workerInfo.title)?.[1] ?? workerInfo.workerId;
      workers.set(sessionId, `worker ${thread}`);
      void startIn(sessionId);
    });
    session.on("NodeWorker.receivedMessageFromWorker", (m) => {
      const reply = JSON.parse(m.params.message) as ProtocolReply;
      if (reply.id !== undefined) pending.get(reply.id)?.(reply);
    });
    await post("Profiler.enable");
    await post("Profiler.setSamplingInterval", { interval: INTERVAL_US });
    await post("Profiler.start");
    // Attaches to the running workers; attachedToWorker starts each one's profiler.
    await post("NodeWorker.enable", { waitForDebuggerOnStart: false });
  };
  let n = 0;
  const stopAll = async () => {
    n++;
    const base = join(dir, `lintel-${process.pid}-${n}`);
    const files: { thread: string; path: string; error?: string }[] = [];
    const main = (await post("Profiler.stop")) as { profile: unknown };
    write(`${base}-main.cpuprofile`, JSON.stringify(main.profile));
    files.push({ thread: "main", path: `${base}-main.cpuprofile` });
    for (const [sessionId, thread] of workers) {
      const r = await toWorker(sessionId, "Profiler.stop");
      if (r.result?.profile) {
        const path = `${base}-${thread.replace(" ", "")}.cpuprofile`;
        write(path, JSON.stringify(r.result.profile));
        files.push({ thread, path });
      } else {
        files.push({ thread, path: "", error: r.error?.message ?? "no profile" });
      }
    }
    await post("NodeWorker.disable");
    workers.clear();
    session.disconnect();
    write(`${base}.json`, JSON.stringify({ files }));
  };
  let running = false;
  process.on("SIGUSR2", () => {
    running = !running;
    (running ? startAll() : stopAll()).catch((e: Error) =>
      console.error(`bench profile hook: ${e.message}`),
    );
  });
}
