// Reading a request's trace context from whichever formats it carries (l5d-ctx-trace
// first, then B3 single, B3 multi, W3C), and writing a span's context into an upstream
// request's headers: every trace header of every format removed first (so a stale or
// untrusted one never travels on), then the chosen formats added.

import { getHeader } from "../http/headers.js";
import {
  B3_HEADERS,
  B3_SINGLE_HEADER,
  formatB3Multi,
  formatB3Single,
  parseB3Multi,
  parseB3Single,
} from "./b3.js";
import type { IncomingTrace, SpanContext, TraceFormat } from "./context.js";
import { formatL5dTrace, L5D_TRACE_HEADER, parseL5dTrace } from "./l5d.js";
import { formatTraceparent, parseTraceparent, TRACEPARENT, TRACESTATE } from "./w3c.js";

/** A sample rate a trusted client asks for (Linkerd's l5d-sample), from 0 to 1. */
export const L5D_SAMPLE_HEADER = "l5d-sample";

/** Every header a trace context travels in. */
export const TRACE_HEADERS: ReadonlySet<string> = new Set([
  L5D_TRACE_HEADER,
  ...B3_HEADERS,
  B3_SINGLE_HEADER,
  TRACEPARENT,
  TRACESTATE,
]);

export interface Extracted {
  /** The first well-formed context found (one with ids preferred over a bare decision). */
  readonly trace: IncomingTrace | undefined;
  /** The formats the request carried (well-formed), to answer in kind. */
  readonly formats: readonly TraceFormat[];
}

const NONE: Extracted = { trace: undefined, formats: [] };

/** The trace context of a request's headers (name, value, … with lowercase names): one pass. */
export function extractTrace(headers: readonly string[]): Extracted {
  let l5d: string | undefined;
  let single: string | undefined;
  let parent: string | undefined;
  let state: string | undefined;
  let b3 = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (!TRACE_HEADERS.has(name)) continue;
    const v = headers[i + 1]!;
    if (name === L5D_TRACE_HEADER) l5d ??= v;
    else if (name === B3_SINGLE_HEADER) single ??= v;
    else if (name === TRACEPARENT) parent ??= v;
    else if (name === TRACESTATE) state = state === undefined ? v : `${state},${v}`;
    else b3 = true;
  }
  if (l5d === undefined && single === undefined && parent === undefined && !b3) return NONE;
  let trace: IncomingTrace | undefined;
  const formats: TraceFormat[] = [];
  const take = (t: IncomingTrace | undefined, f: TraceFormat) => {
    if (t === undefined) return;
    formats.push(f);
    if (trace === undefined || (trace.traceId === undefined && t.traceId !== undefined)) trace = t;
  };
  if (l5d !== undefined) take(parseL5dTrace(l5d), "l5d");
  if (single !== undefined) take(parseB3Single(single), "b3single");
  if (b3)
    take(
      parseB3Multi((n) => getHeader(headers, n)),
      "b3",
    );
  if (parent !== undefined) take(parseTraceparent(parent, state), "w3c");
  return formats.length === 0 ? NONE : { trace, formats };
}

/** A sample rate from an l5d-sample value, when it is a number from 0 to 1. */
export function parseSampleRate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.trim());
  return value.trim() !== "" && Number.isFinite(n) && n >= 0 && n <= 1 ? n : undefined;
}

/** Removes every trace header from `headers` (in place). */
export function stripTrace(headers: string[]): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (TRACE_HEADERS.has(headers[i]!)) headers.splice(i, 2);
  }
}

/** Writes `c` into `headers` (in place) in `formats`, replacing any trace header there. */
export function injectTrace(
  headers: string[],
  c: SpanContext,
  formats: readonly TraceFormat[],
): void {
  stripTrace(headers);
  for (const f of formats) {
    switch (f) {
      case "l5d":
        headers.push(L5D_TRACE_HEADER, formatL5dTrace(c));
        break;
      case "b3":
        headers.push(...formatB3Multi(c));
        break;
      case "b3single":
        headers.push(B3_SINGLE_HEADER, formatB3Single(c));
        break;
      case "w3c":
        headers.push(TRACEPARENT, formatTraceparent(c));
        if (c.tracestate !== undefined) headers.push(TRACESTATE, c.tracestate);
        break;
    }
  }
}
