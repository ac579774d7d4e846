// gRPC at the edge (the gRPC over HTTP/2 protocol): a client's `grpc-timeout` is the
// call's deadline, and the errors lintel answers itself reach a gRPC client as gRPC
// statuses (a trailers-only response) rather than HTTP statuses it would have to guess at.

import type { ProxyError, ProxyErrorCode } from "../http/errors.js";

/** Whether a request is a gRPC call (its content type). */
export function isGrpc(contentType: string | undefined): boolean {
  return contentType?.startsWith("application/grpc") === true;
}

const UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** The deadline (ms since the epoch) a `grpc-timeout` value sets, from `now`; undefined when malformed. */
export function grpcDeadline(value: string, now: number): number | undefined {
  // TimeoutValue is at most 8 digits, then one unit letter.
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  return now + Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** gRPC status codes (grpc/doc/statuscodes.md) for lintel's own errors. */
const STATUS: Partial<Record<ProxyErrorCode, number>> = {
  LINTEL_TIMEOUT: 4, // DEADLINE_EXCEEDED
  LINTEL_ATTEMPT_TIMEOUT: 4,
  LINTEL_FORBIDDEN: 7, // PERMISSION_DENIED
  LINTEL_RATE_LIMITED: 8, // RESOURCE_EXHAUSTED
  LINTEL_UNAUTHORIZED: 16, // UNAUTHENTICATED
  LINTEL_RESPONSE_TOO_LARGE: 8, // RESOURCE_EXHAUSTED
  LINTEL_BODY_TOO_LARGE: 8,
  LINTEL_UNIDENTIFIED: 12, // UNIMPLEMENTED: nothing serves that name
  LINTEL_NO_ROUTE: 12,
};
/** Everything else lintel answers means the service cannot be reached now: UNAVAILABLE. */
const UNAVAILABLE = 14;

/** The answer to a gRPC call for `err`: HTTP 200 with the status in its (only) headers. */
export function grpcErrorHeaders(err: ProxyError): string[] {
  const status = STATUS[err.code] ?? UNAVAILABLE;
  return [
    "content-type",
    "application/grpc",
    "grpc-status",
    String(status),
    "grpc-message",
    grpcMessage(err.message),
  ];
}

/** The gRPC spec's encoding of grpc-message: percent-encode '%' and bytes outside 0x20-0x7E (UTF-8). */
function grpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message)) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}
