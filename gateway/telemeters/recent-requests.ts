// io.l5d.recentRequests: the last `capacity` requests chosen at `sampleRate`, kept per
// thread in a ring, served at /admin/recentRequests.json merged over every thread that
// serves requests, newest first. A request not chosen costs one random number.

import { def, integer, number, object, req } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { RingBuffer } from "./ring-buffer.js";
import type {
  AdminAnswer,
  RequestSummary,
  Telemeter,
  TelemeterAdminRequest,
  ThreadState,
} from "./telemeter.js";

export const RECENT_REQUESTS_PATH = "/admin/recentRequests.json";

/** A request on the page. */
export interface RecentRequestView {
  /** When it arrived (ISO time). */
  readonly time: string;
  /** The thread that served it: a worker's index, or "control". */
  readonly worker: number | "control";
  readonly router: string;
  readonly server: string;
  readonly method: string;
  readonly url: string;
  readonly host: string | null;
  readonly service: string | null;
  readonly client: string | null;
  /** 0 when no response went out (the client left first). */
  readonly status: number;
  readonly durationMs: number;
  /** Why it failed (an error code, client_closed, …); null when it did not. */
  readonly error: string | null;
}

export interface RecentRequestsPage {
  /** When the page was made (ISO time). */
  readonly time: string;
  readonly requests: readonly RecentRequestView[];
  /** Threads that did not answer, and why (a worker starting again, or too slow). */
  readonly unanswered: readonly { readonly worker: number | "control"; readonly error: string }[];
}

/** Milliseconds to the microsecond. */
const micros = (ms: number) => Math.round(ms * 1000) / 1000;

/** Every thread's requests, newest (last finished) first. */
/** A finished request as the admin pages show it (recent requests, `lintel tap`). */
export function requestView(r: RequestSummary, worker: number | "control"): RecentRequestView {
  return {
    time: new Date(r.time).toISOString(),
    worker,
    router: r.router,
    server: r.server,
    method: r.method,
    url: r.url,
    host: r.host ?? null,
    service: r.service ?? null,
    client: r.client ?? null,
    status: r.status,
    durationMs: micros(r.durationMs),
    error: r.error === "" ? null : r.error,
  };
}

export function recentRequestsPage(threads: readonly ThreadState[], now: Date): RecentRequestsPage {
  const rows: { readonly r: RequestSummary; readonly worker: number | "control" }[] = [];
  const unanswered: { worker: number | "control"; error: string }[] = [];
  for (const t of threads) {
    if ("error" in t) unanswered.push({ worker: t.worker, error: t.error });
    else for (const r of t.state as RequestSummary[]) rows.push({ r, worker: t.worker });
  }
  // Each thread's list is newest first already; the sort is stable, so ties keep it.
  rows.sort((a, b) => b.r.time + b.r.durationMs - (a.r.time + a.r.durationMs));
  return {
    time: now.toISOString(),
    requests: rows.map(({ r, worker }) => requestView(r, worker)),
    unanswered,
  };
}

async function page(req: TelemeterAdminRequest): Promise<AdminAnswer> {
  const body = recentRequestsPage(await req.threads(), new Date());
  return { contentType: "application/json", body: `${JSON.stringify(body, null, 2)}\n` };
}

export const recentRequestsTelemeter = definePlugin({
  category: "telemeter",
  kind: "io.l5d.recentRequests",
  schema: object({
    sampleRate: req(number({ min: 0, max: 1, expected: "a fraction from 0 to 1" })),
    capacity: def(integer({ min: 1 }), 10),
  }),
  create: (config, ctx): Telemeter => {
    const ring = new RingBuffer<RequestSummary>(config.capacity);
    const routes = [{ path: RECENT_REQUESTS_PATH, serve: page }];
    const threadState = () => ring.newestFirst();
    // At 0 nothing is ever kept: no observer at all, so routers pay nothing.
    if (config.sampleRate === 0) return { threadState, adminRoutes: routes };
    const rate = config.sampleRate;
    const random = ctx.random;
    return {
      sample: () => random() < rate,
      observe: (r) => ring.push(r),
      threadState,
      adminRoutes: routes,
    };
  },
});
