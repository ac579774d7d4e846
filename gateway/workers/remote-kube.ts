// A worker's view of the Kubernetes API: the same KubeApi the control thread's kinds use,
// served by the control thread's watches (a worker opens no connection of its own and
// cannot write).

import type { Clock, Timer } from "../clock.js";
import type { KubeApi, KubeApiRef, KubeWatch, WatchSelector, WatchStatus } from "../k8s/api.js";
import { type ResourceType, resourceId } from "../k8s/resources.js";
import type { FromWorker, KubeItems } from "./protocol.js";

type Listener = (changed: ReadonlySet<string> | undefined) => void;

class RemoteWatch<T> implements KubeWatch<T> {
  readonly items = new Map<string, T>();
  synced = false;
  private readonly listeners = new Set<Listener>();
  private events = 0;

  constructor(
    private readonly start: () => void,
    private readonly clock: Clock,
    private readonly resource: string,
    private readonly selector: WatchSelector,
  ) {}

  status(): WatchStatus {
    return {
      resource: this.resource,
      namespace: this.selector.namespace,
      labelSelector: this.selector.labelSelector,
      fieldSelector: this.selector.fieldSelector,
      phase: "remote",
      synced: this.synced,
      objects: this.items.size,
      resourceVersion: undefined,
      lastSyncAt: undefined,
      lastEventAt: undefined,
      lists: 0,
      watches: 0,
      events: this.events,
      errors: 0,
      lastError: undefined,
    };
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    // Once asked for, the control thread keeps the worker's copy for the worker's life.
    if (this.listeners.size === 1) this.start();
    return () => this.listeners.delete(listener);
  }

  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: Timer | undefined;
      const stop = this.subscribe(() => {
        if (!this.synced) return;
        if (timer) this.clock.clearTimeout(timer);
        stop();
        resolve(true);
      });
      timer = this.clock.setTimeout(() => {
        stop();
        resolve(this.synced);
      }, timeoutMs);
      timer.unref?.();
    });
  }

  apply(m: KubeItems): void {
    if (m.reset) this.items.clear();
    for (const [k, v] of m.upserts) this.items.set(k, v as T);
    for (const k of m.deletes) this.items.delete(k);
    this.synced = m.synced;
    this.events++;
    const changed = m.reset ? undefined : new Set([...m.upserts.map(([k]) => k), ...m.deletes]);
    for (const l of [...this.listeners]) l(changed);
  }
}

/** The worker's Kubernetes watches, by subscription number. */
export class RemoteKube {
  private readonly bySub = new Map<number, RemoteWatch<unknown>>();
  private readonly byKey = new Map<string, RemoteWatch<unknown>>();
  private nextSub = 1;

  constructor(
    private readonly post: (m: FromWorker) => void,
    private readonly clock: Clock,
  ) {}

  api(ref?: KubeApiRef): KubeApi {
    return {
      description: "the control thread's Kubernetes watches",
      writer: undefined,
      watch: <T>(type: ResourceType<T>, selector: WatchSelector = {}) =>
        this.watch(ref, type, selector),
    };
  }

  private watch<T>(
    ref: KubeApiRef | undefined,
    type: ResourceType<T>,
    selector: WatchSelector,
  ): KubeWatch<T> {
    const resource = resourceId(type as ResourceType<unknown>);
    const key = JSON.stringify([ref?.host, ref?.port, resource, selector]);
    let w = this.byKey.get(key);
    if (!w) {
      const sub = this.nextSub++;
      w = new RemoteWatch<unknown>(
        () => this.post({ type: "kube-watch", sub, ref, resource, selector }),
        this.clock,
        resource,
        selector,
      );
      this.byKey.set(key, w);
      this.bySub.set(sub, w);
    }
    return w as KubeWatch<T>;
  }

  items(m: KubeItems): void {
    this.bySub.get(m.sub)?.apply(m);
  }

  /** Waits up to `timeoutMs` for every watch asked for so far to be listed. */
  async waitForSync(timeoutMs: number): Promise<void> {
    await Promise.all([...this.bySub.values()].map((w) => w.whenSynced(timeoutMs)));
  }
}
