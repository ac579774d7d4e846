// A thread's tracer: made by the telemeters when a tracing telemeter (io.l5d.zipkin,
// otlp) is configured, and asked by routers for each request's server span; absent
// otherwise, so a router without tracing pays one branch. A request's trace gives each
// upstream attempt a client span (a child of the server span) whose context goes into the
// attempt's headers. Unsampled requests still carry context (sampled=0) but record nothing.

import { getHeader } from "../http/headers.js";
import { type IncomingTrace, newId, type SpanContext, type TraceFormat } from "./context.js";
import {
  extractTrace,
  injectTrace,
  L5D_SAMPLE_HEADER,
  parseSampleRate,
  stripTrace,
} from "./propagation.js";
import { type FinishedSpan, nowMicros } from "./span.js";

/** Where a tracing telemeter takes spans (its export queue). */
export interface SpanSink {
  /** The share of new traces to sample, 0 to 1. */
  readonly sampleRate: number;
  /** The formats to send when the request brought none. */
  readonly propagation: readonly TraceFormat[];
  /** A sampled span finished; must not block (queue it). */
  record(span: FinishedSpan): void;
}

/** What a router knows of a request when its server span ends. */
export interface ServerSpanEnd {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  /** Why it failed ("" when it did not). */
  readonly error: string;
  readonly service: string | undefined;
  readonly client: string | undefined;
  readonly localAddress: string;
  readonly remoteAddress: string | undefined;
}

export class Tracer {
  /** New traces are sampled at the highest rate any sink asks for. */
  readonly sampleRate: number;
  private readonly formats: readonly TraceFormat[];

  constructor(
    private readonly sinks: readonly SpanSink[],
    private readonly random: () => number,
  ) {
    let rate = 0;
    const formats = new Set<TraceFormat>();
    for (const s of sinks) {
      if (s.sampleRate > rate) rate = s.sampleRate;
      for (const f of s.propagation) formats.add(f);
    }
    this.sampleRate = rate;
    this.formats = [...formats];
  }

  /**
   * The trace of a request arriving with `headers` at router `label`. `trusted`: false on
   * clearContext servers (incoming context ignored: a new trace). `l5d`: whether l5d-*
   * headers may go upstream (not toward the outside from an egress router).
   */
  serverTrace(
    headers: readonly string[],
    trusted: boolean,
    l5d: boolean,
    label: string,
    /** The router's formats for a request that brought none (else the sinks'). */
    propagation: readonly TraceFormat[] = this.formats,
  ): RequestTrace {
    const ex = trusted ? extractTrace(headers) : undefined;
    const incoming: IncomingTrace | undefined = ex?.trace;
    let sampled = incoming?.sampled;
    if (sampled === undefined) {
      const asked = trusted ? parseSampleRate(getHeader(headers, L5D_SAMPLE_HEADER)) : undefined;
      const rate = asked ?? this.sampleRate;
      sampled = rate >= 1 || (rate > 0 && this.random() < rate);
    }
    let formats = ex !== undefined && ex.formats.length > 0 ? ex.formats : propagation;
    if (!l5d && formats.includes("l5d")) formats = formats.filter((f) => f !== "l5d");
    const traceId = incoming?.traceId ?? newId(this.random);
    const ctx: SpanContext = {
      traceId,
      spanId: newId(this.random),
      parentId: incoming?.traceId === undefined ? undefined : incoming.spanId,
      sampled,
      debug: incoming?.debug ?? false,
      tracestate: incoming?.tracestate,
    };
    return new RequestTrace(this, ctx, formats, label);
  }

  /** Hands a finished span to every sink. */
  record(span: FinishedSpan): void {
    for (const s of this.sinks) s.record(span);
  }

  /** A new span id. */
  id(): string {
    return newId(this.random);
  }
}

/** One request's trace: its server span, and the client spans of its attempts. */
export class RequestTrace {
  private readonly start: number;
  service: string | undefined = undefined;
  client: string | undefined = undefined;

