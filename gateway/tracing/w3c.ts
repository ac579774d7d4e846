// W3C Trace Context: `traceparent` (`{version}-{trace-id 32 hex}-{parent-id 16 hex}-{flags}`,
// bit 0 of flags = sampled) and `tracestate` (vendor data, passed on unchanged).

import type { IncomingTrace, SpanContext } from "./context.js";

export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

const ZEROS = /^0+$/;
const PARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The context in a traceparent (and tracestate); undefined when malformed. */
export function parseTraceparent(
  value: string,
  tracestate: string | undefined,
): IncomingTrace | undefined {
  const m = PARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  // Version ff is invalid; version 00 has exactly four fields; later ones may add more.
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (ZEROS.test(traceId) || ZEROS.test(spanId)) return undefined;
  const sampled = (Number.parseInt(flags, 16) & 1) === 1;
  return { traceId, spanId, sampled, debug: false, tracestate };
}

/** The traceparent of a span's context (a 64-bit trace id padded to 128 bits). */
export function formatTraceparent(c: SpanContext): string {
  const traceId = c.traceId.length === 32 ? c.traceId : `0000000000000000${c.traceId}`;
  return `00-${traceId}-${c.spanId}-${c.sampled ? "01" : "00"}`;
}
