// `npm run bench:k8s`: the Kubernetes watch path, against the in-process API stub over
// loopback with the real client and io.l5d.k8s namer: how long an EndpointSlice change
// takes to reach the load balancers (the bound name's addresses, then a Client built as
// the runtime builds one, with its p2c balancer: on the control thread, and on a worker
// thread through the control thread's address snapshots), and what a synced watch of
// 10,000 endpoints keeps.

import { randomUUID } from "node:crypto";
import http from "node:http";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type {
  BalancedEndpoint,
  LoadBalancer,
  LoadBalancerFactory,
} from "../gateway/client/balancers/balancer.js";
import type { Client } from "../gateway/client/client.js";
import { clientParamsResolver } from "../gateway/client/params.js";
import { UpstreamTlsContexts } from "../gateway/client/upstream-tls.js";
import { coarseClock, systemClock } from "../gateway/clock.js";
import type { RouterConfig } from "../gateway/config/config-schema.js";
import { KubeClient } from "../gateway/k8s/client.js";
import { openConnection } from "../gateway/k8s/connection.js";
import { EndpointSlices } from "../gateway/k8s/resources.js";
import { silentLogger } from "../gateway/log.js";
import { K8sNamer } from "../gateway/namers/k8s.js";
import {
  type Activity,
  type Addr,
  type BoundName,
  Dtab,
  type NameTree,
  Path,
  readPath,
  type Var,
} from "../gateway/naming/index.js";
import { type ClientStackOptions, clientStack } from "../gateway/routing/client-stack.js";
import type { NamingSetup } from "../gateway/routing/naming-setup.js";
import { PolicyKinds } from "../gateway/routing/policy-kinds.js";
import { Registry, RouterMetrics } from "../gateway/telemetry/index.js";
import { WorkerBindings } from "../gateway/workers/bind-service.js";
import type { FromWorker, ToWorker } from "../gateway/workers/protocol.js";
import { RemoteBindings } from "../gateway/workers/remote-interpreter.js";
import { TreeDecoder } from "../gateway/workers/tree-codec.js";
import { type KubeApiStub, startKubeApiStub } from "../test/support/kube-api-stub.js";
import { type EndpointSlice, endpointSlice, service } from "../test/support/kube-objects.js";

/** Measured changes per propagation case, after the warm-up ones. */
const ROUNDS = 30;
const WARMUP = 5;
/** Any single wait (a sync, a change reaching the addresses) fails the run after this. */
const WAIT_MS = 15_000;
const MEMORY_SERVICES = 100;
const MEMORY_PER_SLICE = 100;
/** Cold list+sync is the first; this many more, each with a fresh client, give a warm median. */
const SYNC_REPEATS = 5;

const gc = globalThis.gc;

// ---- the objects ----------------------------------------------------------------------

/** A Pod behind an endpoint; a changed endpoint is a new Pod (new name, uid and IP). */
interface Pod {
  readonly ip: string;
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly zone: string;
}

let podCount = 0;
function newPod(svc: string): Pod {
  const c = podCount++;
  return {
    ip: `10.${64 + ((c >> 16) & 63)}.${(c >> 8) & 255}.${c & 255}`,
    name: `${svc}-6d8f7b9c5-${c.toString(36).padStart(5, "0")}`,
    uid: randomUUID(),
    node: `node-${c % 50}`,
    zone: `zone-${c % 3}`,
  };
}

function slice(ns: string, svc: string, svcUid: string, name: string, pods: readonly Pod[]) {
  return endpointSlice({
    namespace: ns,
    service: svc,
    name,
    serviceUid: svcUid,
    ports: [{ name: "http", port: 8080 }],
    endpoints: pods.map((p) => ({
      addresses: [p.ip],
      nodeName: p.node,
      zone: p.zone,
      targetRef: { kind: "Pod", name: p.name, uid: p.uid },
    })),
  });
}

/** A slice's fixed name (the controller's would be generated), so a change replaces it. */
const sliceName = (svc: string, i: number) => `${svc}-${i.toString(36).padStart(5, "x")}`;

/** Stores Service `svc` and its slices of ready endpoints in the stub; returns the Pods by slice. */
function populate(stub: KubeApiStub, ns: string, svc: string, slices: number, perSlice: number) {
  const stored = stub.apply(
    service({
      namespace: ns,
      name: svc,
      ports: [{ name: "http", port: 80, targetPort: 8080 }],
      selector: { app: svc },
    }),
  );
  const uid = stored.metadata.uid!;
  const pods = Array.from({ length: slices }, () =>
    Array.from({ length: perSlice }, () => newPod(svc)),
  );
  for (const [i, p] of pods.entries()) stub.apply(slice(ns, svc, uid, sliceName(svc, i), p));
  return { uid, pods };
}

