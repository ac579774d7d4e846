// A router serves one `routers[]` entry: for each request it applies the server's policy,
// identifies the service name, binds it (router dtab + per-request dentries) from the
// binding cache, picks a bound destination and an endpoint, and forwards. A finished
// request is counted in its server's, service's and client's metrics.
//
//   call depth → identify → per-request dtab → bind → choose a branch → client → endpoint → forward

import { type Readable, Transform } from "node:stream";
import type { Client } from "../client/client.js";
import type { ClientCache } from "../client/client-cache.js";
import { l5dErrValue, ProxyError } from "../http/errors.js";
import type { ServerExchange } from "../http/exchange.js";
import { getHeader, getHeaders, viaCount } from "../http/headers.js";
import { checkRequest, type RequestLimits } from "../http/request-checks.js";
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
import { CLIENT_CLOSED, type RequestStats, type RouterMetrics } from "../telemetry/index.js";
import type { AccessLog } from "./access-log.js";
import { BindingCache } from "./binding-cache.js";
import { type EgressPolicy, requestHost } from "./egress-policy.js";
import { ForwardHandler } from "./forward.js";
import type { RouterNaming } from "./naming-setup.js";
import type { ServerPolicy } from "./server-policy.js";
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
  readonly rng?: () => number;
}

/** A client's metrics, kept on the client object from the first request that uses it. */
const CLIENT_STATS = Symbol("lintel.clientStats");
type ClientWithStats = Client & { [CLIENT_STATS]?: RequestStats };

const TEXT_PLAIN = "text/plain; charset=utf-8";

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
    if (this.clearContext && lower.startsWith("l5d-")) return undefined;
    return getHeader(this.ex.headers, lower);
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

