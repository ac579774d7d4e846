// OpenTelemetry's OTLP/HTTP JSON encoding (POST /v1/traces): spans grouped by service
// name into resourceSpans; ids as hex, times as nanosecond strings, SERVER=2, CLIENT=3.

import { type FinishedSpan, splitAddress } from "./span.js";

export const OTLP_CONTENT_TYPE = "application/json";

const KIND = { SERVER: 2, CLIENT: 3 } as const;
/** OTLP's STATUS_CODE_ERROR. */
const STATUS_ERROR = 2;

type Attribute = { key: string; value: { stringValue: string } | { intValue: string } };

const str = (key: string, v: string): Attribute => ({ key, value: { stringValue: v } });

function attributes(s: FinishedSpan): Attribute[] {
  const out: Attribute[] = [];
  for (const [k, v] of Object.entries(s.tags)) {
    out.push(k === "http.status_code" ? { key: k, value: { intValue: v } } : str(k, v));
  }
  const local = splitAddress(s.localAddress);
  if (local)
    out.push(str("server.address", local.ip), {
      key: "server.port",
      value: { intValue: String(local.port) },
    });
  const remote = splitAddress(s.remoteAddress);
  if (remote)
    out.push(str("network.peer.address", remote.ip), {
      key: "network.peer.port",
      value: { intValue: String(remote.port) },
    });
  return out;
}

/** µs to a nanosecond string (exact: no float beyond 2^53). */
const nanos = (us: number) => `${us}000`;

/** The body of a POST to /v1/traces; `serviceName` overrides the spans' router labels. */
export function otlpJson(spans: readonly FinishedSpan[], serviceName?: string): string {
  const byService = new Map<string, unknown[]>();
  for (const s of spans) {
    const svc = serviceName ?? s.localService;
    let list = byService.get(svc);
    if (!list) {
      list = [];
      byService.set(svc, list);
    }
    list.push({
      traceId: s.traceId.padStart(32, "0"),
      spanId: s.id,
      ...(s.parentId === undefined ? {} : { parentSpanId: s.parentId }),
      name: s.name,
      kind: KIND[s.kind],
      startTimeUnixNano: nanos(s.timestamp),
      endTimeUnixNano: nanos(s.timestamp + s.duration),
      attributes: attributes(s),
      status: s.error ? { code: STATUS_ERROR } : {},
    });
  }
  return JSON.stringify({
    resourceSpans: [...byService].map(([svc, list]) => ({
      resource: { attributes: [str("service.name", svc)] },
      scopeSpans: [{ scope: { name: "lintel" }, spans: list }],
    })),
  });
}
