// The control thread's side of a worker's Kubernetes watches: each watch a worker asks
// for is served from the control thread's shared one, and its changes are sent on,
// until the worker goes away.

import type { KubeApis } from "../k8s/kube-apis.js";
import { RESOURCE_TYPES } from "../k8s/resources.js";
import type { Logger } from "../log.js";
import type { FromWorker, ToWorker } from "./protocol.js";

type WatchRequest = Extract<FromWorker, { type: "kube-watch" }>;

export class WorkerKube {
  private readonly subs = new Map<number, () => void>();

  constructor(
    private readonly kube: KubeApis | undefined,
    private readonly post: (m: ToWorker) => void,
    private readonly log: Logger,
  ) {}

  watch(m: WatchRequest): void {
    const type = RESOURCE_TYPES.get(m.resource);
    if (!this.kube || !type || this.subs.has(m.sub)) {
      this.log.error("a worker asked for a Kubernetes watch the control thread cannot serve", {
        resource: m.resource,
      });
      return;
    }
    const w = this.kube.get(m.ref).watch(type, m.selector);
    const send = (changed: ReadonlySet<string> | undefined) => {
      if (changed === undefined) {
        this.post({
          type: "kube-items",
          sub: m.sub,
          synced: w.synced,
          reset: true,
          upserts: [...w.items],
          deletes: [],
        });
        return;
      }
      const upserts: [string, unknown][] = [];
      const deletes: string[] = [];
      for (const k of changed) {
        const v = w.items.get(k);
        if (v === undefined) deletes.push(k);
        else upserts.push([k, v]);
      }
      this.post({
        type: "kube-items",
        sub: m.sub,
        synced: w.synced,
        reset: false,
        upserts,
        deletes,
      });
    };
    this.subs.set(m.sub, w.subscribe(send));
    // What the control thread already has goes at once.
    if (w.synced) send(undefined);
  }

  close(): void {
    for (const stop of this.subs.values()) stop();
    this.subs.clear();
  }
}
