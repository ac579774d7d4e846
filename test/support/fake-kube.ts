// An in-memory Kubernetes API for unit tests: the test sets and deletes views, says when a
// watch has listed, and reads what was written; plus a manual clock, a plugin context and
// view builders. Watches filter by `selector.namespace` only: label and field selectors
// are ignored.
//
//   const kube = new FakeKube();                  // new FakeKube({ writer: false }): a worker
//   const ctx = { ...pluginContext({ kube }), dstPrefix: Path.of("svc") };
//   kube.set(Ingresses, view);                    // listeners hear ["ns/name"] at once
//   kube.markSynced(Ingresses);                   // every watch of the type has listed
//   kube.writer?.failNext();                      // the next patchStatus rejects
//   ctx.clock.advance(1000);                      // runs the timers now due, in order

import type { Clock, Timer } from "../../gateway/clock.js";
import type {
  KubeApi,
  KubeApiRef,
  KubeWatch,
  KubeWriter,
  WatchSelector,
  WatchStatus,
} from "../../gateway/k8s/api.js";
import type {
  IngressBackendView,
  IngressPathView,
  IngressRuleView,
  IngressView,
  KubeObject,
  PathType,
  ResourceType,
  ServiceView,
} from "../../gateway/k8s/resources.js";
import { type Logger, silentLogger } from "../../gateway/log.js";

type Listener = (changed: ReadonlySet<string> | undefined) => void;

/** Views carry their name, and their namespace when the resource is namespaced. */
interface Named {
  readonly name: string;
  readonly namespace?: string;
}

function keyOf(view: unknown): string {
  const { namespace, name } = view as Named;
  return namespace ? `${namespace}/${name}` : name;
}

function namespaceOfKey(key: string): string | undefined {
  const slash = key.indexOf("/");
  return slash < 0 ? undefined : key.slice(0, slash);
}

export class FakeWatch<T> implements KubeWatch<T> {
  readonly items = new Map<string, T>();
  synced = false;
  private readonly listeners = new Set<Listener>();
  private readonly syncWaiters: (() => void)[] = [];

  constructor(
    readonly type: ResourceType<T>,
    readonly selector: WatchSelector,
  ) {}

  status(): WatchStatus {
    return {
      resource: this.type.plural,
      namespace: this.selector.namespace,
      labelSelector: this.selector.labelSelector,
      fieldSelector: this.selector.fieldSelector,
      phase: this.synced ? "watching" : "listing",
      synced: this.synced,
      objects: this.items.size,
      resourceVersion: undefined,
      lastSyncAt: undefined,
      lastEventAt: undefined,
      lists: this.synced ? 1 : 0,
      watches: this.synced ? 1 : 0,
      events: 0,
      errors: 0,
      lastError: undefined,
    };
  }

  /** How many listeners are subscribed (0 once everyone has unsubscribed). */
  get subscribers(): number {
    return this.listeners.size;
  }

  subscribe(listener: Listener): () => void {
    // Wrapped, so the same function subscribed twice counts twice, as in a real watch.
    const entry: Listener = (changed) => listener(changed);
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.syncWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** True when the object with this key is one the selector covers. */
  covers(key: string): boolean {
    const ns = this.selector.namespace;
    return ns === undefined || !this.type.namespaced || namespaceOfKey(key) === ns;
  }

  /** The first list: `items` becomes what the store holds. */
  list(store: ReadonlyMap<string, unknown>): void {
    this.items.clear();
    for (const [k, v] of store) if (this.covers(k)) this.items.set(k, v as T);
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
    this.notify(undefined);
  }

  /** A change the watch sees (after its first list only). */
  change(key: string, view: T | undefined): void {
    if (!this.synced || !this.covers(key)) return;
    if (view === undefined) {
      if (!this.items.delete(key)) return;
    } else {
      this.items.set(key, view);
    }
    this.notify(new Set([key]));
  }

  private notify(changed: ReadonlySet<string> | undefined): void {
    for (const l of [...this.listeners]) l(changed);
  }
}

export interface PatchCall {
  /** The resource's plural, e.g. `ingresses`. */
  readonly type: string;
  readonly namespace: string;
  readonly name: string;
  readonly status: unknown;
  /** True when failNext made the call reject. */
  readonly failed: boolean;
}

/** Records every patchStatus; rejects the next ones on demand. The store is not changed. */
export class FakeWriter implements KubeWriter {
  readonly calls: PatchCall[] = [];
  private failures = 0;

  private unfaked(): never {
    throw new Error(
      "FakeKube does not fake object writes; test against the API stub (test/support/kube-api-stub.ts)",
    );
  }
  async get(): Promise<KubeObject | undefined> {
    this.unfaked();
  }
  async create(): Promise<KubeObject> {
    this.unfaked();
  }
  async replace(): Promise<KubeObject> {
    this.unfaked();
  }
  async delete(): Promise<void> {
    this.unfaked();
  }
  async list(): Promise<KubeObject[]> {
    this.unfaked();
  }

  /** The next `times` calls reject with "fake API: write refused". */
  failNext(times = 1): void {
    this.failures += times;
  }

  async patchStatus(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
    status: unknown,
  ): Promise<void> {
    const failed = this.failures > 0;
    if (failed) this.failures--;
    this.calls.push({ type: type.plural, namespace, name, status, failed });
    if (failed) throw new Error("fake API: write refused");
  }
}

export class FakeKube implements KubeApi {
  readonly description = "fake Kubernetes API";
  /** Undefined with `{ writer: false }`, as in a worker thread. */
  readonly writer: FakeWriter | undefined;
  /** The refs passed through pluginContext's `kube`, in order. */
  readonly refs: (KubeApiRef | undefined)[] = [];
  private readonly stores = new Map<string, Map<string, unknown>>();
  private readonly watches = new Map<string, FakeWatch<unknown>>();
  /** Types marked synced without a selector: their later watches start synced. */
  private readonly syncedTypes = new Set<string>();

