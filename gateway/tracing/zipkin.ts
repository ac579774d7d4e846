// Zipkin's v2 JSON span model (POST /api/v2/spans): one array of spans.

import { type FinishedSpan, splitAddress } from "./span.js";

export const ZIPKIN_CONTENT_TYPE = "application/json";

interface ZipkinEndpoint {
  serviceName?: string;
  ipv4?: string;
  ipv6?: string;
  port?: number;
}

function endpoint(address: string | undefined, serviceName?: string): ZipkinEndpoint | undefined {
  const a = splitAddress(address);
  if (a === undefined && serviceName === undefined) return undefined;
  const e: ZipkinEndpoint = {};
  if (serviceName !== undefined) e.serviceName = serviceName;
  if (a !== undefined) {
    if (a.ip.includes(":")) e.ipv6 = a.ip;
    else e.ipv4 = a.ip;
    e.port = a.port;
  }
  return e;
}

/** The body of a POST to /api/v2/spans; `serviceName` overrides the spans' router labels. */
export function zipkinJson(spans: readonly FinishedSpan[], serviceName?: string): string {
  return JSON.stringify(
    spans.map((s) => ({
      traceId: s.traceId,
      id: s.id,
      ...(s.parentId === undefined ? {} : { parentId: s.parentId }),
      name: s.name.toLowerCase(),
      kind: s.kind,
      timestamp: s.timestamp,
      duration: s.duration,
      localEndpoint: endpoint(s.localAddress, serviceName ?? s.localService),
      ...(s.remoteAddress === undefined ? {} : { remoteEndpoint: endpoint(s.remoteAddress) }),
      tags: s.tags,
    })),
  );
}