// ---- waiting, bounded ------------------------------------------------------------------

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await sleep(2);
  }
}

/** Resolves with the Var's value once `ok` holds (observing it meanwhile). */
function until<T>(v: Var<T>, ok: (x: T) => boolean, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let stop: (() => void) | undefined;
    const timer = setTimeout(() => finish(new Error(`${what}: not within ${WAIT_MS} ms`)), WAIT_MS);
    const finish = (result: T | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop?.();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    stop = v.observe((x) => {
      if (ok(x)) finish(x);
    });
    if (settled) stop();
    else if (ok(v.sample())) finish(v.sample());
  });
}

// ---- statistics -------------------------------------------------------------------------

interface Stats {
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
  return { p50: rank(0.5), p95: rank(0.95), max: s.at(-1)! };
}

const ms = (x: number) => x.toFixed(2);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await sleep(10);
    gc!();
  }
  return process.memoryUsage().heapUsed;
}

// ---- the balancers ---------------------------------------------------------------------

/**
 * Milliseconds on the process's monotonic clock, the same in every thread (uv_hrtime):
 * a time taken on a worker thread compares with one taken here.
 */
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** The address of a balanced endpoint (its key is `host:port`). */
const hostOf = (e: BalancedEndpoint) => e.key.slice(0, e.key.lastIndexOf(":"));

/**
 * The updates of the balancers a client stack makes: the default kind (p2c) as the
 * runtime makes it, each update() timed as it returns. Says when a balancer first holds
 * `total` endpoints, and when it holds them with all of the addresses it is told to expect.
 */
class BalancerUpdates {
  readonly kinds: PolicyKinds;
  private isReady = false;
  private readonly readyWaiters: (() => void)[] = [];
  private waiting: {
    readonly ips: readonly string[];
    readonly resolve: (at: number) => void;
  } | null = null;

  constructor(private readonly total: number) {
    const ctx = {
      log: silentLogger,
      clock: systemClock,
      random: Math.random,
      kube: () => {
        throw new Error("the bench's clients use no Kubernetes API");
      },
    };
    const real = new PolicyKinds(ctx).balancer(undefined);
    const updated = (eps: readonly BalancedEndpoint[], at: number) => this.updated(eps, at);
    const timed: LoadBalancerFactory = {
      make<E extends BalancedEndpoint>(): LoadBalancer<E> {
        const lb = real.make<E>();
        return {
          update(eps) {
            lb.update(eps);
            updated(eps, now());
          },
          pick: (avoid) => lb.pick(avoid),
          observe: lb.observe && ((e, latencyMs, ok) => lb.observe!(e, latencyMs, ok)),
          stats: () => lb.stats(),
          describe: lb.describe && (() => lb.describe!()),
        };
      },
    };
    this.kinds = new (class extends PolicyKinds {
      override balancer(): LoadBalancerFactory {
        return timed;
      }
    })(ctx);
  }

