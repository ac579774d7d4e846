// What a telemeter kind makes: an object that may observe the requests routers finish
// (sampling first, so declining costs nothing), keep per-thread state, and serve pages
// on the admin server (which may gather that state from every thread serving requests).
// Built-ins: io.l5d.prometheus (./prometheus.ts), io.l5d.recentRequests
// (./recent-requests.ts); users add kinds with plugin modules (category "telemeter").

import type { MetricsSnapshot } from "../telemetry/index.js";
import type { SpanSink, Tracer } from "../tracing/tracer.js";

/** A request a router finished, as telemeters see it. */
export interface RequestSummary {
  /** When it arrived, in ms since the epoch. */
  readonly time: number;
  /** The router's label. */
  readonly router: string;
  /** The server it arrived on, `ip:port`. */
  readonly server: string;
  readonly method: string;
  /** The request target as the client sent it. */
  readonly url: string;
  /** The Host header, when it had one. */
  readonly host: string | undefined;
  /** The service name (`/svc/…`), when it was identified. */
  readonly service: string | undefined;
  /** The bound id (the client, `/#/io.l5d.fs/users`), when it was bound. */
  readonly client: string | undefined;
  /** The response's status; 0 when none was sent (the client left first). */
  readonly status: number;
  /** From arrival to the end of the response. */
  readonly durationMs: number;
  /** Why it failed: a lintel error code (LINTEL_NO_ROUTE, …), `client_closed`, …; "" when it did not. */
  readonly error: string;
}

/** A page an admin route answers with. */
export interface AdminAnswer {
  /** Default 200. */
  readonly status?: number;
  readonly contentType: string;
  readonly body: string;
}

/** One thread's `threadState()`: the control thread's (when it serves requests) or a worker's. */
export type ThreadState =
  | { readonly worker: number | "control"; readonly state: unknown }
  /** A thread that could not answer (not serving, too slow, or its telemeter failed): why. */
  | { readonly worker: number | "control"; readonly error: string };

/** What an admin route of a telemeter is asked with. */
export interface TelemeterAdminRequest {
  readonly method: string;
  readonly url: URL;
  /** The request's headers (absent when a caller has none to give, as in unit tests). */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
  /** Every thread's metrics, merged (the workers' as of their last report). */
  metrics(): MetricsSnapshot;
  /**
   * This telemeter's `threadState()` in every thread that serves requests: the control
   * thread's when it serves some itself, then each worker's (asked now, bounded wait).
   */
  threads(): Promise<ThreadState[]>;
}

export interface TelemeterRoute {
  /** A path on the admin server, e.g. `/admin/recentRequests.json`. */
  readonly path: string;
  serve(req: TelemeterAdminRequest): AdminAnswer | Promise<AdminAnswer>;
}

export interface Telemeter {
  /**
   * Whether to observe the request finishing now; asked before its summary is made, so
   * saying no costs no allocation. Absent: every request is observed.
   */
  sample?(): boolean;
  /** A request a router of this thread finished (and `sample()` chose). */
  observe?(request: RequestSummary): void;
  /** Where a tracing telemeter (io.l5d.zipkin, otlp) takes the spans of sampled requests. */
  readonly spans?: SpanSink;
  /** This thread's state for the admin routes' `threads()`; structured-cloneable (plain data). */
  threadState?(): unknown;
  /** Pages on the admin server (served by the control thread). */
  readonly adminRoutes?: readonly TelemeterRoute[];
  /** Stops what it started (timers, connections) at shutdown. */
  close?(): void | Promise<void>;
}

/** What a router calls when it finishes a request; absent when no telemeter observes. */
export interface RequestObserver {
  /** Whether any telemeter wants this request (then `observe` follows at once). */
  sample(): boolean;
  observe(request: RequestSummary): void;
  /** Present when a tracing telemeter is configured: routers trace requests with it. */
  readonly tracer?: Tracer;
}
