// A router serves one `routers[]` entry: for each request it runs its server's stack,
// identifies the service name, runs the service's layers, binds it (router dtab +
// per-request dentries) from the binding cache, and hands it to the service's stack. A
// layer may decide later (proceed / refuse). A finished request is counted in its
// server's, service's and client's metrics.
//
//   server stack (server-stack/: ACME answers, redirect, checks, call depth, the server's
//                 layers, admission)
//     → identify → the service entry's layers → bind → choose a branch
//     → logical (ServiceCall: deadline, retries, classifier)
//     → concrete (Client: limits, balancer, failure accrual, requeues, egress checks)
//     → endpoint (Attempt: attempt timeout, outcome; the connection pool)
//   and the answer back up to the response writer (ForwardHandler).

import { type Readable, Transform } from "node:stream";
import type { Client } from "../client/client.js";
import type { ClientCache } from "../client/client-cache.js";
import type { UpstreamRequest } from "../client/http1/connection.js";
import { l5dErrValue, ProxyError } from "../http/errors.js";
import type { ServerExchange } from "../http/exchange.js";
import { clientBehind } from "../http/forwarded.js";
import { forwardedClientCert } from "../http/forwarded-client-cert.js";
import { getHeader, getHeaders, setHeader } from "../http/headers.js";
import type { RequestLimits } from "../http/request-checks.js";
import type { RequestView } from "../identifiers/identifier.js";
import type { Logger } from "../log.js";
import {
  type BoundName,
  Dtab,
  NameParseError,
  type NameTree,
  type Path,
  readDtab,
} from "../naming/index.js";
import type { TunnelRequest } from "../server/listener.js";
import type { RequestObserver } from "../telemeters/telemeter.js";
import { CLIENT_CLOSED, type RequestStats, type RouterMetrics } from "../telemetry/index.js";
import type { TraceFormat } from "../tracing/context.js";
import type { RequestTrace, Tracer } from "../tracing/tracer.js";
import type { AccessLog } from "./access-log.js";
import { BindingCache, type BindingEntry } from "./binding-cache.js";
import { keptBody, RecordedBody } from "./body-replay.js";
import { peerDeadline } from "./deadline.js";
import { type EgressPolicy, requestHost } from "./egress-policy.js";
import { ForwardHandler } from "./forward.js";
import { grpcDeadline, grpcErrorHeaders, isGrpc } from "./grpc.js";
import type { RouterNaming } from "./naming-setup.js";
import { readBody } from "./read-body.js";
import type { ResponseSettings } from "./response-settings.js";
import type { Answerer, ArrivingRequest } from "./server-stack/layer.js";
import type { StackedRequest } from "./server-stack/layer-stack.js";
import type { ServerStack } from "./server-stack/server-stack.js";
import { ServiceCall } from "./service-call.js";
import type { ServicePolicies, ServicePolicy } from "./service-policy.js";
import { TunnelExchange } from "./tunnel-exchange.js";
import type { TunnelBytes, TunnelOwner, Tunnels } from "./tunnels.js";
import { upstreamHeaders } from "./upstream-headers.js";

export interface RouterOptions {
  readonly naming: RouterNaming;
  readonly clients: ClientCache;
  readonly log: Logger;
  readonly accessLog?: AccessLog;
  readonly limits: RequestLimits;
  readonly bindingCacheSize: number;
  readonly bindingIdleTtlMs: number;
  /** Set on a router that leaves the cluster: the destinations it may reach. */
  readonly egress?: EgressPolicy;
  readonly metrics: RouterMetrics;
  /** The logical stack's settings per service name (the `service` block). */
  readonly services: ServicePolicies;
  /** maxResponseKB, maxChunkKB and compressionLevel, made once for the router. */
  readonly response?: ResponseSettings;
  /** The telemeters that observe finished requests; absent when none does. */
  readonly observer?: RequestObserver;
  /**
   * The trace formats a request that brought no context is sent upstream with (Linkerd's
   * `tracePropagator`); the tracing telemeters' `propagation` when absent.
   */
  readonly tracePropagation?: readonly TraceFormat[];
  readonly rng?: () => number;
}

const TEXT_PLAIN = "text/plain; charset=utf-8";
const EMPTY = Buffer.alloc(0);

