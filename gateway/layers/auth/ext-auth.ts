// The `extAuth` layer (nginx auth_request, Envoy ext_authz, Traefik forwardAuth): each
// request is first sent, without its body, to an auth service with the original method,
// the chosen request fields and X-Forwarded-Method/-Proto/-Host/-Uri/-For (and
// X-Original-Method/-URI). A 2xx answer lets the request go on, with the chosen fields of
// that answer set on it; any other answer goes back to the client as it is (its status,
// chosen fields and body). No answer within `timeoutMs`, or none at all, is a failure:
// 503 (`failureMode: deny`) or let through (`allow`). With `cacheKey`, answers are kept
// for `cacheTtlMs` by the request's values of those fields, and requests with the same
// key asked at once share one sub-request.

import { createHash } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Clock } from "../../clock.js";
import {
  def,
  type Infer,
  integer,
  list,
  object,
  oneOf,
  opt,
  req,
  type Schema,
} from "../../config/schema.js";
import { l5dErrValue, ProxyError } from "../../http/errors.js";
import { getHeader } from "../../http/headers.js";
import type { Logger } from "../../log.js";
import { definePlugin, type ValidationProblem } from "../../plugins/registry.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import {
  type Answerer,
  type ArrivingRequest,
  clientAddress,
  LATER,
  type ServerLayer,
  type Verdict,
} from "../../routing/server-stack/layer.js";
import type { Counter } from "../../telemetry/registry.js";
import { AuthMetrics } from "./auth-metrics.js";
import { BoundedCache } from "./bounded-cache.js";
import { type BoundedResponse, boundedFetch, FetchError } from "./bounded-fetch.js";
import { HeaderEdit } from "./request-headers.js";
import { headerName, httpUrl, layerName } from "./schemas.js";

/** What a cache key is made of: request fields, or the request's method, target or host. */
const KEY_PARTS = [":method", ":path", ":authority"] as const;

function cacheKeyPart(): Schema<string> {
  const field = headerName();
  return {
    expected: `a header name or one of ${KEY_PARTS.join(", ")}`,
    decode(v, path, cx) {
      if (typeof v === "string" && v.startsWith(":")) {
        if ((KEY_PARTS as readonly string[]).includes(v)) return v;
        return cx.report(path, `expected a header name or one of ${KEY_PARTS.join(", ")}`);
      }
      return field.decode(v, path, cx);
    },
  };
}

export const extAuthBlock = object({
  /** Names the layer in metrics (`rt/<router>/auth/<name>`) and in its errors. */
  name: def(layerName(), "extAuth"),
  url: req(httpUrl()),
  timeoutMs: def(integer({ min: 1, max: 60_000 }), 2000),
  failureMode: def(oneOf(["deny", "allow"]), "deny"),
  /** Fields of the client's request sent to the auth service. */
  requestHeaders: def(list(headerName()), ["authorization", "cookie"]),
  /** Fields of an allowing answer set on the request sent upstream. */
  upstreamHeaders: def(list(headerName()), []),
  /** Fields of a denying answer sent back to the client. */
  clientHeaders: def(list(headerName()), [
    "www-authenticate",
    "location",
    "set-cookie",
    "content-type",
    "cache-control",
    "retry-after",
  ]),
  cacheKey: opt(list(cacheKeyPart(), { minItems: 1 })),
  cacheTtlMs: def(integer({ min: 0 }), 0),
  cacheSize: def(integer({ min: 0, max: 1_000_000 }), 1000),
  /** The largest denying body passed back; a larger one is a failure of the auth service. */
  maxBodyKB: def(integer({ min: 0, max: 1024 }), 64),
  /** Connections kept to the auth service, per layer and thread. */
  maxConnections: def(integer({ min: 1, max: 10_000 }), 64),
});
export type ExtAuthConfig = Infer<typeof extAuthBlock>;

/** What the auth service decided, as kept in the cache. */
type Decision =
  | { readonly allow: true; readonly add: readonly string[] }
  | {
      readonly allow: false;
      readonly status: number;
      readonly headers: readonly string[];
      readonly body: Buffer;
    };

/** How long an idle connection to the auth service is kept: under Node's 5 s server default. */
const IDLE_CONNECTION_MS = 4000;

