// /admin/tap on the admin server: `POST ?router=&service=&path=&status=&rate=` opens a tap
// and answers its id; `GET ?id=&waitMs=` answers, as newline-delimited JSON, the matching
// requests since the last poll (waiting up to waitMs when there are none yet) and a
// `dropped` line when some were over the rate; `DELETE ?id=` closes it. A tap nobody polls
// closes by itself after TAP_LEASE_MS. Long polls, because an admin route answers a whole
// body (AdminAnswer); one poll a second costs nothing next to the requests it carries.

import type { AdminAnswer } from "../telemeters/telemeter.js";
import type { AdminRouteHandler } from "../telemeters/telemeters.js";
import type { TapFilter } from "../telemetry/tap-point.js";
import { TAP_PATH } from "./paths.js";
import { TAP_LEASE_MS, type TapHub } from "./tap-hub.js";

/** A tap's rate bound when the client names none: requests per second it reads at most. */
const DEFAULT_TAP_RATE = 100;
const MAX_TAP_RATE = 10_000;
/** How long a poll may wait for requests (below the lease, so a waiting client keeps its tap). */
const MAX_WAIT_MS = 5000;
const DEFAULT_WAIT_MS = 1000;

const text = (status: number, body: string): AdminAnswer => ({
  status,
  contentType: "text/plain; charset=utf-8",
  body: `${body}\n`,
});

/** What is wrong with a POST's filter: 404 for an unknown router, 400 otherwise. */
interface Refused {
  readonly refused: AdminAnswer;
}

const bad = (body: string): Refused => ({ refused: text(400, body) });

/** The filter a POST asks for, or the answer saying what is wrong with it. */
function tapFilterOf(
  q: URLSearchParams,
  routers: readonly string[],
): Omit<TapFilter, "id"> | Refused {
  const router = q.get("router") ?? undefined;
  if (router !== undefined && !routers.includes(router))
    return { refused: text(404, `no router labelled "${router}"; routers: ${routers.join(", ")}`) };
  const svc = q.get("service") ?? undefined;
  // Metrics name services without the leading slash (svc/users): both are accepted.
  const service = svc === undefined || svc.startsWith("/") ? svc : `/${svc}`;
  const pathPrefix = q.get("path") ?? undefined;
  if (pathPrefix !== undefined && !pathPrefix.startsWith("/"))
    return bad(`path must be a path prefix starting with /, got "${pathPrefix}"`);
  let status: TapFilter["status"];
  const st = q.get("status");
  if (st !== null) {
    const cls = /^([1-5])xx$/i.exec(st);
    if (cls) status = { class: Number(cls[1]) };
    else if (/^[1-5][0-9][0-9]$/.test(st)) status = { code: Number(st) };
    else return bad(`status must be a status code (404) or class (5xx), got "${st}"`);
  }
  const r = q.get("rate");
  const perSecond = r === null ? DEFAULT_TAP_RATE : Number(r);
  if (!Number.isInteger(perSecond) || perSecond < 1 || perSecond > MAX_TAP_RATE)
    return bad(
      `rate must be a whole number of requests per second from 1 to ${MAX_TAP_RATE}, got "${r}"`,
    );
  return { router, service, pathPrefix, status, perSecond };
}

/** The route, for the routes map the admin server serves. */
export function tapRoute(hub: TapHub, routers: readonly string[]): AdminRouteHandler {
  return async (method, url) => {
    const q = url.searchParams;
    if (method === "POST") {
      const filter = tapFilterOf(q, routers);
      if ("refused" in filter) return filter.refused;
      const id = hub.open(filter);
      return {
        status: 201,
        contentType: "application/json",
        body: `${JSON.stringify({ id, ...filter, leaseMs: TAP_LEASE_MS })}\n`,
      };
    }
    if (method !== "GET" && method !== "DELETE")
      return text(405, `use POST ${TAP_PATH} to open a tap, GET or DELETE ${TAP_PATH}?id=ID`);
    const id = Number(q.get("id"));
    if (!Number.isInteger(id) || id < 1)
      return text(400, `id is required: the one POST ${TAP_PATH} answered`);
    const gone = `no tap ${id} is open (closed, or not polled for ${TAP_LEASE_MS / 1000} s)`;
    if (method === "DELETE") return hub.close(id) ? text(200, `tap ${id} closed`) : text(404, gone);
    const w = q.get("waitMs");
    const waitMs =
      w === null ? DEFAULT_WAIT_MS : Math.min(MAX_WAIT_MS, Math.max(0, Number(w) || 0));
    const polled = await hub.poll(id, waitMs);
    if (!polled) return text(404, gone);
    let body = "";
    for (const r of polled.requests) body += `${JSON.stringify(r)}\n`;
    if (polled.dropped > 0)
      body += `${JSON.stringify({ type: "dropped", count: polled.dropped })}\n`;
    return { contentType: "application/x-ndjson", body };
  };
}
