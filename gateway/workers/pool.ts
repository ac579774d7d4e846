// The control thread's workers: N threads, each serving every uws server of the config on
// the same ports (SO_REUSEPORT), with its own pools, balancers and caches. The control
// thread binds names for them, sends certificates, restarts a worker that dies (the
// others keep serving), keeps each worker's last metrics report (and what dead workers
// had counted), asks them for their clients' state (the admin server's clients.json) and
// their telemeters' (telemeter pages such as recentRequests.json), sends them the open
// taps and passes on what they tap, and drains them on shutdown.

import { Worker } from "node:worker_threads";
import type { LiveCertificates } from "../../tls/certificate-set.js";
import type { ThreadClientsView } from "../admin/clients.js";
import type { WorkerTaps } from "../admin/tap-hub.js";
import type { RouterClientsView } from "../client/client-view.js";
import type { Logger } from "../log.js";
import type { NamingSetup } from "../routing/naming-setup.js";
import type { Listener } from "../server/listener.js";
import type { SharedArena } from "../shared-arena.js";
import type { ThreadState } from "../telemeters/telemeter.js";
import type { WorkerTelemetrySource } from "../telemeters/telemeters.js";
import {
  type Counter,
  type MetricsSnapshot,
  mergeSnapshots,
  withoutGauges,
} from "../telemetry/index.js";
import type { TapBatch, TapFilter } from "../telemetry/tap-point.js";
import { WorkerBindings } from "./bind-service.js";
import { WorkerKube } from "./kube-service.js";
import type { FromWorker, ToWorker, WireCertificates, WorkerStats } from "./protocol.js";
import { encodeCertificates } from "./remote-certificates.js";

/** How long after a crash a worker is started again. */
const RESTART_DELAY_MS = 1000;
/** How long a worker told to stop may take before it is terminated. */
const STOP_TIMEOUT_MS = 2000;

export interface PoolOptions {
  readonly count: number;
  /** The config as loaded by the control thread; every worker loads the same text. */
  readonly source: { readonly file: string; readonly text: string };
  readonly naming: NamingSetup;
  readonly log: Logger;
  /** Ports chosen for servers configured with port 0, by server key. */
  readonly ports: Readonly<Record<string, number>>;
  /** The certificates of the uws TLS servers, by server key (loaded and watched here). */
  readonly certificates: ReadonlyMap<string, LiveCertificates>;
  /** Counts the workers started again after dying. */
  readonly restarts?: Counter;
  /** The ACME HTTP-01 answers the workers' plain-HTTP servers give (when ACME is used). */
  readonly acmeHttp?: (token: string) => Promise<string | undefined>;
  /** Memory the workers share with the control thread. */
  readonly arena: SharedArena;
}

interface Slot {
  readonly worker: Worker;
  readonly bindings: WorkerBindings;
  ready: boolean;
  stats: WorkerStats;
  /** The worker's metrics as of its last report (every second). */
  metrics: MetricsSnapshot | undefined;
  /** Questions awaiting an answer, by id: each takes the answer or why none came. */
  readonly questions: Map<number, (answer: Answer) => void>;
  readonly exited: Promise<void>;
}

/** A worker's answer to a question, or why none came. */
type Answer = { readonly value: unknown } | { readonly error: string };

/** A worker thread: compiled JS from dist/, or (tests from source) TypeScript through tsx. */
function startWorker(): Worker {
  if (!import.meta.url.endsWith(".ts"))
    return new Worker(new URL("./worker-main.js", import.meta.url));
  const entry = new URL("./worker-main.ts", import.meta.url).href;
  return new Worker(
    `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`,
    { eval: true },
  );
}

export class WorkerPool implements WorkerTelemetrySource, WorkerTaps {
  private readonly slots: (Slot | undefined)[];
  private stopping = false;
  private readonly stopWatching: (() => void)[] = [];
  /** The counters and histograms of workers that ended, so totals never go down. */
  private carried: MetricsSnapshot = { scopes: [] };
  /** The id of the last question asked of the workers. */
  private lastQuestion = 0;
  /** The taps open now, sent again to a worker started later. */
  private taps: readonly TapFilter[] = [];
  private tapSink: ((worker: number, batches: readonly TapBatch[]) => void) | undefined;