/** Methods sent with `content-length: 0` (the others have no body by definition). */
const NO_BODY = new Set(["GET", "HEAD", "OPTIONS", "DELETE", "TRACE"]);

export class ExtAuthLayer implements ServerLayer {
  readonly name: string;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly cache: BoundedCache<Decision> | undefined;
  private readonly pending = new Map<string, Promise<Decision>>();
  private readonly edit: HeaderEdit;
  private readonly clientHeaders: ReadonlySet<string>;
  private readonly metrics: AuthMetrics;
  private readonly timeouts: Counter;
  private readonly failedOpen: Counter;
  private readonly log: Logger;
  private readonly deniedErr: string;

  constructor(
    private readonly c: ExtAuthConfig,
    private readonly clock: Clock,
    ctx: Pick<ServerLayerContext, "log" | "metrics" | "routerLabel">,
  ) {
    this.name = c.name;
    const agentOptions = {
      keepAlive: true,
      maxSockets: c.maxConnections,
      maxFreeSockets: Math.min(c.maxConnections, 16),
      timeout: IDLE_CONNECTION_MS,
    };
    this.agent =
      c.url.protocol === "https:" ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.cache =
      c.cacheKey !== undefined && c.cacheTtlMs > 0 ? new BoundedCache(c.cacheSize) : undefined;
    // What the auth service sets is dropped from what the client sent, whatever it answers.
    this.edit = new HeaderEdit(new Set(c.upstreamHeaders));
    this.clientHeaders = new Set(c.clientHeaders);
    this.metrics = new AuthMetrics(ctx.metrics, ctx.routerLabel, c.name);
    this.timeouts = this.metrics.counter("timeouts");
    this.failedOpen = this.metrics.counter("failed_open");
    this.log = ctx.log.child({ layer: c.name });
    this.deniedErr = l5dErrValue(`${c.name}: the auth service denied the request`);
  }

  arrive(req: ArrivingRequest, answerer: Answerer): Verdict {
    let key: string | undefined;
    const cache = this.cache;
    if (cache !== undefined) {
      key = this.cacheKey(req);
      const decided = cache.get(key, this.clock.now());
      if (decided !== undefined) {
        this.metrics.cacheHits.n++;
        return this.apply(req, answerer, decided);
      }
    }
    void this.ask(req, answerer, key);
    return LATER;
  }

  /** Asks the auth service (or waits for the same question under way), then acts on it. */
  private async ask(req: ArrivingRequest, answerer: Answerer, key: string | undefined) {
    let decision: Decision;
    try {
      if (key === undefined) decision = await this.decide(req);
      else {
        let asked = this.pending.get(key);
        if (asked === undefined) {
          asked = this.decide(req);
          this.pending.set(key, asked);
          const forget = () => this.pending.delete(key);
          asked.then(forget, forget);
          decision = await asked;
          this.cache!.set(key, decision, this.clock.now() + this.c.cacheTtlMs);
        } else decision = await asked;
      }
    } catch (e) {
      const err = this.failure(e);
      if (err !== undefined) {
        answerer.refuse(req, err);
        return;
      }
      // failureMode allow: on, with none of the fields only the auth service may set.
      decision = LET_THROUGH;
    }
    try {
      if (this.apply(req, answerer, decision)) return;
    } catch (e) {
      answerer.refuse(req, e as ProxyError);
      return;
    }
    answerer.proceed(req);
  }

  /**
   * Acts on a decision: an allowed request has its fields set (false: it goes on), a
   * denied one is answered with the auth service's answer (true).
   */
  private apply(req: ArrivingRequest, answerer: Answerer, d: Decision): boolean {
    if (d.allow) {
      this.edit.apply(req, d.add);
      this.metrics.allowed.n++;
      return false;
    }
    this.metrics.denied.n++;
    answerer.answer(req, d.status, d.headers, d.body);
    return true;
  }

  /** The sub-request and what its answer means. */
  private async decide(req: ArrivingRequest): Promise<Decision> {
    const res = await boundedFetch(
      {
        url: this.c.url,
        method: req.ex.method === "CONNECT" ? "GET" : req.ex.method,
        headers: this.authHeaders(req),
        timeoutMs: this.c.timeoutMs,
        maxBodyBytes: this.c.maxBodyKB * 1024,
        keepBody: isDenial,
        agent: this.agent,
      },
      this.clock,
    );
    if (res.status < 200) throw new Error(`the auth service answered ${res.status}`);
    return res.status < 300 ? allowed(res, this.c.upstreamHeaders) : this.denied(res);
  }

