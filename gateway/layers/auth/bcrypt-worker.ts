// bcrypt off the event loop: bcryptjs is pure JavaScript and runs a cost-10 check (~70 ms)
// in one go even through its async API (it yields only every 100 ms), which would stall
// every other request of the thread. Checks go to one worker thread per serving thread,
// started on first use, one check at a time, and never keeping the process alive. The
// callers bound how many wait (basic-auth's MAX_PENDING_CHECKS).

import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** The worker: compares in a loop, answering each message with its id. CommonJS (eval). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const bcrypt = require(workerData.bcryptjs);
parentPort.on("message", (m) => {
  let ok = false;
  try { ok = bcrypt.compareSync(m.password, m.hash); } catch { ok = false; }
  parentPort.postMessage({ id: m.id, ok });
});
`;

interface Waiting {
  resolve(ok: boolean): void;
  reject(e: Error): void;
}

export class BcryptWorker {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, Waiting>();

  /** Whether `password` matches the bcrypt `hash`; rejects only when the worker failed. */
  compare(password: string, hash: string): Promise<boolean> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<boolean>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, password, hash });
    });
  }

  private start(): Worker {
    const bcryptjs = createRequire(import.meta.url).resolve("bcryptjs");
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptjs } });
    worker.unref();
    worker.on("message", (m: { id: number; ok: boolean }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.resolve(m.ok);
    });
    const fail = (e: Error) => {
      if (this.worker !== worker) return;
      // The next check starts a new worker; the ones under way fail.
      this.worker = undefined;
      const waiting = [...this.waiting.values()];
      this.waiting.clear();
      for (const w of waiting) w.reject(e);
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the bcrypt worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}

let shared: BcryptWorker | undefined;

/** This thread's bcrypt worker (module state: one per thread, like a thread's CPU). */
export function bcryptWorker(): BcryptWorker {
  shared ??= new BcryptWorker();
  return shared;
}