  constructor(private readonly opts: PoolOptions) {
    this.slots = new Array(opts.count).fill(undefined);
    for (const [server, store] of opts.certificates) {
      this.stopWatching.push(
        store.onChange((set) => {
          this.broadcast({ type: "certificates", update: encodeCertificates(server, set) });
        }),
      );
    }
  }

  /** Starts every worker; rejects (after stopping them) if one cannot serve. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.slots.map((_, i) => this.spawn(i)));
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Requests in flight over all workers. */
  get inflight(): number {
    let n = 0;
    for (const s of this.slots) n += s?.stats.inflight ?? 0;
    return n;
  }

  get readyCount(): number {
    return this.slots.filter((s) => s?.ready).length;
  }

  /** Each worker's last report (requests handled, in flight), by worker index. */
  get stats(): readonly WorkerStats[] {
    return this.slots.map((s) => s?.stats ?? { inflight: 0, requests: 0 });
  }

  /**
   * The workers' metrics: each live worker's last report (at most a second old), and
   * what the workers that ended had counted.
   */
  metrics(): MetricsSnapshot[] {
    const parts = [this.carried];
    for (const s of this.slots) if (s?.metrics) parts.push(s.metrics);
    return parts;
  }

  /**
   * Each worker's clients and their endpoints, asked now (for /admin/clients.json): a
   * worker that is not serving, or does not answer within `timeoutMs`, has an entry saying so.
   */
  async clients(timeoutMs: number): Promise<ThreadClientsView[]> {
    const answers = await this.ask((id) => ({ type: "clients", id }), timeoutMs);
    return answers.map(({ worker, answer }) =>
      "error" in answer
        ? { worker, error: answer.error }
        : { worker, routers: answer.value as readonly RouterClientsView[] },
    );
  }

  /** The state of the telemeter at `telemetry[telemeter]` in each worker, asked now. */
  async telemeterStates(telemeter: number, timeoutMs: number): Promise<ThreadState[]> {
    const answers = await this.ask((id) => ({ type: "telemeter-state", id, telemeter }), timeoutMs);
    return answers.map(({ worker, answer }) =>
      "error" in answer ? { worker, error: answer.error } : { worker, state: answer.value },
    );
  }

  /** Asks every worker now; one not serving, or not answering within `timeoutMs`, gets why. */
  private ask(
    question: (id: number) => ToWorker,
    timeoutMs: number,
  ): Promise<{ readonly worker: number; readonly answer: Answer }[]> {
    return Promise.all(
      this.slots.map((s, worker): Promise<{ readonly worker: number; readonly answer: Answer }> => {
        if (!s?.ready) {
          return Promise.resolve({
            worker,
            answer: { error: "not serving (starting, or replaced after dying)" },
          });
        }
        const id = ++this.lastQuestion;
        return new Promise((resolve) => {
          let timer: NodeJS.Timeout | undefined;
          const answer = (a: Answer) => {
            clearTimeout(timer);
            s.questions.delete(id);
            resolve({ worker, answer: a });
          };
          timer = setTimeout(
            () => answer({ error: `no answer within ${timeoutMs} ms` }),
            timeoutMs,
          );
          timer.unref();
          s.questions.set(id, answer);
          s.worker.postMessage(question(id));
        });
      }),
    );
  }

  setTaps(filters: readonly TapFilter[]): void {
    this.taps = filters;
    this.broadcast({ type: "taps", filters });
  }

  onTapBatches(sink: (worker: number, batches: readonly TapBatch[]) => void): void {
    this.tapSink = sink;
  }

  private certificatesNow(): WireCertificates[] {
    return [...this.opts.certificates].map(([server, store]) =>
      encodeCertificates(server, store.current),
    );
  }