/** The request as identifiers see it; l5d-* headers are hidden on clearContext servers. */
class View implements RequestView {
  constructor(
    private readonly ex: ServerExchange,
    private readonly clearContext: boolean,
  ) {}
  get method() {
    return this.ex.method;
  }
  get url() {
    return this.ex.url;
  }
  get httpVersion() {
    return this.ex.httpVersion;
  }
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    if (lower.charCodeAt(0) === 58) return this.pseudo(lower);
    if (this.clearContext && lower.startsWith("l5d-")) return undefined;
    return getHeader(this.ex.headers, lower);
  }

  /** HTTP/2's pseudo-headers, which Linkerd's h2 identifiers name, for any request. */
  private pseudo(name: string): string | undefined {
    switch (name) {
      case ":authority":
        return getHeader(this.ex.headers, "host");
      case ":path":
        return this.ex.url;
      case ":method":
        return this.ex.method;
      case ":scheme":
        return this.ex.secure ? "https" : "http";
      default:
        return undefined;
    }
  }
}

/** Picks one bound name from a bound tree: a union's branch by weight. */
function choose(
  tree: NameTree<BoundName>,
  service: Path,
  rng: () => number,
): BoundName | ProxyError {
  switch (tree.kind) {
    case "leaf":
      return tree.value;
    case "union": {
      let total = 0;
      for (const w of tree.trees) total += w.weight;
      let r = rng() * total;
      for (const w of tree.trees) {
        r -= w.weight;
        if (r < 0) return choose(w.tree, service, rng);
      }
      return choose(tree.trees[tree.trees.length - 1]!.tree, service, rng);
    }
    case "alt":
      return tree.trees.length > 0 ? choose(tree.trees[0]!, service, rng) : noRoute(service);
    case "neg":
      return noRoute(service);
    case "fail":
      return new ProxyError("LINTEL_BIND_FAILED", `the dtab fails ${service.show} (!)`);
    case "empty":
      return new ProxyError("LINTEL_NO_ADDRESSES", `${service.show} is bound to no endpoints ($)`);
  }
}

function noRoute(service: Path): ProxyError {
  return new ProxyError(
    "LINTEL_NO_ROUTE",
    `no route for ${service.show}: no dentry or namer binds it`,
  );
}

