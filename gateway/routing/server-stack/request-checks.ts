// Refuses requests whose framing or head can be read more than one way, or that are over
// the router's limits (gateway/http/request-checks.ts), before anything else looks at them.

import { checkRequest, type RequestLimits } from "../../http/request-checks.js";
import type { ArrivingRequest, ServerLayer } from "./layer.js";

export class RequestChecksLayer implements ServerLayer {
  readonly name = "requestChecks";

  constructor(private readonly limits: RequestLimits) {}

  arrive(req: ArrivingRequest): boolean {
    checkRequest(req.ex, this.limits);
    return false;
  }
}