export class Router {
  private readonly bindings: BindingCache;
  private readonly rng: () => number;
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
  }

  /** Serves one request that arrived on a server with `policy`. */
  handle(ex: ServerExchange, policy: ServerPolicy): void {
    // A connection whose earlier request was malformed carries nothing more we can trust.
    if (ex.condemned) {
      ex.destroy();
      return;
    }
    if (policy.answeredChallenge(ex) || policy.redirected(ex)) return;
    this.handled++;
    this.inflight++;
    policy.stats.load.n++;
    const start = performance.now();
    if (this.draining) ex.closeAfterResponse();
    const state: RequestState = {
      policy,
      start,
      service: undefined,
      client: undefined,
      serviceStats: undefined,
      clientStats: undefined,
      // Only the access log needs it (and reading it costs a call into the engine).
      remote: this.opts.accessLog ? ex.clientAddress : "",
      admitted: false,
      status: 0,
      bytes: 0,
      error: "",
    };
    try {
      checkRequest(ex, this.opts.limits);
      policy.admit();
      state.admitted = true;
      this.route(ex, state);
    } catch (e) {
      this.fail(
        ex,
        state,
        e instanceof ProxyError ? e : new ProxyError("LINTEL_UPSTREAM", (e as Error).message),
      );
    }
  }

  private route(ex: ServerExchange, st: RequestState): void {
    const { policy } = st;
    const headers = ex.headers;
    if (viaCount(headers) >= policy.maxCallDepth) {
      throw new ProxyError(
        "LINTEL_CALL_DEPTH",
        `maximum call depth (${policy.maxCallDepth}) exceeded: the request passed ${viaCount(headers)} proxies; check for a routing loop`,
      );
    }
    // Before anything is bound (and so before any DNS query).
    this.opts.egress?.checkHost(requestHost(getHeader(headers, "host")));
    const id = this.opts.naming.identifier.identify(new View(ex, policy.clearContext));
    if (!id.ok)
      throw new ProxyError("LINTEL_UNIDENTIFIED", `cannot identify the request: ${id.reason}`);
    st.service = id.dst.show;
    const local = policy.clearContext ? Dtab.empty : requestDtab(headers);
    const entry = this.bindings.get(local, local.size === 0 ? "" : local.show, id.dst);
    st.serviceStats = entry.stats ??= this.opts.metrics.service(st.service);
    if (entry.state.status === "pending") {
      void this.bindings.settled(entry, this.opts.naming.bindingTimeoutMs).then(() => {
        if (ex.aborted) return this.finish(ex, st);
        try {
          this.continueWith(ex, st, entry.state, id.dst, id.url ?? ex.url, local);
        } catch (e) {
          this.fail(ex, st, e as ProxyError);
        }
      });
      return;
    }
    this.continueWith(ex, st, entry.state, id.dst, id.url ?? ex.url, local);
  }

  private continueWith(
    ex: ServerExchange,
    st: RequestState,
    state: BindingState,
    service: Path,
    url: string,
    local: Dtab,
  ): void {
    if (state.status === "pending") {
      throw new ProxyError(
        "LINTEL_BIND_TIMEOUT",
        `binding ${service.show} timed out after ${this.opts.naming.bindingTimeoutMs} ms`,
      );
    }
    if (state.status === "failed") {
      throw new ProxyError(
        "LINTEL_BIND_FAILED",
        `cannot bind ${service.show}: ${state.error.message}`,
      );
    }
    const chosen = choose(state.value, service, this.rng);
    if (chosen instanceof ProxyError) throw chosen;
    const client: ClientWithStats = this.opts.clients.get(chosen);
    st.client = chosen.id.show;
    st.clientStats = client[CLIENT_STATS] ??= this.opts.metrics.client(st.client);
    if (client.state.kind === "pending") {
      void Promise.race([
        client.whenResolved(),
        new Promise((r) => setTimeout(r, this.opts.naming.bindingTimeoutMs)),
      ]).then(() => {
        if (ex.aborted) return this.finish(ex, st);
        try {
          this.send(ex, st, chosen, client, service, url, local);
        } catch (e) {
          this.fail(ex, st, e as ProxyError);
        }
      });
      return;
    }
    this.send(ex, st, chosen, client, service, url, local);
  }

  private send(
    ex: ServerExchange,
    st: RequestState,
    bound: BoundName,
    client: ReturnType<ClientCache["get"]>,
    service: Path,
    url: string,
    local: Dtab,
  ): void {
    const a = client.state;
    switch (a.kind) {
      case "pending":
        throw new ProxyError(
          "LINTEL_BIND_TIMEOUT",
          `resolving ${bound.id.show} for ${service.show} timed out after ${this.opts.naming.bindingTimeoutMs} ms`,
        );
      case "neg":
        throw new ProxyError(
          "LINTEL_NO_ROUTE",
          `no route for ${service.show}: ${bound.id.show} does not exist`,
        );
      case "failed":
        throw new ProxyError(
          "LINTEL_BIND_FAILED",
          `cannot resolve ${bound.id.show} for ${service.show}: ${a.error.message}`,
        );
    }
    const endpoint = client.pick();
    if (!endpoint) {
      throw new ProxyError(
        "LINTEL_NO_ADDRESSES",
        `${bound.id.show} has no addresses for ${service.show}`,
      );
    }
    const egress = this.opts.egress;
    if (egress) {
      // The address about to be dialled, whatever the name resolved to before.
      const { host, meta } = endpoint.address;
      const name = typeof meta.hostname === "string" ? meta.hostname : undefined;
      if (name !== undefined) egress.checkHost(name);
      egress.checkAddress(host, name);
    }
    const head = upstreamHeaders(ex, st.policy, service, bound, local, egress);
    if (head.client !== undefined) st.remote = head.client;
    const handler = new ForwardHandler(
      ex,
      endpoint,
      st.policy,
      service.show,
      this.respondError,
      this.onForwarded,
    );
    (handler as ForwardHandlerWithState).state = st;
    endpoint.dispatch(
      {
        method: ex.method,
        path: url,
        headers: head.headers,
        body: ex.hasBody ? this.requestBody(ex) : null,
        contentLength: ex.hasBody ? ex.contentLength : undefined,
      },
      handler,
    );
  }

  /** The body to send upstream, counted against maxRequestKB when its length is not declared. */
  private requestBody(ex: ServerExchange): Readable {
    const max = this.opts.limits.maxBodyBytes;
    const body = ex.body();
    if (max === undefined || ex.contentLength !== undefined) return body;
    return body.pipe(new BodyLimit(max));
  }

  private readonly onForwarded = (h: ForwardHandler) => {
    const st = (h as ForwardHandlerWithState).state;
    st.status = h.outcome.status;
    st.bytes = h.outcome.bytes;
    st.error = h.outcome.error;
    this.finish(undefined, st, h);
  };

  private readonly respondError = (ex: ServerExchange, err: ProxyError) => {
    respondWithError(ex, err, this.opts.log);
  };

  private fail(ex: ServerExchange, st: RequestState, err: ProxyError): void {
    st.status = err.status;
    st.error = err.code;
    respondWithError(ex, err, this.opts.log);
    this.finish(ex, st);
  }

  private finish(ex: ServerExchange | undefined, st: RequestState, h?: ForwardHandler): void {
    const ms = performance.now() - st.start;
    const log = this.opts.accessLog;
    if (log) {
      const e = ex ?? (h as unknown as { ex: ServerExchange }).ex;
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
    const server = st.policy.stats;
    server.load.n--;
    server.record(status, ms, reason);
    st.serviceStats?.record(status, ms, reason);
    st.clientStats?.record(status, ms, reason);
    if (st.admitted) st.policy.release();
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

type BindingState = import("../naming/index.js").State<NameTree<BoundName>>;

interface RequestState {
  readonly policy: ServerPolicy;
  readonly start: number;
  service: string | undefined;
  client: string | undefined;
  serviceStats: RequestStats | undefined;
  clientStats: RequestStats | undefined;
  /** The client's address for the access log (after trusted proxies). */
  remote: string;
  /** Holds one of the server's concurrent-request slots. */
  admitted: boolean;
  status: number;
  bytes: number;
  /** Why it failed (a ProxyError code, client_closed, …); "" when it did not. */
  error: string;
}

type ForwardHandlerWithState = ForwardHandler & { state: RequestState };

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

export function respondWithError(ex: ServerExchange, err: ProxyError, log: Logger): void {
  if (ex.aborted) return;
  if (err.closesConnection) ex.closeAfterResponse(true);
  log.debug("request failed", { code: err.code, status: err.status, error: err.message });
  ex.respond(
    err.status,
    ["content-type", TEXT_PLAIN, "l5d-err", l5dErrValue(err.message), "via", "1.1 lintel"],
    Buffer.from(`${err.message}\n`),
  );
}
