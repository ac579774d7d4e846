// The server stack: what one listener does with each request before it is identified,
// as a list of layers, and the settings the rest of the request path reads from its
// server (context clearing, forwarded headers, the server's timeout). Built once per
// server.

import type { ServerConfig } from "../../config/config-schema.js";
import type { PluginConfig } from "../../config/plugin-schema.js";
import { CidrSet } from "../../http/cidr.js";
import type { ForwardedPolicy } from "../../http/forwarded.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import { ServerStats } from "../../telemetry/index.js";
import type { ForwardPolicy } from "../forward.js";
import { acmeChallengeLayer } from "./acme-challenge.js";
import { admissionLayer } from "./admission.js";
import { callDepthLayer } from "./call-depth.js";
import { connectTargetLayer } from "./connect-target.js";
import { httpsRedirectLayer } from "./https-redirect.js";
import type { Answerer, ServerLayer, Verdict } from "./layer.js";
import { LayerStack, type StackedRequest } from "./layer-stack.js";
import { requestChecksLayer } from "./request-checks.js";

/** The server's layers, in the order a request meets them. */
function serverLayers(s: ServerConfig, ctx: ServerLayerContext): ServerLayer[] {
  const layers: ServerLayer[] = [];
  // First: a CA validating HTTP-01 is answered whatever follows (even on a server that
  // redirects everything to HTTPS), and no check may refuse it.
  if (ctx.acmeHttp) layers.push(acmeChallengeLayer.create({}, ctx));
  if (s.httpsRedirect) layers.push(httpsRedirectLayer.create(s.httpsRedirect, ctx));
  // Checks before admission: a malformed request or a loop never takes a slot.
  layers.push(requestChecksLayer.create({}, ctx));
  layers.push(callDepthLayer.create({ maxCallDepth: s.maxCallDepth }, ctx));
  // The server's own `layers` see only requests the checks let through, and come before
  // admission: a request one of them refuses or answers never takes a slot.
  for (const [i, l] of (s.layers ?? []).entries())
    layers.push(configuredLayer(l, `layers[${i}]`, ctx));
  if (s.connect) layers.push(connectTargetLayer.create(s.connect, ctx));
  // Last, so only what will be routed holds a slot (a tunnel holds it while open).
  if (s.maxConcurrentRequests !== undefined)
    layers.push(admissionLayer.create({ maxConcurrentRequests: s.maxConcurrentRequests }, ctx));
  return layers;
}

/** A configured layer (a server's or a service entry's `layers`); a failure names it. */
export function configuredLayer(
  l: PluginConfig<"serverLayer">,
  at: string,
  ctx: ServerLayerContext,
): ServerLayer {
  try {
    return l.plugin.create(l.config, ctx);
  } catch (e) {
    throw new Error(`router ${ctx.routerLabel}: ${at} (${l.kind}): ${(e as Error).message}`);
  }
}

export class ServerStack implements ForwardPolicy {
  readonly clearContext: boolean;
  readonly engineWritesDate: boolean;
  /** The server's timeoutMs: every request must be answered this long after it arrived. */
  readonly timeoutMs: number | undefined;
  /** Undefined when the server sets neither X-Forwarded-* nor Forwarded. */
  readonly forwarded: ForwardedPolicy | undefined;
  /** Whose X-Forwarded-* the server believes (trustedProxies). */
  readonly trustedProxies: CidrSet;
  private readonly stack: LayerStack;
  /** The server's metrics: set by the runtime once the server listens (its port known). */
  stats: ServerStats = ServerStats.detached();

  /** `o` is what the layers are given: the shared services, the router's label and limits. */
  constructor(s: ServerConfig, o: ServerLayerContext) {
    this.clearContext = s.clearContext;
    this.engineWritesDate = s.engine === "uws";
    this.timeoutMs = s.timeoutMs;
    this.trustedProxies = new CidrSet(s.trustedProxies);
    const xForwarded = s.xForwardedFor ?? s.clearContext;
    const f = s.addForwardedHeader;
    this.forwarded =
      xForwarded || f
        ? {
            xForwarded,
            forwarded: f
              ? { by: f.by ?? { kind: "requestRandom" }, for: f.for ?? { kind: "ip" } }
              : undefined,
            trustedProxies: this.trustedProxies,
            routerLabel: o.routerLabel,
          }
        : undefined;
    this.stack = new LayerStack(serverLayers(s, o), "passed");
  }

  get layers(): readonly ServerLayer[] {
    return this.stack.layers;
  }

  /** Runs the layers the request has not met yet (see LayerStack.arrive). */
  arrive(req: StackedRequest, answerer: Answerer): Verdict {
    return this.stack.arrive(req, answerer);
  }

  /** The request is finished: the layers it met give back what they took, last first. */
  leave(req: StackedRequest): void {
    this.stack.leave(req);
  }
}
