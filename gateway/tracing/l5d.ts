// Linkerd 1's `l5d-ctx-trace`: Finagle's TraceId serialized and base64-encoded: 32 bytes,
// big-endian spanId, parentId, traceId (the low 64 bits), flags (Debug 1, SamplingKnown 2,
// Sampled 4); 40 bytes when the trace id has 128 bits (its high 64 bits follow).

import type { IncomingTrace, SpanContext } from "./context.js";

export const L5D_TRACE_HEADER = "l5d-ctx-trace";

// Finagle's flags; only the low bits are used, so they are read and written as 32 bits.
const DEBUG = 1;
const SAMPLING_KNOWN = 2;
const SAMPLED = 4;

/** Written into and encoded at once on every request: one buffer per thread. */
const scratch = Buffer.alloc(40);

const hex = (b: Buffer, at: number) => b.toString("hex", at, at + 8);

/** The context in an l5d-ctx-trace value; undefined when malformed. */
export function parseL5dTrace(value: string): IncomingTrace | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value.trim())) return undefined;
  const b = Buffer.from(value.trim(), "base64");
  if (b.length !== 32 && b.length !== 40) return undefined;
  const spanId = hex(b, 0);
  const low = hex(b, 16);
  const traceId = b.length === 40 ? hex(b, 32) + low : low;
  if (/^0+$/.test(spanId) || /^0+$/.test(traceId)) return undefined;
  const flags = b.readUInt32BE(28);
  const debug = (flags & DEBUG) !== 0;
  const sampled = debug
    ? true
    : (flags & SAMPLING_KNOWN) !== 0
      ? (flags & SAMPLED) !== 0
      : undefined;
  return { traceId, spanId, sampled, debug };
}

/** The l5d-ctx-trace value of a span's context. */
export function formatL5dTrace(c: SpanContext): string {
  const wide = c.traceId.length === 32;
  const b = scratch;
  b.write(c.spanId, 0, "hex");
  // Finagle writes a root span's own id as its parent.
  b.write(c.parentId ?? c.spanId, 8, "hex");
  b.write(wide ? c.traceId.slice(16) : c.traceId, 16, "hex");
  let flags = SAMPLING_KNOWN;
  if (c.sampled) flags |= SAMPLED;
  if (c.debug) flags |= DEBUG;
  b.writeUInt32BE(0, 24);
  b.writeUInt32BE(flags, 28);
  if (wide) b.write(c.traceId.slice(0, 16), 32, "hex");
  return b.toString("base64", 0, wide ? 40 : 32);
}