  /** Resolves once a balancer holds `total` endpoints. */
  ready(): Promise<void> {
    if (this.isReady) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Resolves with the time a balancer holds `total` endpoints, `ips` among them. */
  expect(ips: readonly string[]): Promise<number> {
    return new Promise((resolve) => {
      this.waiting = { ips, resolve };
    });
  }

  private updated(eps: readonly BalancedEndpoint[], at: number): void {
    if (eps.length !== this.total) return;
    if (!this.isReady) {
      this.isReady = true;
      for (const r of this.readyWaiters.splice(0)) r();
    }
    const w = this.waiting;
    if (!w) return;
    const hosts = new Set(eps.map(hostOf));
    if (w.ips.every((ip) => hosts.has(ip))) {
      this.waiting = null;
      w.resolve(at);
    }
  }
}

/** What the runtime gives clientStack for a router with no `client` block. */
function stackOptions(kinds: PolicyKinds): ClientStackOptions {
  return {
    paramsFor: clientParamsResolver({ kind: "io.l5d.global" } as RouterConfig["client"]),
    kinds,
    tlsContexts: new UpstreamTlsContexts(),
    metrics: new RouterMetrics(new Registry(), "bench"),
    clock: coarseClock,
    log: silentLogger,
    protocol: "http",
  };
}

/** A balancer some change must reach. */
interface BalancerProbe {
  /** Call before the change: resolves with the time the balancer holds `ips`. */
  expect(ips: readonly string[]): Promise<number>;
  close(): Promise<void>;
}

/** The control thread's own client of the bound name (a router served on the main thread). */
async function controlProbe(bound: BoundName, total: number): Promise<BalancerProbe> {
  const updates = new BalancerUpdates(total);
  const client = clientStack(stackOptions(updates.kinds))(bound);
  await bounded(updates.ready(), "the control thread's balancer holds every endpoint");
  return { expect: (ips) => updates.expect(ips), close: () => client.close() };
}

/** Between this file's two threads, beside lintel's own messages. */
type BenchToWorker =
  | { readonly type: "bench-expect"; readonly ips: readonly string[] }
  | { readonly type: "bench-close" };
type BenchFromWorker =
  | { readonly type: "bench-ready" }
  | { readonly type: "bench-seen"; readonly at: number }
  | { readonly type: "bench-closed" };

interface BenchWorkerData {
  readonly total: number;
}

/**
 * A worker thread's client of the bound name, as with uws servers: the worker binds
 * through the control thread (WorkerBindings here, RemoteBindings and TreeDecoder there,
 * lintel's own), which sends every new address set of the name across the thread boundary.
 */
async function workerProbe(
  tree: Activity<NameTree<BoundName>>,
  total: number,
): Promise<BalancerProbe> {
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { total } satisfies BenchWorkerData,
  });
  const naming = {
    routers: new Map([["bench", { interpreter: { bind: () => tree } }]]),
  } as unknown as NamingSetup;
  const bindings = new WorkerBindings(naming, (m: ToWorker) => worker.postMessage(m));
  let ready: () => void = () => {};
  let seen: ((at: number) => void) | null = null;
  let closed: () => void = () => {};
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  worker.on("error", (e) => {
    console.error("the bench's worker thread failed:", e);
    process.exit(1);
  });
  worker.on("message", (m: FromWorker | BenchFromWorker) => {
    switch (m.type) {
      case "bind":
        bindings.bind(m.sub, m.router, m.dtab, m.path);
        break;
      case "unbind":
        bindings.unbind(m.sub);
        break;
      case "bench-ready":
        ready();
        break;
      case "bench-seen":
        seen?.(m.at);
        seen = null;
        break;
      case "bench-closed":
        closed();
        break;
    }
  });
  await bounded(isReady, "the worker's balancer holds every endpoint");
  return {
    expect(ips) {
      const at = new Promise<number>((resolve) => {
        seen = resolve;
      });
      worker.postMessage({ type: "bench-expect", ips } satisfies BenchToWorker);
      return at;
    },
    async close() {
      const done = new Promise<void>((r) => {
        closed = r;
      });
      worker.postMessage({ type: "bench-close" } satisfies BenchToWorker);
      await bounded(done, "the worker's client closed");
      bindings.close();
      await worker.terminate();
    },
  };
}

/** The worker thread's side (this same file, run by workerProbe). */
function benchWorker(): void {
  const port = parentPort!;
  const { total } = workerData as BenchWorkerData;
  const updates = new BalancerUpdates(total);
  const decoder = new TreeDecoder();
  const remote = new RemoteBindings(decoder, (m: FromWorker) => port.postMessage(m));
  const makeClient = clientStack(stackOptions(updates.kinds));
  let client: Client | undefined;
  const stop = remote
    .interpreter("bench")
    .bind(Dtab.empty, readPath("/svc/web"))
    .observe((s) => {
      if (client || s.status !== "ok" || s.value.kind !== "leaf") return;
      client = makeClient(s.value.value);
    });
  void updates
    .ready()
    .then(() => port.postMessage({ type: "bench-ready" } satisfies BenchFromWorker));
  port.on("message", (m: ToWorker | BenchToWorker) => {
    switch (m.type) {
      case "bound":
        remote.bound(m.sub, m.state);
        break;
      case "addr":
        decoder.setAddr(m.addr, m.value);
        break;
      case "addr-drop":
        decoder.dropAddr(m.addr);
        break;
      case "bench-expect":
        void updates
          .expect(m.ips)
          .then((at) => port.postMessage({ type: "bench-seen", at } satisfies BenchFromWorker));
        break;
      case "bench-close":
        stop();
        void (client?.close() ?? Promise.resolve()).then(() => {
          port.postMessage({ type: "bench-closed" } satisfies BenchFromWorker);
          port.close();
        });
        break;
    }
  });
}

