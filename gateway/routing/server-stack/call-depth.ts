// Stops routing loops: a request that already passed `maxCallDepth` proxies (its Via
// entries) is refused rather than sent around once more.

import { def, integer, object } from "../../config/schema.js";
import { ProxyError } from "../../http/errors.js";
import { viaCount } from "../../http/headers.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ArrivingRequest, ServerLayer } from "./layer.js";

export class CallDepthLayer implements ServerLayer {
  readonly name = "callDepth";

  constructor(private readonly maxCallDepth: number) {}

  arrive(req: ArrivingRequest): boolean {
    const hops = viaCount(req.ex.headers);
    if (hops >= this.maxCallDepth) {
      throw new ProxyError(
        "LINTEL_CALL_DEPTH",
        `maximum call depth (${this.maxCallDepth}) exceeded: the request passed ${hops} proxies; check for a routing loop`,
      );
    }
    return false;
  }
}

export const callDepthLayer = definePlugin({
  category: "serverLayer",
  kind: "callDepth",
  schema: object({ maxCallDepth: def(integer({ min: 1 }), 1000) }),
  create: (config) => new CallDepthLayer(config.maxCallDepth),
});