export class Router implements Answerer, TunnelOwner<RequestState> {
  private readonly bindings: BindingCache;
  private readonly rng: () => number;
  /** Set when a tracing telemeter is configured; otherwise tracing costs one branch. */
  private readonly tracer: Tracer | undefined;
  /** Whether trace context may go upstream in l5d-ctx-trace (not from egress to the outside). */
  private readonly l5dContext: boolean;
  draining = false;
  inflight = 0;
  /** Requests handled since start. */
  handled = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly label: string,
    private readonly opts: RouterOptions,
  ) {
    this.bindings = new BindingCache(
      opts.naming.interpreter,
      opts.bindingCacheSize,
      opts.bindingIdleTtlMs,
      opts.metrics.bindcache,
    );
    this.rng = opts.rng ?? Math.random;
    this.tracer = opts.observer?.tracer;
    this.l5dContext = opts.egress === undefined || opts.egress.forwardL5dHeaders;
  }

  /** Serves one request that arrived on a server with the stack `server`. */
  handle(ex: ServerExchange, server: ServerStack): void {
    this.serve(ex, server, undefined);
  }

  /**
   * Serves a CONNECT or Upgrade request: the same server stack, identification and
   * binding as any request, then a tunnel to an endpoint of the bound client.
   */
  tunnel(req: TunnelRequest, server: ServerStack, tunnels: Tunnels): void {
    this.serve(new TunnelExchange(req), server, tunnels);
  }

  private serve(ex: ServerExchange, server: ServerStack, tunnels: Tunnels | undefined) {
    // A connection whose earlier request was malformed carries nothing more we can trust.
    if (ex.condemned) {
      ex.destroy();
      return;
    }
    this.handled++;
    this.inflight++;
    server.stats.load.n++;
    const start = performance.now();
    if (this.draining) ex.closeAfterResponse();
    const st: RequestState = {
      ex,
      server,
      start,
      arrived: server.timeoutMs === undefined ? 0 : Date.now(),
      passed: 0,
      servicePassed: 0,
      tunnels,
      target: undefined,
      service: undefined,
      responseHeaders: undefined,
      dropResponseFields: undefined,
      compression: undefined,
      claims: undefined,
      client: undefined,
      serviceStats: undefined,
      clientStats: undefined,
      // Only the access log needs it (and reading it costs a call into the engine).
      remote: this.opts.accessLog ? ex.clientAddress : "",
      status: 0,
      bytes: 0,
      error: "",
      // A clearContext server's client is not trusted with a trace context: a new trace.
      trace:
        this.tracer === undefined
          ? undefined
          : this.tracer.serverTrace(
              ex.headers,
              !server.clearContext,
              this.l5dContext,
              this.label,
              this.opts.tracePropagation,
            ),
    };
    try {
      if (server.arrive(st, this) === false) this.identify(st);
    } catch (e) {
      this.failWith(st, e);
    }
  }

  /** A layer answers the request itself (a redirect, an ACME answer, an auth denial). */
  answer(req: ArrivingRequest, status: number, headers: readonly string[], body: Buffer): void {
    const st = req as RequestState;
    if (!st.ex.aborted) {
      const added = st.responseHeaders;
      st.ex.respond(status, added === undefined ? headers : [...headers, ...added], body);
      st.status = status;
      st.bytes = body.length;
    }
    this.finish(st);
  }

  /** A layer that decided later lets the request go on: the next layer, or the next step. */
  proceed(req: ArrivingRequest): void {
    const st = req as RequestState;
    if (st.ex.aborted) {
      this.finish(st);
      return;
    }
    this.step(st, () => {
      const t = st.target;
      if (t === undefined) {
        if (st.server.arrive(st, this) === false) this.identify(st);
      } else if (t.service.layers.arrive(st, this) === false) this.bind(st, t);
    });
  }

  /** A layer that decided later refuses the request. */
  refuse(req: ArrivingRequest, err: ProxyError): void {
    const st = req as RequestState;
    if (st.ex.aborted) this.finish(st);
    else this.fail(st, err);
  }

  /** Runs one step of a request; an error it throws becomes the request's error response. */
  private step(st: RequestState, run: () => void): void {
    try {
      run();
    } catch (e) {
      this.failWith(st, e);
    }
  }

  private failWith(st: RequestState, e: unknown): void {
    this.fail(
      st,
      e instanceof ProxyError ? e : new ProxyError("LINTEL_UPSTREAM", (e as Error).message),
    );
  }

  /** Runs `run` once `wait` is over (a cold binding or client), unless the client left. */
  private after(wait: Promise<void>, st: RequestState, run: () => void): void {
    void wait.then(() => {
      if (st.ex.aborted) this.finish(st);
      else this.step(st, run);
    });
  }

  /** identify → the service's layers → bind (router dtab + per-request dentries). */
  private identify(st: RequestState): void {
    const { ex, server } = st;
    const headers = ex.headers;
    // Before anything is bound (and so before any DNS query).
    this.opts.egress?.checkHost(requestHost(getHeader(headers, "host")));
    const id = this.opts.naming.identifier.identify(new View(ex, server.clearContext));
    if (!id.ok)
      throw new ProxyError("LINTEL_UNIDENTIFIED", `cannot identify the request: ${id.reason}`);
    st.service = id.dst.show;
    const local = server.clearContext ? Dtab.empty : requestDtab(headers);
    const entry = this.bindings.get(local, local.size === 0 ? "" : local.show, id.dst);
    entry.service ??= this.opts.services.for(id.dst);
    const service = entry.service;
    st.serviceStats = service.stats;
    const target: Target = { dst: id.dst, url: id.url ?? ex.url, local, service, entry };
    st.target = target;
    if (service.layers.arrive(st, this) === false) this.bind(st, target);
  }

  /** Waits for the service name's bound tree (once, when cold), then chooses from it. */
  private bind(st: RequestState, target: Target): void {
    const entry = target.entry;
    if (entry.state.status === "pending") {
      const wait = this.bindings.settled(entry, this.opts.naming.bindingTimeoutMs);
      this.after(wait, st, () => this.choose(st, target));
    } else this.choose(st, target);
  }

  /** A bound id from the tree (a union's branch by weight), and its client. */
  private choose(st: RequestState, t: Target): void {
    const state = t.entry.state;
    if (state.status === "pending") {
      throw new ProxyError(
        "LINTEL_BIND_TIMEOUT",
        `binding ${t.dst.show} timed out after ${this.opts.naming.bindingTimeoutMs} ms`,
      );
    }
    if (state.status === "failed") {
      throw new ProxyError(
        "LINTEL_BIND_FAILED",
        `cannot bind ${t.dst.show}: ${state.error.message}`,
      );
    }
    const bound = choose(state.value, t.dst, this.rng);
    if (bound instanceof ProxyError) throw bound;
    const client = this.opts.clients.get(bound);
    st.client = bound.id.show;
    st.clientStats = client.stats;
    if (client.state.kind === "pending") {
      const wait = client.whenResolved(this.opts.naming.bindingTimeoutMs);
      this.after(wait, st, () => this.send(st, t, bound, client));
    } else this.send(st, t, bound, client);
  }

  /** Hands the request to the service's stack (retries, deadline) over the client. */
  private send(st: RequestState, t: Target, bound: BoundName, client: Client): void {
    const { ex } = st;
    const a = client.state;
    switch (a.kind) {
      case "pending":
        throw new ProxyError(
          "LINTEL_BIND_TIMEOUT",
          `resolving ${bound.id.show} for ${t.dst.show} timed out after ${this.opts.naming.bindingTimeoutMs} ms`,
        );
      case "neg":
        throw new ProxyError(
          "LINTEL_NO_ROUTE",
          `no route for ${t.dst.show}: ${bound.id.show} does not exist`,
        );
      case "failed":
        throw new ProxyError(
          "LINTEL_BIND_FAILED",
          `cannot resolve ${bound.id.show} for ${t.dst.show}: ${a.error.message}`,
        );
    }
    st.trace?.target(st.service, st.client);
    if (st.tunnels) {
      const tx = ex as TunnelExchange;
      if (tx.method === "CONNECT") st.tunnels.connect(tx, client, t.dst.show, this, st, st.trace);
      else {
        // An Upgrade is forwarded like a request (context, forwarded headers), then tunnelled.
        const up = upstreamHeaders(
          ex,
          st.server,
          t.dst,
          bound,
          t.local,
          this.opts.egress,
          undefined,
        );
        if (up.client !== undefined) st.remote = up.client;
        const head = {
          path: t.url,
          headers: up.headers,
          clearContext: st.server.clearContext,
          trace: st.trace,
        };
        st.tunnels.upgrade(tx, client, t.dst.show, head, this, st);
      }
      return;
    }
    const deadline = this.deadlineOf(st, t.service);
    const head = upstreamHeaders(ex, st.server, t.dst, bound, t.local, this.opts.egress, deadline);
    if (head.client !== undefined) st.remote = head.client;
    if (client.forwardsClientCert) {
      const cert = ex.peerCertificate();
      if (cert !== undefined)
        setHeader(head.headers, "x-forwarded-client-cert", forwardedClientCert(cert));
    }
    const response = this.opts.response;
    const writer = new ForwardHandler(
      ex,
      st.server,
      this.respondError,
      this.onForwarded,
      st,
      st.compression ?? response?.compression,
      st.responseHeaders,
      st.dropResponseFields,
    );
    const length = ex.contentLength;
    const keep =
      ex.hasBody &&
      length !== undefined &&
      length <= t.service.retryRequestBytes &&
      mayRetry(t.service, ex.method);
    const req: UpstreamRequest = {
      method: ex.method,
      path: t.url,
      headers: head.headers,
      // Streamed through unless kept for retries below.
      body: ex.hasBody && !keep ? this.requestBody(ex) : null,
      contentLength: ex.hasBody ? length : undefined,
      responseLimits: response?.limits,
    };
    if (!keep) {
      // An HTTP/2 body of unknown length (a gRPC call's) streams through, and a copy is kept
      // under the retry limit so a retryable answer can still be retried.
      const recorded =
        req.body !== null &&
        length === undefined &&
        ex.httpVersion === "2.0" &&
        mayRetry(t.service, ex.method)
          ? new RecordedBody(req.body, t.service.retryRequestBytes)
          : undefined;
      const sent = recorded ? { ...req, body: recorded.first() } : req;
      new ServiceCall(client, t.service, sent, recorded, writer, deadline, st.trace).start();
      return;
    }
    // Kept so a retry can send it again (read before the first attempt, as Linkerd does).
    readBody(ex.body(), length!).then(
      (body) => {
        if (ex.aborted) return this.finish(st);
        new ServiceCall(client, t.service, req, keptBody(body), writer, deadline, st.trace).start();
      },
      (e: Error) => writer.onError(e),
    );
  }

  /**
   * When the request must be answered: the earliest of the server's timeoutMs, the
   * service's totalTimeoutMs, and a trusted peer's l5d-ctx-deadline.
   */
  private deadlineOf(st: RequestState, service: ServicePolicy): number | undefined {
    const serverMs = st.server.timeoutMs;
    const totalMs = service.totalTimeoutMs;
    let deadline = serverMs === undefined ? undefined : st.arrived + serverMs;
    if (totalMs !== undefined) {
      const d = Date.now() + totalMs;
      if (deadline === undefined || d < deadline) deadline = d;
    }
    // A gRPC client's own timeout bounds the call at every hop (it is the client's to set).
    const grpcTimeout =
      st.ex.httpVersion === "2.0" ? getHeader(st.ex.headers, "grpc-timeout") : undefined;
    if (grpcTimeout !== undefined) {
      const d = grpcDeadline(grpcTimeout, Date.now());
      if (d !== undefined && (deadline === undefined || d < deadline)) deadline = d;
    }
    if (!st.server.clearContext) {
      const peer = peerDeadline(st.ex.headers);
      if (peer !== undefined && (deadline === undefined || peer < deadline)) deadline = peer;
    }
    return deadline;
  }

  /** The body to send upstream, counted against maxRequestKB when its length is not declared. */
  private requestBody(ex: ServerExchange): Readable {
    const max = this.opts.limits.maxBodyBytes;
    const body = ex.body();
    if (max === undefined || ex.contentLength !== undefined) return body;
    return body.pipe(new BodyLimit(max));
  }

  private readonly onForwarded = (h: ForwardHandler<RequestState>) => {
    const st = h.ctx;
    st.status = h.outcome.status;
    st.bytes = h.outcome.bytes;
    st.error = h.outcome.error;
    this.finish(st);
  };

  tunnelFailed(st: RequestState, err: ProxyError): void {
    this.fail(st, err);
  }

  tunnelOpened(st: RequestState): TunnelBytes {
    const tunnels = st.server.stats.tunnels;
    tunnels.open.n++;
    tunnels.opened.n++;
    return tunnels.bytes;
  }

  tunnelClosed(st: RequestState, status: number, bytes: number, opened = false): void {
    if (opened) st.server.stats.tunnels.open.n--;
    st.status = status;
    st.bytes = bytes;
    this.finish(st);
  }

  private readonly respondError = (
    ex: ServerExchange,
    err: ProxyError,
    added: readonly string[] | undefined,
    st: RequestState,
  ) => {
    respondWithError(ex, err, this.opts.log, st.server, added);
  };

  private fail(st: RequestState, err: ProxyError): void {
    st.status = err.status;
    st.error = err.code;
    respondWithError(st.ex, err, this.opts.log, st.server, st.responseHeaders);
    this.finish(st);
  }

  private finish(st: RequestState): void {
    const ms = performance.now() - st.start;
    const log = this.opts.accessLog;
    if (log) {
      const e = st.ex;
      log.write({
        remote: st.remote,
        method: e.method,
        url: e.url,
        httpVersion: e.httpVersion,
        status: st.status || 499,
        bytes: st.bytes,
        referer: getHeader(e.headers, "referer"),
        userAgent: getHeader(e.headers, "user-agent"),
        service: st.service,
        client: st.client,
        durationMs: ms,
      });
    }
    // No response went out when the client left first: no status to count then.
    const reason = st.status === 0 && st.error === "" ? CLIENT_CLOSED : st.error;
    const status = reason === CLIENT_CLOSED ? 0 : st.status;
    const server = st.server.stats;
    server.load.n--;
    server.record(status, ms, reason);
    st.serviceStats?.record(status, ms, reason);
    st.clientStats?.record(status, ms, reason);
    // One branch when no telemeter observes; a summary only for a request sampled.
    const observer = this.opts.observer;
    if (observer?.sample()) {
      const e = st.ex;
      observer.observe({
        time: Date.now() - ms,
        router: this.label,
        server: server.address,
        method: e.method,
        url: e.url,
        host: getHeader(e.headers, "host"),
        service: st.service,
        client: st.client,
        status,
        durationMs: ms,
        error: reason,
      });
    }
    if (st.trace?.sampled) {
      const e = st.ex;
      st.trace.end({
        method: e.method,
        url: e.url,
        status,
        error: reason,
        service: st.service,
        client: st.client,
        localAddress: server.address,
        remoteAddress: `${e.clientAddress}:${e.clientPort}`,
      });
    }
    if (st.servicePassed > 0) st.target!.service.layers.leave(st);
    if (st.passed > 0) st.server.leave(st);
    if (--this.inflight === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  close(): void {
    this.bindings.close();
  }
}

/** Whether any answer to `method` may be retried under the service's classifier. */
function mayRetry(service: ServicePolicy, method: string): boolean {
  const c = service.classifier;
  return c.classify(method, 500) === "retryable" || c.classify(method, 0) === "retryable";
}

/** Where a request goes: its service name, bound tree and the service's stack. */
interface Target {
  readonly dst: Path;
  /** The request target to send (an identifier may have consumed path segments). */
  readonly url: string;
  readonly local: Dtab;
  readonly service: ServicePolicy;
  readonly entry: BindingEntry;
}

interface RequestState extends StackedRequest {
  readonly ex: ServerExchange;
  readonly server: ServerStack;
  readonly start: number;
  /** Date.now() on arrival, when the server has a timeoutMs. */
  readonly arrived: number;
  /** Where it goes, once identified. */
  target: Target | undefined;
  /** Set for a CONNECT or Upgrade request: it becomes a tunnel instead of a forwarded request. */
  readonly tunnels: Tunnels | undefined;
  service: string | undefined;
  client: string | undefined;
  serviceStats: RequestStats | undefined;
  clientStats: RequestStats | undefined;
  /** The client's address for the access log (after trusted proxies). */
  remote: string;
  status: number;
  bytes: number;
  /** Why it failed (a ProxyError code, client_closed, …); "" when it did not. */
  error: string;
  /** Its trace, when a tracing telemeter is configured. */
  readonly trace: RequestTrace | undefined;
}

/** The per-request dentries: l5d-ctx-dtab (from upstream proxies), then l5d-dtab. */
function requestDtab(headers: readonly string[]): Dtab {
  const texts = [...getHeaders(headers, "l5d-ctx-dtab"), ...getHeaders(headers, "l5d-dtab")];
  if (texts.length === 0) return Dtab.empty;
  let d = Dtab.empty;
  for (const t of texts) {
    try {
      d = d.concat(readDtab(t));
    } catch (e) {
      const why =
        e instanceof NameParseError ? `${e.reason} at column ${e.position.column}` : String(e);
      throw new ProxyError("LINTEL_BAD_DTAB", `invalid l5d-dtab header (${why}): ${t}`);
    }
  }
  return d;
}

/** Passes a chunked body through, failing it once it exceeds maxRequestKB. */
class BodyLimit extends Transform {
  private seen = 0;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (err?: Error | null, data?: Buffer) => void,
  ): void {
    this.seen += chunk.length;
    if (this.seen > this.max) {
      done(
        new ProxyError(
          "LINTEL_BODY_TOO_LARGE",
          `the request body is over the limit of ${this.max} bytes (maxRequestKB)`,
        ),
      );
      return;
    }
    done(null, chunk);
  }
}

