// The logical layer's settings per service name (Linkerd's `service` block): the response
// classifier, the retry budget and backoff, and totalTimeoutMs. io.l5d.global gives every
// service the same settings; io.l5d.static applies, in order, every entry whose prefix
// matches the service name (later entries win). Each service name has its own budget,
// as in Linkerd; the router keeps a service's policy with its binding. An entry's `layers`
// (rate limits, access rules, auth for a prefix) are made once per entry, so that every
// service name it matches shares them; like the other keys, the last matching entry that
// has `layers` gives them.

import type { Clock } from "../clock.js";
import type { RouterConfig } from "../config/config-schema.js";
import type { PluginConfig } from "../config/plugin-schema.js";
import { type Path, PathPattern } from "../naming/index.js";
import type { Backoff } from "../policy/backoff.js";
import type { ResponseClassifier } from "../policy/classifier.js";
import { RetryBudget, type RetryBudgetConfig } from "../policy/retry-budget.js";
import type { RouterMetrics, ServiceStats } from "../telemetry/index.js";
import type { PolicyKinds } from "./policy-kinds.js";
import type { ServerLayer } from "./server-stack/layer.js";
import { LayerStack, NO_LAYERS } from "./server-stack/layer-stack.js";

type ServiceBlock = RouterConfig["service"];
type StaticEntry = Extract<ServiceBlock, { kind: "io.l5d.static" }>["configs"][number];
type ServiceParams = Partial<Omit<StaticEntry, "prefix" | "layers">>;

/** Makes the layers of a `service` entry (`at` names it in errors). */
export type MakeLayers = (
  layers: readonly PluginConfig<"serverLayer">[],
  at: string,
) => ServerLayer[];

/** Linkerd's default retry budget: 20% of requests on top of 10 retries a second, over 10 s. */
export const DEFAULT_RETRY_BUDGET: RetryBudgetConfig = {
  ttlSecs: 10,
  minRetriesPerSec: 10,
  percentCanRetry: 0.2,
};

/** Request bodies up to this size are kept for retries unless retryBufferSize says. */
export const DEFAULT_RETRY_REQUEST_BYTES = 64 * 1024;
/** Linkerd's h2 defaults for classificationTimeoutMs and retryBufferSize.responseBytes. */
const DEFAULT_CLASSIFICATION_TIMEOUT_MS = 100;
const DEFAULT_RETRY_RESPONSE_BYTES = 16_383;

export interface ServicePolicy {
  /** The service name, as shown (`/svc/users`). */
  readonly service: string;
  readonly classifier: ResponseClassifier;
  readonly budget: RetryBudget;
  readonly backoff: Backoff;
  readonly totalTimeoutMs: number | undefined;
  /** A request body up to this size is kept so the request can be retried. */
  readonly retryRequestBytes: number;
  /**
   * Set when the service holds answers whose class comes with their end (a gRPC status
   * in trailers) to retry the retryable ones: for at most `timeoutMs`, `responseBytes`.
   */
  readonly holdForClass: { readonly timeoutMs: number; readonly responseBytes: number } | undefined;
  readonly stats: ServiceStats;
  /** The layers a request for this service meets once identified. */
  readonly layers: LayerStack;
}

interface Entry {
  readonly pattern: PathPattern;
  readonly params: ServiceParams;
  readonly layers: LayerStack | undefined;
}

export class ServicePolicies {
  private readonly entries: readonly Entry[];

  constructor(
    block: ServiceBlock,
    private readonly kinds: PolicyKinds,
    private readonly metrics: RouterMetrics,
    private readonly clock: Pick<Clock, "now">,
    makeLayers: MakeLayers = () => [],
  ) {
    const stack = (layers: readonly PluginConfig<"serverLayer">[] | undefined, at: string) =>
      layers === undefined ? undefined : new LayerStack(makeLayers(layers, at), "servicePassed");
    if (block.kind === "io.l5d.global") {
      const { kind: _kind, layers, ...params } = block;
      this.entries = [
        { pattern: new PathPattern("/"), params, layers: stack(layers, "service.layers") },
      ];
    } else {
      this.entries = block.configs.map(({ prefix, layers, ...params }, i) => ({
        pattern: new PathPattern(prefix),
        params,
        layers: stack(layers, `service.configs[${i}].layers`),
      }));
    }
  }

  /** A new policy for `service` (with a fresh retry budget). */
  for(service: Path): ServicePolicy {
    let p: ServiceParams = {};
    let layers = NO_LAYERS;
    for (const e of this.entries) {
      if (e.pattern.match(service) === undefined) continue;
      for (const [k, v] of Object.entries(e.params)) if (v !== undefined) p = { ...p, [k]: v };
      if (e.layers !== undefined) layers = e.layers;
    }
    const stats = this.metrics.service(service.show);
    const budget = new RetryBudget(p.retries?.budget ?? DEFAULT_RETRY_BUDGET, this.clock);
    stats.budget = budget;
    return {
      service: service.show,
      classifier: this.kinds.classifier(p.responseClassifier),
      budget,
      backoff: this.kinds.retryBackoff(p.retries?.backoff),
      totalTimeoutMs: p.totalTimeoutMs,
      retryRequestBytes: p.retryBufferSize?.requestBytes ?? DEFAULT_RETRY_REQUEST_BYTES,
      holdForClass:
        p.classificationTimeoutMs === undefined && p.retryBufferSize === undefined
          ? undefined
          : {
              timeoutMs: p.classificationTimeoutMs ?? DEFAULT_CLASSIFICATION_TIMEOUT_MS,
              responseBytes: p.retryBufferSize?.responseBytes ?? DEFAULT_RETRY_RESPONSE_BYTES,
            },
      stats,
      layers,
    };
  }
}