/** `p`, or a failure after WAIT_MS. */
async function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${WAIT_MS} ms`)), WAIT_MS);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- 1. propagation ----------------------------------------------------------------------

/** Where the balancer a change must reach runs. */
type Where = "control thread" | "worker thread";

interface PropagationCase {
  readonly label: string;
  readonly slices: number;
  readonly perSlice: number;
  /** Endpoints of one slice (a different one each round) given new Pods per change. */
  readonly changed: number;
}

interface PropagationResult {
  readonly label: string;
  readonly where: Where;
  /** From stub.apply to the bound name's address Var. */
  readonly total: Stats;
  /** From stub.apply to the balancer's update (the client's endpoints replaced). */
  readonly balancer: Stats;
  /** The synchronous part of stub.apply: the stub storing the object and writing the event. */
  readonly apply: Stats;
  /** From apply's return to the address Var: loopback, the reflector, the index, the addresses. */
  readonly after: Stats;
  /** From apply's return to the balancer: the above, then the client (and the thread hop). */
  readonly balancerAfter: Stats;
  readonly eventKb: number;
}

async function propagation(
  stub: KubeApiStub,
  namer: K8sNamer,
  c: PropagationCase,
  ns: string,
  where: Where,
): Promise<PropagationResult> {
  const total = c.slices * c.perSlice;
  const { uid, pods } = populate(stub, ns, "web", c.slices, c.perSlice);
  const watchesBefore = stub.watchCount();
  const tree = namer.lookup(Path.of(ns, "http", "web"));
  const stopTree = tree.observe(() => {});
  const bound = await until(
    tree,
    (s) => s.status === "ok" && s.value.kind === "leaf" && s.value.value.kind === "bound",
    `${c.label}: the name binds`,
  );
  if (bound.status !== "ok" || bound.value.kind !== "leaf" || bound.value.value.kind !== "bound")
    throw new Error("unreachable");
  const leaf: BoundName = bound.value.value;
  const addr: Var<Addr> = leaf.addr;

  // The address Var's view: one observer for the whole case (the first one, so the
  // balancer's work is not in its time); each round says what it waits for.
  let waiting: { readonly ips: readonly string[]; readonly resolve: (at: number) => void } | null =
    null;
  const stopAddr = addr.observe((a) => {
    const at = now();
    if (!waiting || a.kind !== "bound" || a.addresses.length !== total) return;
    const hosts = new Set(a.addresses.map((x) => x.host));
    if (waiting.ips.every((ip) => hosts.has(ip))) waiting.resolve(at);
  });
  await until(
    addr,
    (a) => a.kind === "bound" && a.addresses.length === total,
    `${c.label}: ${total} addresses`,
  );
  // Services and EndpointSlices of the namespace: both watches open, so changes stream.
  await waitFor(() => stub.watchCount() === watchesBefore + 2, `${c.label}: watches open`);
  // One balancer per case, where the runtime would have it.
  const probe =
    where === "control thread"
      ? await controlProbe(leaf, total)
      : await workerProbe(tree as Activity<NameTree<BoundName>>, total);

  const totals: number[] = [];
  const balancers: number[] = [];
  const applies: number[] = [];
  const afters: number[] = [];
  const balancerAfters: number[] = [];
  let eventBytes = 0;
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const s = round % c.slices;
    const start = (round * c.changed) % c.perSlice;
    const ips: string[] = [];
    for (let j = 0; j < c.changed; j++) {
      const p = newPod("web");
      pods[s]![(start + j) % c.perSlice] = p;
      ips.push(p.ip);
    }
    const next: EndpointSlice = slice(ns, "web", uid, sliceName("web", s), pods[s]!);
    const arrived = bounded(
      new Promise<number>((resolve) => {
        waiting = { ips, resolve };
      }),
      `${c.label}: round ${round} at the address Var`,
    );
    const balanced = bounded(probe.expect(ips), `${c.label}: round ${round} at the balancer`);
    const t0 = now();
    const stored = stub.apply(next);
    const t1 = now();
    const [at, lb] = await Promise.all([arrived, balanced]);
    waiting = null;
    if (round >= WARMUP) {
      totals.push(at - t0);
      balancers.push(lb - t0);
      applies.push(t1 - t0);
      afters.push(at - t1);
      balancerAfters.push(lb - t1);
    }
    eventBytes = Buffer.byteLength(JSON.stringify({ type: "MODIFIED", object: stored }));
    await sleep(10);
  }
  await probe.close();
  stopAddr();
  stopTree();
  return {
    label: c.label,
    where,
    total: stats(totals),
    balancer: stats(balancers),
    apply: stats(applies),
    after: stats(afters),
    balancerAfter: stats(balancerAfters),
    eventKb: eventBytes / 1024,
  };
}

// ---- 2. memory and sync time ---------------------------------------------------------------

function client(stub: KubeApiStub): KubeClient {
  return new KubeClient(openConnection({ mode: "proxy", host: "127.0.0.1", port: stub.port }), {
    clock: systemClock,
    random: Math.random,
    log: silentLogger,
  });
}

/** Lists and watches the namespace's EndpointSlices with a new client; the time until synced. */
async function syncOnce(stub: KubeApiStub, ns: string) {
  const c = client(stub);
  const w = c.watch(EndpointSlices, { namespace: ns });
  const t0 = performance.now();
  const stop = w.subscribe(() => {});
  if (!(await w.whenSynced(WAIT_MS))) throw new Error(`${ns}: the watch did not sync`);
  const syncMs = performance.now() - t0;
  let endpoints = 0;
  for (const s of w.items.values()) endpoints += s.endpoints.length;
  return { c, w, stop, syncMs, endpoints };
}

/** The list as the API sends it (one page of up to 500, as the reflector asks). */
function getList(stub: KubeApiStub, ns: string): Promise<string> {
  const path = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?limit=500`;
  return new Promise((resolve, reject) => {
    http
      .get(`${stub.url}${path}`, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (b: Buffer) => chunks.push(b));
        res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

interface MemoryResult {
  readonly endpoints: number;
  readonly watchBytes: number;
  readonly rawBytes: number;
  readonly listBytes: number;
  /** The stub answering the list to a plain GET, nothing parsed: the server's share of a sync. */
  readonly listGetMs: number;
  readonly coldSyncMs: number;
  readonly warmSyncMs: Stats;
}

async function memory(stub: KubeApiStub, ns: string): Promise<MemoryResult> {
  for (let i = 0; i < MEMORY_SERVICES; i++) {
    populate(stub, ns, `svc-${String(i).padStart(3, "0")}`, 1, MEMORY_PER_SLICE);
  }
  const watchesBefore = stub.watchCount();
  const before = await heapAfterGc();
  const kept = await syncOnce(stub, ns);
  await waitFor(() => stub.watchCount() === watchesBefore + 1, `${ns}: the watch is open`);
  const afterWatch = await heapAfterGc();

  // The same data kept as the API sent it: the parsed list items by namespace/name.
  const t0 = performance.now();
  let body: string | undefined = await getList(stub, ns);
  const listGetMs = performance.now() - t0;
  const listBytes = Buffer.byteLength(body);
  const raw = new Map<string, unknown>();
  for (const item of (JSON.parse(body) as { items: { metadata: { name: string } }[] }).items)
    raw.set(`${ns}/${item.metadata.name}`, item);
  body = undefined;
  const afterRaw = await heapAfterGc();
  if (raw.size !== kept.w.items.size) throw new Error("the raw list and the watch differ");

  const warm: number[] = [];
  for (let i = 0; i < SYNC_REPEATS; i++) {
    const again = await syncOnce(stub, ns);
    warm.push(again.syncMs);
    again.stop();
    again.c.close();
  }
  kept.stop();
  kept.c.close();
  await waitFor(() => stub.watchCount() === watchesBefore, `${ns}: the watches closed`);
  return {
    endpoints: kept.endpoints,
    watchBytes: afterWatch - before,
    rawBytes: afterRaw - afterWatch,
    listBytes,
    listGetMs,
    coldSyncMs: kept.syncMs,
    warmSyncMs: stats(warm),
  };
}

// ---- the run ------------------------------------------------------------------------------

const CASES: readonly PropagationCase[] = [
  { label: "1 slice x 1000, 100 changed", slices: 1, perSlice: 1000, changed: 100 },
  { label: "1 slice x 100, 10 changed", slices: 1, perSlice: 100, changed: 10 },
  { label: "10 slices x 100, 10 changed in 1", slices: 10, perSlice: 100, changed: 10 },
];

async function main(): Promise<void> {
  if (!gc) {
    console.error("run with node --expose-gc (npm run bench:k8s does)");
    process.exit(2);
  }
  console.log(`machine: ${cpus()[0]?.model ?? "unknown"} x ${cpus().length} cores`);
  console.log(`node: ${process.version}`);
  const stub = await startKubeApiStub({ bookmarkIntervalMs: 60_000 });
  const api = client(stub);
  try {
    // Memory first, on a heap that holds little else.
    const ns = "mem";
    const m = await memory(stub, ns);
    const per = (bytes: number) => `${Math.round(bytes / m.endpoints)} B/endpoint`;
    console.log(
      `\n[memory] ${MEMORY_SERVICES} EndpointSlices x ${MEMORY_PER_SLICE} endpoints (${m.endpoints}), one watch of namespace ${ns}`,
    );
    console.log(`  list as sent: ${mb(m.listBytes)} MB of JSON`);
    console.log(`  watch (views): ${mb(m.watchBytes)} MB heap, ${per(m.watchBytes)}`);
    console.log(`  raw objects:   ${mb(m.rawBytes)} MB heap, ${per(m.rawBytes)}`);
    console.log(
      `  list+sync: ${ms(m.coldSyncMs)} ms cold; warm (new client each) p50 ${ms(m.warmSyncMs.p50)} ms, max ${ms(m.warmSyncMs.max)} ms over ${SYNC_REPEATS}; the stub answering the list to a plain GET: ${ms(m.listGetMs)} ms`,
    );

    const namer = new K8sNamer(api, Path.of("#", "io.l5d.k8s"), undefined, silentLogger);
    const results: PropagationResult[] = [];
    const places: readonly Where[] = ["control thread", "worker thread"];
    for (const [i, c] of CASES.entries()) {
      for (const [j, where] of places.entries()) {
        const r = await propagation(stub, namer, c, `prop-${i}-${j}`, where);
        results.push(r);
        console.log(
          `\n[propagation] ${r.label}, balancer on the ${where} (event ${r.eventKb.toFixed(0)} KiB): after stub.apply returns (the event written) -> balancer p50 ${ms(r.balancerAfter.p50)} ms, p95 ${ms(r.balancerAfter.p95)} ms, max ${ms(r.balancerAfter.max)} ms (-> address Var p50 ${ms(r.after.p50)} ms, p95 ${ms(r.after.p95)} ms); stub.apply itself p50 ${ms(r.apply.p50)} ms; from its call -> balancer p50 ${ms(r.balancer.p50)} ms, p95 ${ms(r.balancer.p95)} ms`,
        );
      }
    }

    console.log(
      `\nsummary (ms; ${ROUNDS} changes per case after ${WARMUP} warm-up. "balancer": to the p2c balancer's update in a Client built as the runtime builds one, on the control thread or on a worker thread through the control thread's address snapshot; "Var": to the bound name's address Var. "after apply": from stub.apply's return, when the event is written, so the stub's own work is left out; "from apply": from its call)`,
    );
    const rows: string[][] = [
      [
        "measurement",
        "balancer after apply p50",
        "p95",
        "max",
        "Var after apply p50",
        "p95",
        "stub.apply p50",
        "balancer from apply p50",
        "p95",
      ],
      ...results.map((r) => [
        `propagation: ${r.label}, ${r.where}`,
        ms(r.balancerAfter.p50),
        ms(r.balancerAfter.p95),
        ms(r.balancerAfter.max),
        ms(r.after.p50),
        ms(r.after.p95),
        ms(r.apply.p50),
        ms(r.balancer.p50),
        ms(r.balancer.p95),
      ]),
      [
        `list+sync ${m.endpoints} endpoints (warm)`,
        ms(m.warmSyncMs.p50),
        "",
        ms(m.warmSyncMs.max),
        "",
        "",
        "",
        "",
        "",
      ],
      [`list+sync ${m.endpoints} endpoints (cold)`, ms(m.coldSyncMs), "", "", "", "", "", "", ""],
    ];
    const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
    for (const r of rows)
      console.log(
        r.map((x, j) => (j === 0 ? x.padEnd(widths[j]!) : x.padStart(widths[j]!))).join("  "),
      );
    console.log(
      `memory, ${m.endpoints} endpoints: watch ${mb(m.watchBytes)} MB (${per(m.watchBytes)}), raw objects ${mb(m.rawBytes)} MB (${per(m.rawBytes)}), ${(m.rawBytes / m.watchBytes).toFixed(1)}x`,
    );
  } finally {
    api.close();
    await stub.close();
  }
}

if (isMainThread) await main();
else benchWorker();
