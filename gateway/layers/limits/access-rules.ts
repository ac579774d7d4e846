// `access`: allow or deny requests by the client's address (the one a PROXY header or a
// trusted X-Forwarded-For gave), per server or per service prefix. A `deny` match is
// refused with 403 whatever else matches; with an `allow` list, a client outside it is
// refused too.

import { cidr, def, list, object } from "../../config/schema.js";
import { CidrSet } from "../../http/cidr.js";
import { ProxyError } from "../../http/errors.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import {
  type ArrivingRequest,
  clientAddress,
  type ServerLayer,
} from "../../routing/server-stack/layer.js";
import type { Counter } from "../../telemetry/registry.js";

export class AccessLayer implements ServerLayer {
  readonly name = "access";
  private readonly refused: Counter;

  constructor(
    private readonly allow: CidrSet,
    private readonly deny: CidrSet,
    ctx: ServerLayerContext,
  ) {
    this.refused = ctx.metrics
      .scope({
        flat: `rt/${ctx.routerLabel}/access`,
        prom: "rt:access",
        labels: [["rt", ctx.routerLabel]],
      })
      .counter("refused");
  }

  arrive(req: ArrivingRequest): boolean {
    const client = clientAddress(req);
    if (this.deny.has(client) || (this.allow.size > 0 && !this.allow.has(client))) {
      this.refused.n++;
      throw new ProxyError("LINTEL_FORBIDDEN", `the client ${client} is not allowed here`);
    }
    return false;
  }
}

export const accessLayer = definePlugin({
  category: "serverLayer",
  kind: "access",
  schema: object({
    allow: def(list(cidr()), []),
    deny: def(list(cidr()), []),
  }),
  validate: (config) =>
    config.allow.length === 0 && config.deny.length === 0
      ? [{ field: "allow", message: "an access layer needs an allow or a deny list" }]
      : [],
  create: (config, ctx) =>
    new AccessLayer(new CidrSet(config.allow), new CidrSet(config.deny), ctx),
});
