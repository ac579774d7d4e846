// Zipkin's B3 propagation: the multi-header form (x-b3-traceid, x-b3-spanid,
// x-b3-parentspanid, x-b3-sampled, x-b3-flags) and the single header `b3`
// (`{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, or only `0`, `1` or `d`).

import { type IncomingTrace, isSpanId, isTraceId, type SpanContext } from "./context.js";

export const B3_HEADERS = [
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
] as const;
export const B3_SINGLE_HEADER = "b3";

/** A sampling word: 1/true yes, 0/false no, d debug; anything else: malformed (null). */
function sampling(s: string | undefined): { sampled: boolean | undefined; debug: boolean } | null {
  switch (s?.toLowerCase()) {
    case undefined:
      return { sampled: undefined, debug: false };
    case "1":
    case "true":
      return { sampled: true, debug: false };
    case "0":
    case "false":
      return { sampled: false, debug: false };
    case "d":
      return { sampled: true, debug: true };
    default:
      return null;
  }
}

/** The context in B3 multi headers (lowercase values); undefined when absent or malformed. */
export function parseB3Multi(get: (name: string) => string | undefined): IncomingTrace | undefined {
  const traceId = get("x-b3-traceid")?.toLowerCase();
  const spanId = get("x-b3-spanid")?.toLowerCase();
  const s = sampling(get("x-b3-sampled"));
  if (s === null) return undefined;
  const debug = get("x-b3-flags") === "1" || s.debug;
  const sampled = debug ? true : s.sampled;
  if (traceId === undefined && spanId === undefined) {
    return sampled === undefined
      ? undefined
      : { traceId: undefined, spanId: undefined, sampled, debug };
  }
  if (traceId === undefined || spanId === undefined) return undefined;
  if (!isTraceId(traceId) || !isSpanId(spanId)) return undefined;
  return { traceId, spanId, sampled, debug };
}

/** The headers (name, value, …) of a span's context in B3 multi form. */
export function formatB3Multi(c: SpanContext): string[] {
  const out = ["x-b3-traceid", c.traceId, "x-b3-spanid", c.spanId];
  if (c.parentId !== undefined) out.push("x-b3-parentspanid", c.parentId);
  // Debug implies sampled: B3 sends the flag instead of x-b3-sampled then.
  if (c.debug) out.push("x-b3-flags", "1");
  else out.push("x-b3-sampled", c.sampled ? "1" : "0");
  return out;
}

/** The context in a `b3` header; undefined when malformed. */
export function parseB3Single(value: string): IncomingTrace | undefined {
  const parts = value.trim().toLowerCase().split("-");
  if (parts.length === 1) {
    const s = sampling(parts[0]);
    if (s === null || s.sampled === undefined) return undefined;
    return { traceId: undefined, spanId: undefined, sampled: s.sampled, debug: s.debug };
  }
  if (parts.length > 4) return undefined;
  const [traceId, spanId, flag, parent] = parts as [string, string, string?, string?];
  if (!isTraceId(traceId) || !isSpanId(spanId)) return undefined;
  const s = sampling(flag);
  if (s === null) return undefined;
  if (parent !== undefined && !isSpanId(parent)) return undefined;
  return { traceId, spanId, sampled: s.sampled, debug: s.debug };
}

/** The `b3` value of a span's context. */
export function formatB3Single(c: SpanContext): string {
  const flag = c.debug ? "d" : c.sampled ? "1" : "0";
  const base = `${c.traceId}-${c.spanId}-${flag}`;
  return c.parentId === undefined ? base : `${base}-${c.parentId}`;
}
