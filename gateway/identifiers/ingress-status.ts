// Publishes where lintel is reachable into status.loadBalancer of the Ingresses it serves
// (the ADDRESS `kubectl get ingress` shows): a LoadBalancer Service's addresses, or a fixed
// list. Control thread only. Writes only on difference, so replicas that agree never fight.

import { isIP } from "node:net";
import type { Clock, Timer } from "../clock.js";
import type { KubeApi, KubeWatch, KubeWriter } from "../k8s/api.js";
import {
  Ingresses,
  type IngressView,
  type LoadBalancerIngress,
  Services,
  type ServiceView,
} from "../k8s/resources.js";
import type { Logger } from "../log.js";

// A failed write is tried again on the next change, or after this backoff, doubling up to
// the maximum: quick enough for a blip of the API, gentle when it refuses for longer.
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

/** Where the published addresses come from. */
export type PublishSource =
  | { readonly service: { readonly namespace: string; readonly name: string } }
  | { readonly addresses: readonly string[] };

export interface IngressStatusOptions {
  readonly log: Logger;
  readonly clock: Clock;
  readonly kube: KubeApi;
  readonly writer: KubeWriter;
  /** The identifier's watch of Ingresses. */
  readonly ingresses: KubeWatch<IngressView>;
  readonly serves: (ing: IngressView) => boolean;
  readonly source: PublishSource;
}

/** `{ip}` for IP literals, `{hostname}` for the rest. */
function loadBalancerEntries(addresses: readonly string[]): LoadBalancerIngress[] {
  return addresses.map((a) => (isIP(a) !== 0 ? { ip: a } : { hostname: a }));
}

/** A load-balancer list compared without regard to order. */
function signature(list: readonly LoadBalancerIngress[]): string {
  return list
    .map((e) => `${e.ip ?? ""}/${e.hostname ?? ""}`)
    .sort()
    .join(",");
}

export class IngressStatusPublisher {
  private readonly fixed: readonly LoadBalancerIngress[] | undefined;
  private readonly service: KubeWatch<ServiceView> | undefined;
  private readonly serviceKey: string;
  private readonly unsubscribe: (() => void)[] = [];
  /** What was last written to an Ingress, and the view it was written over. */
  private readonly written = new Map<string, { view: IngressView; signature: string }>();
  private retryTimer: Timer | undefined;
  private retryMs = RETRY_MIN_MS;
  private serviceMissingLogged = false;
  private closed = false;

  constructor(private readonly opts: IngressStatusOptions) {
    const source = opts.source;
    if ("service" in source) {
      const { namespace, name } = source.service;
      this.fixed = undefined;
      this.serviceKey = `${namespace}/${name}`;
      this.service = opts.kube.watch(Services, {
        namespace,
        fieldSelector: `metadata.name=${name}`,
      });
      this.unsubscribe.push(this.service.subscribe(this.sync));
    } else {
      this.fixed = loadBalancerEntries(source.addresses);
      this.serviceKey = "";
      this.service = undefined;
    }
    this.unsubscribe.push(opts.ingresses.subscribe(this.sync));
    this.sync();
  }

  close(): void {
    this.closed = true;
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.retryTimer !== undefined) this.opts.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** The list to publish, or undefined while it is not known. */
  private wanted(): readonly LoadBalancerIngress[] | undefined {
    if (this.service === undefined) return this.fixed;
    if (!this.service.synced) return undefined;
    const svc = this.service.items.get(this.serviceKey);
    if (svc === undefined) {
      if (!this.serviceMissingLogged) {
        this.opts.log.warn("the publishService does not exist; Ingress status left as is", {
          service: this.serviceKey,
        });
        this.serviceMissingLogged = true;
      }
      return undefined;
    }
    this.serviceMissingLogged = false;
    return svc.loadBalancer;
  }

  /** Writes the wanted list into every served Ingress that shows another. */
  private readonly sync = (): void => {
    const { ingresses, serves } = this.opts;
    if (this.closed || !ingresses.synced) return;
    const wanted = this.wanted();
    if (wanted === undefined) return;
    const sig = signature(wanted);
    for (const [key, ing] of ingresses.items) {
      if (!serves(ing)) continue;
      if (signature(ing.loadBalancer) === sig) {
        this.written.delete(key);
        continue;
      }
      // Already written over this very view: the watch has not shown the result yet.
      const last = this.written.get(key);
      if (last !== undefined && last.view === ing && last.signature === sig) continue;
      this.written.set(key, { view: ing, signature: sig });
      void this.write(key, ing, wanted);
    }
    for (const key of this.written.keys()) if (!ingresses.items.has(key)) this.written.delete(key);
  };

  private async write(
    key: string,
    ing: IngressView,
    wanted: readonly LoadBalancerIngress[],
  ): Promise<void> {
    try {
      await this.opts.writer.patchStatus(Ingresses, ing.namespace, ing.name, {
        loadBalancer: { ingress: wanted },
      });
      this.retryMs = RETRY_MIN_MS;
    } catch (e) {
      if (this.written.get(key)?.view === ing) this.written.delete(key);
      if (this.closed) return;
      this.opts.log.warn("could not write the Ingress status; will try again", {
        ingress: key,
        error: e instanceof Error ? e.message : String(e),
      });
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== undefined) return;
    this.retryTimer = this.opts.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.sync();
    }, this.retryMs);
    this.retryTimer.unref?.();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
