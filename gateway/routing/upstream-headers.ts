// The request head lintel sends upstream: the client's headers minus hop-by-hop ones
// (and those Connection names), Via appended, the Linkerd context set (l5d-dst-*,
// l5d-reqid, l5d-ctx-dtab, l5d-ctx-deadline), and on edge servers X-Forwarded-* / Forwarded rebuilt and
// every l5d-* and x-forwarded-client-cert header dropped. Egress routers send no l5d-*
// header to the outside unless configured to.

import type { ServerExchange } from "../http/exchange.js";
import { FORWARDED_HEADERS, forwardedHeaders } from "../http/forwarded.js";
import { appendVia, connectionListed, getHeader, HOP_BY_HOP } from "../http/headers.js";
import type { BoundName, Dtab, Path } from "../naming/index.js";
import { DEADLINE_HEADER, formatDeadline } from "./deadline.js";
import type { EgressPolicy } from "./egress-policy.js";
import { newRequestId } from "./request-id.js";
import type { ServerStack } from "./server-stack/server-stack.js";

export interface UpstreamHead {
  readonly headers: string[];
  /** The original client found through trusted proxies, for the access log (when computed). */
  readonly client: string | undefined;
}

export function upstreamHeaders(
  ex: ServerExchange,
  policy: ServerStack,
  service: Path,
  bound: BoundName,
  local: Dtab,
  egress: EgressPolicy | undefined,
  /** When the request must be answered (ms since the epoch): sent on as l5d-ctx-deadline. */
  deadline: number | undefined,
): UpstreamHead {
  const headers = ex.headers;
  const clearContext = policy.clearContext;
  const listed = connectionListed(headers);
  const out: string[] = [];
  const via: string[] = [];
  const forwarded = policy.forwarded;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    // Computed below from the request as received: Connection cannot remove them.
    if (forwarded && FORWARDED_HEADERS.has(name)) continue;
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    if (name === "via") {
      via.push(headers[i + 1]!);
      continue;
    }
    // The engine answered Expect: 100-continue itself; the body follows without waiting.
    if (name === "expect") continue;
    // One Content-Length, the one the engine framed the body with, is set below.
    if (name === "content-length") continue;
    if (name.startsWith("l5d-")) {
      if (clearContext) continue;
      if (
        name === "l5d-dtab" ||
        name === "l5d-ctx-dtab" ||
        name === "l5d-reqid" ||
        name.startsWith("l5d-dst-") ||
        (name === DEADLINE_HEADER && deadline !== undefined)
      )
        continue;
    }
    // A client certificate header from the internet is a forgery.
    if (clearContext && name === "x-forwarded-client-cert") continue;
    out.push(name, headers[i + 1]!);
  }
  if (ex.contentLength !== undefined) out.push("content-length", String(ex.contentLength));
  out.push("via", appendVia(via));
  // Toward hosts outside the cluster the Linkerd context stays inside, unless configured.
  if (egress && !egress.forwardL5dHeaders) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (out[i]!.startsWith("l5d-")) out.splice(i, 2);
    }
  } else {
    out.push(
      "l5d-dst-service",
      service.show,
      "l5d-dst-client",
      bound.id.show,
      "l5d-reqid",
      newRequestId(),
    );
    if (!bound.residual.isEmpty) out.push("l5d-dst-residual", bound.residual.show);
    // Per-request dentries travel on to the next hops as context (Linkerd's Dtab.local).
    if (local.size > 0) out.push("l5d-ctx-dtab", local.show);
    if (deadline !== undefined) out.push(DEADLINE_HEADER, formatDeadline(Date.now(), deadline));
  }
  let client: string | undefined;
  if (forwarded) {
    const f = forwardedHeaders(
      headers,
      {
        peer: ex.clientAddress,
        peerPort: ex.clientPort,
        local: ex.localAddress,
        localPort: ex.localPort,
        secure: ex.secure,
        host: getHeader(headers, "host"),
      },
      forwarded,
    );
    out.push(...f.headers);
    client = f.client;
  }
  return { headers: out, client };
}