  constructor(opts: { writer?: boolean } = {}) {
    this.writer = opts.writer === false ? undefined : new FakeWriter();
  }

  watch<T>(type: ResourceType<T>, selector: WatchSelector = {}): FakeWatch<T> {
    const id = watchId(type, selector);
    let w = this.watches.get(id) as FakeWatch<T> | undefined;
    if (w === undefined) {
      w = new FakeWatch(type, selector);
      this.watches.set(id, w as FakeWatch<unknown>);
      if (this.syncedTypes.has(type.plural)) w.list(this.store(type));
    }
    return w;
  }

  /** Adds or replaces an object (keyed `namespace/name`, or `name` when cluster-scoped). */
  set<T>(type: ResourceType<T>, view: T): void {
    const key = keyOf(view);
    this.store(type).set(key, view);
    for (const w of this.watchesOf(type)) w.change(key, view);
  }

  delete(type: ResourceType<unknown>, key: string): void {
    this.store(type).delete(key);
    for (const w of this.watchesOf(type)) w.change(key, undefined);
  }

  /** The first list completes: for the watch of `selector`, or for every watch of `type`. */
  markSynced(type: ResourceType<unknown>, selector?: WatchSelector): void {
    if (selector !== undefined) {
      this.watch(type, selector).list(this.store(type));
      return;
    }
    this.syncedTypes.add(type.plural);
    for (const w of this.watchesOf(type)) if (!w.synced) w.list(this.store(type));
  }

  private store(type: ResourceType<unknown>): Map<string, unknown> {
    let s = this.stores.get(type.plural);
    if (s === undefined) {
      s = new Map();
      this.stores.set(type.plural, s);
    }
    return s;
  }

  private watchesOf(type: ResourceType<unknown>): FakeWatch<unknown>[] {
    return [...this.watches.values()].filter((w) => w.type.plural === type.plural);
  }
}

/** One watch per type and selector (the selector's fields in a fixed order). */
function watchId(type: ResourceType<unknown>, s: WatchSelector): string {
  return `${type.plural} ${JSON.stringify([s.namespace, s.labelSelector, s.fieldSelector])}`;
}

/** A clock that moves only when told: `advance` runs the timers that fall due, in order. */
export interface FakeClock extends Clock {
  advance(ms: number): void;
  /** Timers set and neither run nor cleared. */
  readonly pending: number;
}

interface FakeTimer extends Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

export function fakeClock(start = Date.UTC(2024, 0, 1)): FakeClock {
  let now = start;
  let seq = 0;
  const timers = new Set<FakeTimer>();
  const next = (until: number): FakeTimer | undefined => {
    let best: FakeTimer | undefined;
    for (const t of timers) {
      if (t.at > until) continue;
      if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  };
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const t: FakeTimer = { at: now + Math.max(0, ms), seq: seq++, fn, unref() {} };
      timers.add(t);
      return t;
    },
    clearTimeout(t) {
      timers.delete(t as FakeTimer);
    },
    advance(ms) {
      const until = now + ms;
      for (let t = next(until); t !== undefined; t = next(until)) {
        timers.delete(t);
        now = t.at;
        t.fn();
      }
      now = until;
    },
    get pending() {
      return timers.size;
    },
  };
}

/** The shared pieces of a plugin context on fakes; spread it and add the category's own. */
export function pluginContext(extra: { kube?: FakeKube; clock?: FakeClock; log?: Logger } = {}): {
  log: Logger;
  clock: FakeClock;
  random: () => number;
  kube: (ref?: KubeApiRef) => FakeKube;
} {
  const fake = extra.kube ?? new FakeKube();
  return {
    log: extra.log ?? silentLogger,
    clock: extra.clock ?? fakeClock(),
    random: Math.random,
    kube: (ref) => {
      fake.refs.push(ref);
      return fake;
    },
  };
}

// ---- views ----------------------------------------------------------------------------

/** An Ingress view: namespace `default`, created 2024-01-01, no class, no rules. */
export function ingressView(v: Partial<IngressView> & { readonly name: string }): IngressView {
  return {
    namespace: "default",
    className: undefined,
    annotationClass: undefined,
    defaultBackend: undefined,
    rules: [],
    tls: [],
    loadBalancer: [],
    created: "2024-01-01T00:00:00Z",
    ...v,
  };
}

/** A rule for `host` (undefined: every host) with these paths. */
export function rule(host: string | undefined, ...paths: IngressPathView[]): IngressRuleView {
  return { host, paths };
}

/** A path to a Service backend; a `backend` of undefined stands for a resource backend. */
export function path(
  pathType: PathType,
  p: string | undefined,
  backend: IngressBackendView | undefined,
): IngressPathView {
  return { path: p, pathType, backend };
}

export const backend = (service: string, port: number | string = 80): IngressBackendView => ({
  service,
  port,
});

/** A Service view: a LoadBalancer with these load-balancer entries. */
export function serviceView(
  v: Partial<ServiceView> & { readonly namespace: string; readonly name: string },
): ServiceView {
  return { labels: {}, type: "LoadBalancer", ports: [], loadBalancer: [], ...v };
}