  /** The fields sent to the auth service. */
  private authHeaders(req: ArrivingRequest): string[] {
    const ex = req.ex;
    const headers = ex.headers;
    const out: string[] = [];
    for (const name of this.c.requestHeaders)
      for (let i = 0; i < headers.length; i += 2)
        if (headers[i] === name) out.push(name, headers[i + 1]!);
    const host = getHeader(headers, "host");
    out.push(
      "x-forwarded-method",
      ex.method,
      "x-forwarded-proto",
      ex.secure ? "https" : "http",
      "x-forwarded-uri",
      ex.url,
      "x-forwarded-for",
      clientAddress(req),
      "x-original-method",
      ex.method,
      "x-original-uri",
      ex.url,
    );
    if (host !== undefined) out.push("x-forwarded-host", host);
    if (req.service !== undefined) out.push("l5d-dst-service", req.service);
    if (!NO_BODY.has(ex.method)) out.push("content-length", "0");
    return out;
  }

  private denied(res: BoundedResponse): Decision {
    const headers: string[] = [];
    const h = res.headers;
    for (let i = 0; i < h.length; i += 2)
      if (this.clientHeaders.has(h[i]!)) headers.push(h[i]!, h[i + 1]!);
    headers.push("l5d-err", this.deniedErr, "via", "1.1 lintel");
    return { allow: false, status: res.status, headers, body: res.body };
  }

  /** A failed sub-request: the refusal (deny), or undefined to let the request through. */
  private failure(e: unknown): ProxyError | undefined {
    this.metrics.errors.n++;
    const timeout = e instanceof FetchError && e.reason === "timeout";
    if (timeout) this.timeouts.n++;
    const why = e instanceof Error ? e.message : String(e);
    this.log.debug("auth service failed", { url: this.c.url.href, error: why });
    if (this.c.failureMode === "allow") {
      this.failedOpen.n++;
      return undefined;
    }
    return new ProxyError(
      timeout ? "LINTEL_TIMEOUT" : "LINTEL_UNAVAILABLE",
      `${this.name}: the auth service at ${this.c.url.href} failed: ${why}`,
    );
  }

  /** The request's values of the cacheKey parts, hashed (no credential is kept as such). */
  private cacheKey(req: ArrivingRequest): string {
    const ex = req.ex;
    const hash = createHash("sha256");
    for (const part of this.c.cacheKey!) {
      const v =
        part === ":method"
          ? ex.method
          : part === ":path"
            ? ex.url
            : part === ":authority"
              ? getHeader(ex.headers, "host")
              : getHeader(ex.headers, part);
      // Absent and empty differ; a separator no field value holds keeps parts apart.
      hash.update(v === undefined ? "\u0001" : `=${v}`).update("\u0000");
    }
    return hash.digest("base64");
  }
}

/** Whether an answer's body matters: only a denial's goes back to the client. */
function isDenial(status: number): boolean {
  return status < 200 || status >= 300;
}

function allowed(res: BoundedResponse, names: readonly string[]): Decision {
  const add: string[] = [];
  const h = res.headers;
  for (const name of names)
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) add.push(name, h[i + 1]!);
  return { allow: true, add };
}

const LET_THROUGH: Decision = { allow: true, add: [] };

export const extAuthLayer = definePlugin({
  category: "serverLayer",
  kind: "extAuth",
  schema: extAuthBlock,
  validate(c) {
    const problems: ValidationProblem[] = [];
    if (c.cacheTtlMs > 0 && c.cacheKey === undefined)
      problems.push({
        field: "cacheTtlMs",
        message: "caching needs cacheKey: the fields (e.g. [authorization]) answers are kept by",
      });
    if (c.cacheKey !== undefined && c.cacheTtlMs === 0)
      problems.push({ field: "cacheKey", message: "set cacheTtlMs: how long answers are kept" });
    return problems;
  },
  create: (c, ctx) => new ExtAuthLayer(c, ctx.clock, ctx),
});