export function respondWithError(
  ex: ServerExchange,
  err: ProxyError,
  log: Logger,
  server: Pick<ServerStack, "trustedProxies" | "stats">,
  added?: readonly string[],
): void {
  if (ex.aborted) return;
  if (err.closesConnection) ex.closeAfterResponse(true);
  log.debug("request failed", {
    code: err.code,
    status: err.status,
    error: err.message,
    // Who asked, as a PROXY header or trusted X-Forwarded-For gave it (the peer otherwise).
    client: clientBehind(ex.clientAddress, ex.headers, server.trustedProxies),
    server: server.stats.address,
  });
  // A gRPC client reads its call's fate from grpc-status, not from the HTTP status.
  const grpc = ex.httpVersion === "2.0" && isGrpc(getHeader(ex.headers, "content-type"));
  const headers = grpc
    ? [...grpcErrorHeaders(err), "l5d-err", l5dErrValue(err.message)]
    : ["content-type", TEXT_PLAIN, "l5d-err", l5dErrValue(err.message), "via", "1.1 lintel"];
  if (err.headers !== undefined) headers.push(...err.headers);
  if (added !== undefined) headers.push(...added);
  if (grpc) ex.respond(200, headers, EMPTY);
  else ex.respond(err.status, headers, Buffer.from(`${err.message}\n`));
}
