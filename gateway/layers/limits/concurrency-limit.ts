// `concurrencyLimit`: requests a key (by default the client's address) may have in
// progress at once, over every thread of the process; one more is answered 429 at once.
// A request gives its place back when it finishes, however it ends.

import { def, integer, object, refine, req, string } from "../../config/schema.js";
import { ProxyError } from "../../http/errors.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import type { ArrivingRequest, ServerLayer } from "../../routing/server-stack/layer.js";
import type { Counter } from "../../telemetry/registry.js";
import { CountTable } from "./count-table.js";
import { keyOf, parseRateKey, type RateKey } from "./rate-key.js";

export class ConcurrencyLimitLayer implements ServerLayer {
  readonly name = "concurrencyLimit";
  /** The key each counted request holds a place under. */
  private readonly held = new WeakMap<ArrivingRequest, string>();
  private readonly limited: Counter;

  constructor(
    private readonly table: CountTable,
    private readonly key: RateKey,
    private readonly max: number,
    ctx: ServerLayerContext,
  ) {
    const scope = ctx.metrics.scope({
      flat: `rt/${ctx.routerLabel}/concurrencylimit`,
      prom: "rt:concurrencylimit",
      labels: [["rt", ctx.routerLabel]],
    });
    this.limited = scope.counter("limited");
    scope.gauge("overflows", () => table.overflows);
  }

  arrive(req: ArrivingRequest): boolean {
    const key = keyOf(this.key, req);
    if (key === undefined) return false;
    const got = this.table.acquire(key, this.max);
    if (got === false) {
      this.limited.n++;
      throw new ProxyError(
        "LINTEL_RATE_LIMITED",
        `this ${this.key.by} has ${this.max} requests in progress already (concurrencyLimit)`,
      );
    }
    if (got) this.held.set(req, key);
    return false;
  }

  leave(req: ArrivingRequest): void {
    const key = this.held.get(req);
    if (key === undefined) return;
    this.held.delete(req);
    this.table.release(key);
  }
}

export const concurrencyLimitLayer = definePlugin({
  category: "serverLayer",
  kind: "concurrencyLimit",
  schema: object({
    maxConcurrentRequests: req(integer({ min: 1 })),
    key: def(
      refine(string(), (v) => {
        const k = parseRateKey(v);
        return typeof k === "string" ? k : undefined;
      }),
      "client",
    ),
    /** Keys counted at once; more go uncounted (counted as overflows). */
    maxKeys: def(integer({ min: 8 }), 65_536),
  }),
  create: (config, ctx) =>
    new ConcurrencyLimitLayer(
      new CountTable(
        ctx.arena,
        `${ctx.routerLabel}/concurrency/${JSON.stringify(config)}`,
        config.maxKeys,
      ),
      parseRateKey(config.key) as RateKey,
      config.maxConcurrentRequests,
      ctx,
    ),
});