  private spawn(index: number): Promise<void> {
    const worker = startWorker();
    const post = (m: ToWorker) => worker.postMessage(m);
    const bindings = new WorkerBindings(this.opts.naming, post);
    const log = this.opts.log.child({ worker: index });
    const kube = new WorkerKube(this.opts.naming.kube, post, log);
    let onExit: () => void = () => {};
    const slot: Slot = {
      worker,
      bindings,
      ready: false,
      stats: { inflight: 0, requests: 0 },
      metrics: undefined,
      questions: new Map(),
      exited: new Promise((r) => {
        onExit = r;
      }),
    };
    this.slots[index] = slot;
    return new Promise<void>((resolve, reject) => {
      worker.on("message", (m: FromWorker) => {
        switch (m.type) {
          case "ready":
            slot.ready = true;
            if (this.taps.length > 0) post({ type: "taps", filters: this.taps });
            log.info("worker serving");
            resolve();
            break;
          case "failed":
            reject(new Error(`worker ${index}: ${m.error}`));
            break;
          case "bind":
            bindings.bind(m.sub, m.router, m.dtab, m.path);
            break;
          case "unbind":
            bindings.unbind(m.sub);
            break;
          case "kube-watch":
            kube.watch(m);
            break;
          case "acme-http":
            void (this.opts.acmeHttp?.(m.token) ?? Promise.resolve(undefined))
              .catch(() => undefined)
              .then((answer) => post({ type: "acme-http-answer", id: m.id, answer }));
            break;
          case "stats":
            slot.stats = m.stats;
            slot.metrics = m.metrics;
            break;
          case "clients":
            slot.questions.get(m.id)?.({ value: m.routers });
            break;
          case "telemeter-state":
            slot.questions.get(m.id)?.("error" in m ? { error: m.error } : { value: m.state });
            break;
          case "tap":
            this.tapSink?.(index, m.batches);
            break;
          case "log":
            log[m.level](m.msg, m.fields);
            break;
          case "stopped":
            break;
        }
      });
      worker.on("error", (e) => {
        log.error("worker failed", { error: e.message });
        reject(new Error(`worker ${index}: ${e.message}`));
      });
      worker.on("exit", (code) => {
        bindings.close();
        kube.close();
        onExit();
        for (const answer of [...slot.questions.values()])
          answer({ error: "exited before answering" });
        const wasReady = slot.ready;
        slot.ready = false;
        slot.stats = { inflight: 0, requests: slot.stats.requests };
        if (slot.metrics) {
          this.carried = mergeSnapshots([this.carried, withoutGauges(slot.metrics)]);
          slot.metrics = undefined;
        }
        if (!wasReady) {
          reject(new Error(`worker ${index} exited (code ${code}) before serving`));
          return;
        }
        if (this.stopping) return;
        log.error("worker exited; starting another; the other workers keep serving", { code });
        setTimeout(() => {
          if (this.stopping) return;
          if (this.opts.restarts) this.opts.restarts.n++;
          this.spawn(index).catch((e: Error) =>
            log.error("worker did not start again", { error: e.message }),
          );
        }, RESTART_DELAY_MS).unref();
      });
      post({
        type: "init",
        index,
        configText: this.opts.source.text,
        configFile: this.opts.source.file,
        ports: this.opts.ports,
        certificates: this.certificatesNow(),
        arena: this.opts.arena.buffer,
      });
    });
  }

  private broadcast(m: ToWorker): void {
    for (const s of this.slots) if (s) s.worker.postMessage(m);
  }

  /**
   * Asks every worker to stop accepting and finish its requests within `graceMs`;
   * resolves when all have stopped.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const stop of this.stopWatching) stop();
    this.broadcast({ type: "shutdown", graceMs });
    await Promise.all(this.slots.map((s) => s?.exited));
  }

  /**
   * Stops every worker now, cutting what is in flight. Each ends itself (closing uws first,
   * see worker-main); one that does not answer (stuck in a loop) is terminated.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const stop of this.stopWatching) stop();
    this.broadcast({ type: "stop" });
    await Promise.all(
      this.slots.map(async (s, i) => {
        if (!s) return;
        let timer: NodeJS.Timeout | undefined;
        const answered = await Promise.race([
          s.exited.then(() => true),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(false), STOP_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
        if (answered) return;
        this.opts.log.error("worker does not stop; terminating it", { worker: i });
        await s.worker.terminate();
      }),
    );
  }

  /** The workers' listeners on `port`, as one Listener for the runtime's bookkeeping. */
  listener(port: number): Listener {
    return {
      engine: "uws",
      port,
      // Draining goes through shutdown(): each worker stops its own listeners.
      stopAccepting: () => {},
      closeIdle: () => {},
      destroy: () => {},
    };
  }
}