  constructor(
    private readonly tracer: Tracer,
    readonly context: SpanContext,
    private readonly formats: readonly TraceFormat[],
    private readonly label: string,
  ) {
    this.start = context.sampled ? nowMicros() : 0;
  }

  get sampled(): boolean {
    return this.context.sampled;
  }

  /** Sets where the request goes (the service name and bound client), for the span tags. */
  target(service: string | undefined, client: string | undefined): void {
    this.service = service;
    this.client = client;
  }

  /**
   * A client span for an attempt whose request head is `headers`: its context replaces
   * any trace header in them. Undefined when the trace is not sampled (nothing recorded).
   */
  attempt(
    headers: string[],
    endpoint: string,
    method: string,
    path: string,
  ): ClientSpan | undefined {
    const c = this.context;
    const child: SpanContext = {
      traceId: c.traceId,
      spanId: this.tracer.id(),
      parentId: c.spanId,
      sampled: c.sampled,
      debug: c.debug,
      tracestate: c.tracestate,
    };
    if (this.formats.length === 0) stripTrace(headers);
    else injectTrace(headers, child, this.formats);
    if (!c.sampled) return undefined;
    return new ClientSpan(this.tracer, child, this, endpoint, method, path);
  }

  /** The request was answered (or failed): the server span ends. */
  end(e: ServerSpanEnd): void {
    if (!this.context.sampled) return;
    const c = this.context;
    const tags: Record<string, string> = {
      "http.method": e.method,
      "http.path": pathOf(e.url),
      "http.status_code": String(e.status),
    };
    if (e.service !== undefined) tags["l5d.service"] = e.service;
    if (e.client !== undefined) tags["l5d.client"] = e.client;
    const failed = e.error !== "" || e.status >= 500;
    if (failed) tags.error = e.error || String(e.status);
    this.tracer.record({
      traceId: c.traceId,
      id: c.spanId,
      parentId: c.parentId,
      name: e.method,
      kind: "SERVER",
      timestamp: this.start,
      duration: Math.max(1, nowMicros() - this.start),
      localService: this.label,
      localAddress: e.localAddress,
      remoteAddress: e.remoteAddress,
      tags,
      error: failed,
    });
  }

  get routerLabel(): string {
    return this.label;
  }
}

/** One attempt's span (sampled traces only). */
export class ClientSpan {
  private readonly start = nowMicros();
  private status = 0;
  private done = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly context: SpanContext,
    private readonly request: RequestTrace,
    private readonly endpoint: string,
    private readonly method: string,
    private readonly path: string,
  ) {}

  /** The answer's status arrived. */
  head(status: number): void {
    this.status = status;
  }

  /** The attempt is over; `error` when it failed before or while answering. */
  end(error: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    const c = this.context;
    const r = this.request;
    const tags: Record<string, string> = {
      "http.method": this.method,
      "http.path": pathOf(this.path),
    };
    if (this.status !== 0) tags["http.status_code"] = String(this.status);
    if (r.service !== undefined) tags["l5d.service"] = r.service;
    if (r.client !== undefined) tags["l5d.client"] = r.client;
    tags["l5d.endpoint"] = this.endpoint;
    const failed = error !== undefined || this.status >= 500;
    if (failed)
      tags.error = error
        ? ((error as { code?: string }).code ?? error.message)
        : String(this.status);
    this.tracer.record({
      traceId: c.traceId,
      id: c.spanId,
      parentId: c.parentId,
      name: this.method,
      kind: "CLIENT",
      timestamp: this.start,
      duration: Math.max(1, nowMicros() - this.start),
      localService: r.routerLabel,
      localAddress: undefined,
      remoteAddress: this.endpoint,
      tags,
      error: failed,
    });
  }
}

/** A request target without its query. */
function pathOf(url: string): string {
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}
