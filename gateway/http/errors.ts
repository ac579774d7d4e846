// Errors lintel answers itself, each with a stable code, the HTTP status Linkerd 1 uses
// for it, and a message naming the service and the reason (sent in `l5d-err` and the body).

export type ProxyErrorCode =
  | "LINTEL_UNIDENTIFIED"
  | "LINTEL_BAD_DTAB"
  | "LINTEL_CALL_DEPTH"
  | "LINTEL_NO_ROUTE"
  | "LINTEL_BIND_FAILED"
  | "LINTEL_NO_ADDRESSES"
  | "LINTEL_BIND_TIMEOUT"
  | "LINTEL_CONNECT"
  | "LINTEL_UPSTREAM"
  | "LINTEL_UPSTREAM_TLS"
  | "LINTEL_RESPONSE_TOO_LARGE"
  | "LINTEL_FORBIDDEN"
  | "LINTEL_UNAUTHORIZED"
  | "LINTEL_RATE_LIMITED"
  | "LINTEL_METHOD_NOT_ALLOWED"
  | "LINTEL_SHUTTING_DOWN"
  | "LINTEL_OVERLOADED"
  | "LINTEL_BAD_REQUEST"
  | "LINTEL_URI_TOO_LONG"
  | "LINTEL_HEADERS_TOO_LARGE"
  | "LINTEL_BODY_TOO_LARGE"
  | "LINTEL_REQUEST_TIMEOUT"
  | "LINTEL_VERSION_NOT_SUPPORTED"
  | "LINTEL_UNAVAILABLE"
  | "LINTEL_TIMEOUT"
  | "LINTEL_ATTEMPT_TIMEOUT";

const STATUS: Record<ProxyErrorCode, number> = {
  LINTEL_UNIDENTIFIED: 400,
  LINTEL_BAD_DTAB: 400,
  LINTEL_CALL_DEPTH: 400,
  LINTEL_NO_ROUTE: 502,
  LINTEL_BIND_FAILED: 502,
  LINTEL_NO_ADDRESSES: 502,
  LINTEL_BIND_TIMEOUT: 503,
  LINTEL_CONNECT: 502,
  LINTEL_UPSTREAM: 502,
  /** The upstream's certificate failed verification (name, issuer, dates) or TLS failed. */
  LINTEL_UPSTREAM_TLS: 502,
  /** The upstream's response is over the router's maxResponseKB, or a chunk over maxChunkKB. */
  LINTEL_RESPONSE_TOO_LARGE: 502,
  /** An egress destination the router's policy does not allow (host or address). */
  LINTEL_FORBIDDEN: 403,
  /** A layer that authenticates (JWT, basic) found no valid credentials. */
  LINTEL_UNAUTHORIZED: 401,
  /** Over a rate limit or a per-client connection or request limit. */
  LINTEL_RATE_LIMITED: 429,
  /** CONNECT on a server that does not tunnel. */
  LINTEL_METHOD_NOT_ALLOWED: 405,
  LINTEL_SHUTTING_DOWN: 503,
  LINTEL_OVERLOADED: 503,
  LINTEL_BAD_REQUEST: 400,
  LINTEL_URI_TOO_LONG: 414,
  LINTEL_HEADERS_TOO_LARGE: 431,
  LINTEL_BODY_TOO_LARGE: 413,
  /** The request head did not arrive within the server's headersTimeoutMs. */
  LINTEL_REQUEST_TIMEOUT: 408,
  /** A request line with an HTTP version other than 1.0 and 1.1. */
  LINTEL_VERSION_NOT_SUPPORTED: 505,
  /** Every endpoint of the destination is marked dead by failure accrual: fail fast. */
  LINTEL_UNAVAILABLE: 503,
  /** A total, server or deadline timeout (Linkerd answers timeouts with 503). */
  LINTEL_TIMEOUT: 503,
  /** One attempt took longer than requestAttemptTimeoutMs (and no retry was left). */
  LINTEL_ATTEMPT_TIMEOUT: 503,
};

/** Errors about the request itself: the connection cannot be trusted after them. */
const CLOSES_CONNECTION: ReadonlySet<ProxyErrorCode> = new Set([
  "LINTEL_BAD_REQUEST",
  "LINTEL_URI_TOO_LONG",
  "LINTEL_HEADERS_TOO_LARGE",
  "LINTEL_BODY_TOO_LARGE",
  "LINTEL_REQUEST_TIMEOUT",
  "LINTEL_VERSION_NOT_SUPPORTED",
]);

export class ProxyError extends Error {
  readonly status: number;
  /** Close the client connection after answering (its framing can no longer be trusted). */
  readonly closesConnection: boolean;
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
    /** More response fields for the answer (Retry-After, WWW-Authenticate), flat. */
    readonly headers?: readonly string[],
  ) {
    super(message);
    this.name = "ProxyError";
    this.status = STATUS[code];
    this.closesConnection = CLOSES_CONNECTION.has(code);
  }
}

/** `l5d-err` carries the message URL-encoded, as Linkerd does. */
export function l5dErrValue(message: string): string {
  return encodeURIComponent(message);
}
