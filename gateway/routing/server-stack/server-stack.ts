// The server stack: what one listener does with each request before it is identified,
// as a list of layers, and the settings the rest of the request path reads from its
// server (context clearing, forwarded headers, the server's timeout). Built once per
// server.

import type { ServerConfig } from "../../config/config-schema.js";
import { CidrSet } from "../../http/cidr.js";
import type { ForwardedPolicy } from "../../http/forwarded.js";
import type { RequestLimits } from "../../http/request-checks.js";
import { ServerStats } from "../../telemetry/index.js";
import type { ForwardPolicy } from "../forward.js";
import { AcmeChallengeLayer } from "./acme-challenge.js";
import { AdmissionLayer } from "./admission.js";
import { CallDepthLayer } from "./call-depth.js";
import { ConnectTargetLayer } from "./connect-target.js";
import { HttpsRedirectLayer } from "./https-redirect.js";
import type { Answerer, ArrivingRequest, ServerLayer } from "./layer.js";
import { RequestChecksLayer } from "./request-checks.js";

export interface ServerStackOptions {
  readonly routerLabel: string;
  /** The router's limits on request heads and bodies. */
  readonly limits: RequestLimits;
  /** The ACME HTTP-01 answer for a token (plain-HTTP servers, when the config uses ACME). */
  readonly acmeHttp?: (token: string) => Promise<string | undefined>;
}

/** The router's per-request state as the stack keeps it: how many layers it passed. */
export interface StackedRequest extends ArrivingRequest {
  passed: number;
}

/** The server's layers, in the order a request meets them. */
function serverLayers(s: ServerConfig, o: ServerStackOptions): ServerLayer[] {
  const layers: ServerLayer[] = [];
  // First: a CA validating HTTP-01 is answered whatever follows (even on a server that
  // redirects everything to HTTPS), and no check may refuse it.
  if (o.acmeHttp) layers.push(new AcmeChallengeLayer(o.acmeHttp));
  if (s.httpsRedirect)
    layers.push(new HttpsRedirectLayer(s.httpsRedirect.port, Number(s.httpsRedirect.status)));
  // Checks before admission: a malformed request or a loop never takes a slot.
  layers.push(new RequestChecksLayer(o.limits));
  layers.push(new CallDepthLayer(s.maxCallDepth));
  if (s.connect) layers.push(new ConnectTargetLayer(new Set(s.connect.ports)));
  // Last, so only what will be routed holds a slot (a tunnel holds it while open).
  if (s.maxConcurrentRequests !== undefined)
    layers.push(new AdmissionLayer(s.maxConcurrentRequests));
  return layers;
}

export class ServerStack implements ForwardPolicy {
  readonly clearContext: boolean;
  readonly engineWritesDate: boolean;
  /** The server's timeoutMs: every request must be answered this long after it arrived. */
  readonly timeoutMs: number | undefined;
  /** Undefined when the server sets neither X-Forwarded-* nor Forwarded. */
  readonly forwarded: ForwardedPolicy | undefined;
  readonly layers: readonly ServerLayer[];
  /** The server's metrics: set by the runtime once the server listens (its port known). */
  stats: ServerStats = ServerStats.detached();

  constructor(s: ServerConfig, o: ServerStackOptions) {
    this.clearContext = s.clearContext;
    this.engineWritesDate = s.engine === "uws";
    this.timeoutMs = s.timeoutMs;
    const xForwarded = s.xForwardedFor ?? s.clearContext;
    const f = s.addForwardedHeader;
    this.forwarded =
      xForwarded || f
        ? {
            xForwarded,
            forwarded: f
              ? { by: f.by ?? { kind: "requestRandom" }, for: f.for ?? { kind: "ip" } }
              : undefined,
            trustedProxies: new CidrSet(s.trustedProxies),
            routerLabel: o.routerLabel,
          }
        : undefined;
    this.layers = serverLayers(s, o);
  }

  /**
   * Runs the request through the layers: true when one of them answers it. A ProxyError
   * a layer throws refuses the request; `leave` then runs for the layers it passed.
   */
  arrive(req: StackedRequest, answerer: Answerer): boolean {
    const layers = this.layers;
    for (let i = 0; i < layers.length; i++) {
      const answered = layers[i]!.arrive(req, answerer);
      req.passed = i + 1;
      if (answered) return true;
    }
    return false;
  }

  /** The request is finished: the layers it passed give back what they took, last first. */
  leave(req: StackedRequest): void {
    const layers = this.layers;
    for (let i = req.passed - 1; i >= 0; i--) layers[i]!.leave?.(req);
  }
}
