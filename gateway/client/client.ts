// A client is everything lintel keeps for one bound destination (a bound id): its live
// address set, an endpoint (connection pool) per address, and the load balancer. When the
// addresses change, new endpoints get traffic and removed ones finish their requests.

import type { Logger } from "../log.js";
import { type Addr, addressKey, type BoundName } from "../naming/index.js";
import type { Balancer } from "./balancer.js";
import { Endpoint, type EndpointOptions } from "./endpoint.js";

export class Client {
  private endpoints: Endpoint[] = [];
  private readonly byKey = new Map<string, Endpoint>();
  private addr: Addr;
  private readonly stopObserving: () => void;
  private waiters: (() => void)[] = [];
  lastUsed = Date.now();

  constructor(
    readonly bound: BoundName,
    private readonly balancer: Balancer,
    private readonly endpointOptions: EndpointOptions,
    private readonly log: Logger,
  ) {
    this.stopObserving = bound.addr.observe((a) => this.update(a));
    this.addr = { kind: "pending" };
    this.update(bound.addr.sample());
  }

  /** The address state: pending, neg, failed, or bound (possibly to no addresses). */
  get state(): Addr {
    return this.addr;
  }

  pick(): Endpoint | undefined {
    this.lastUsed = Date.now();
    return this.balancer.pick(this.endpoints);
  }

  /** Resolves when the address state leaves pending (or right away if it has). */
  whenResolved(): Promise<void> {
    if (this.addr.kind !== "pending") return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private update(a: Addr): void {
    this.addr = a;
    if (a.kind === "bound") {
      const next = new Map(a.addresses.map((x) => [addressKey(x), x]));
      for (const [key, ep] of this.byKey) {
        const x = next.get(key);
        if (x === undefined || x.weight !== ep.address.weight) {
          this.byKey.delete(key);
          void ep.close();
        }
      }
      for (const [key, x] of next)
        if (!this.byKey.has(key)) this.byKey.set(key, new Endpoint(x, this.endpointOptions));
      this.endpoints = [...this.byKey.values()];
      this.log.debug("addresses changed", {
        client: this.bound.id.show,
        addresses: this.endpoints.length,
      });
    }
    if (a.kind !== "pending" && this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const r of w) r();
    }
  }

  /** Stops using the client: with `now`, requests still in flight are cut. */
  close(now = false): Promise<void> {
    this.stopObserving();
    const eps = [...this.byKey.values()];
    this.byKey.clear();
    this.endpoints = [];
    return Promise.all(eps.map((e) => (now ? e.destroy() : e.close()))).then(() => {});
  }
}
