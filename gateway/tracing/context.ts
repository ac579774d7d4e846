// A trace context as it travels between hops (ids as lowercase hex), what each
// propagation format reads into and writes from, and the id generator (an injected
// random source, so tests are deterministic).

/** The propagation formats lintel reads and writes. */
export type TraceFormat = "l5d" | "b3" | "b3single" | "w3c";

export const TRACE_FORMATS: readonly TraceFormat[] = ["l5d", "b3", "b3single", "w3c"];

/** What an incoming request says about its trace; ids absent when it only says "sample" or not. */
export interface IncomingTrace {
  /** 16 or 32 hex digits; undefined when the header carried a sampling decision only. */
  readonly traceId: string | undefined;
  /** The caller's span (our server span's parent); 16 hex digits. */
  readonly spanId: string | undefined;
  /** The caller's decision: true/false, or undefined when it left it to us. */
  readonly sampled: boolean | undefined;
  /** Debug: always sampled. */
  readonly debug: boolean;
  /** W3C tracestate, passed on unchanged. */
  readonly tracestate?: string;
}

/** The context of one span, as sent to the next hop. */
export interface SpanContext {
  readonly traceId: string;
  readonly spanId: string;
  /** The parent span; undefined for a trace's root. */
  readonly parentId: string | undefined;
  readonly sampled: boolean;
  readonly debug: boolean;
  readonly tracestate: string | undefined;
}

const HEX16 = /^[0-9a-f]{16}$/;
const HEX16_OR_32 = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;
const ZEROS = /^0+$/;

/** A valid 64-bit id (not all zeros). */
export function isSpanId(s: string): boolean {
  return HEX16.test(s) && !ZEROS.test(s);
}

/** A valid 64- or 128-bit trace id (not all zeros). */
export function isTraceId(s: string): boolean {
  return HEX16_OR_32.test(s) && !ZEROS.test(s);
}

/** Each byte's two hex digits: Number#toString(16) of a 32-bit value is slow in V8. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** 8 random hex digits from `random`. */
function hex32(random: () => number): string {
  const n = (random() * 0x100000000) >>> 0;
  return HEX[n >>> 24]! + HEX[(n >>> 16) & 255]! + HEX[(n >>> 8) & 255]! + HEX[n & 255]!;
}

/** A new 64-bit id, 16 hex digits, never all zeros. */
export function newId(random: () => number): string {
  const id = hex32(random) + hex32(random);
  return id === "0000000000000000" ? "0000000000000001" : id;
}
