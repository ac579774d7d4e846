// Bounds the requests a server serves at once (`maxConcurrentRequests`): one over the
// bound is answered 503 at once instead of queueing behind the others.

import { integer, object, req } from "../../config/schema.js";
import { ProxyError } from "../../http/errors.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ServerLayer } from "./layer.js";

export class AdmissionLayer implements ServerLayer {
  readonly name = "admission";
  private concurrent = 0;

  constructor(private readonly maxConcurrent: number) {}

  arrive(): boolean {
    if (this.concurrent >= this.maxConcurrent) {
      throw new ProxyError(
        "LINTEL_OVERLOADED",
        `the server is at its limit of ${this.maxConcurrent} concurrent requests (maxConcurrentRequests)`,
      );
    }
    this.concurrent++;
    return false;
  }

  leave(): void {
    this.concurrent--;
  }
}

export const admissionLayer = definePlugin({
  category: "serverLayer",
  kind: "admission",
  schema: object({ maxConcurrentRequests: req(integer({ min: 1 })) }),
  create: (config) => new AdmissionLayer(config.maxConcurrentRequests),
});
