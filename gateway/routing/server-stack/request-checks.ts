// Refuses requests whose framing or head can be read more than one way, or that are over
// the router's limits (gateway/http/request-checks.ts), before anything else looks at them.

import { object } from "../../config/schema.js";
import { checkRequest, type RequestLimits } from "../../http/request-checks.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ArrivingRequest, ServerLayer } from "./layer.js";

export class RequestChecksLayer implements ServerLayer {
  readonly name = "requestChecks";

  constructor(private readonly limits: RequestLimits) {}

  arrive(req: ArrivingRequest): boolean {
    checkRequest(req.ex, this.limits);
    return false;
  }
}

/** Checks against the router's limits (`maxHeadersKB`, `maxInitialLineKB`, …). */
export const requestChecksLayer = definePlugin({
  category: "serverLayer",
  kind: "requestChecks",
  schema: object({}),
  create: (_config, ctx) => new RequestChecksLayer(ctx.limits),
});
