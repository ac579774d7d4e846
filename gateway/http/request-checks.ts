// What an edge refuses before routing: a request whose framing or head can be read more
// than one way (RFC 9112 §6.3, §3.2), or that is over the router's limits. Engines parse
// differently (uws is lenient where Node is strict), so these checks run on the parsed
// request for both, and the connection is closed after the answer.

import { ProxyError } from "./errors.js";
import type { ServerExchange } from "./exchange.js";

export interface RequestLimits {
  /** Bytes of the request target (maxInitialLineKB). */
  readonly maxTargetBytes: number;
  /** Bytes of the header fields (maxHeadersKB). */
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  /** Bytes of the body (maxRequestKB), or undefined for no limit. */
  readonly maxBodyBytes: number | undefined;
}

/** Throws the ProxyError to answer with, or returns when the request may be routed. */
export function checkRequest(ex: ServerExchange, limits: RequestLimits): void {
  if (ex.httpVersion !== "1.1" && ex.httpVersion !== "1.0" && ex.httpVersion !== "2.0") {
    throw new ProxyError("LINTEL_BAD_REQUEST", `HTTP/${ex.httpVersion} is not supported`);
  }
  if (ex.url.length > limits.maxTargetBytes) {
    throw new ProxyError(
      "LINTEL_URI_TOO_LONG",
      `the request target is ${ex.url.length} bytes, over the limit of ${limits.maxTargetBytes} (maxInitialLineKB)`,
    );
  }
  const h = ex.headers;
  if (h.length / 2 > limits.maxHeaderCount) {
    throw new ProxyError(
      "LINTEL_HEADERS_TOO_LARGE",
      `the request has ${h.length / 2} header fields, over the limit of ${limits.maxHeaderCount}`,
    );
  }
  let bytes = 0;
  let hosts = 0;
  let length: string | undefined;
  let encodings: string[] | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    bytes += name.length + value.length + 4;
    if (name === "host") hosts++;
    else if (name === "content-length") {
      for (const v of value.split(",")) {
        const t = v.trim();
        if (!/^\d+$/.test(t))
          throw new ProxyError("LINTEL_BAD_REQUEST", `invalid Content-Length "${value}"`);
        if (length !== undefined && length !== t) {
          throw new ProxyError("LINTEL_BAD_REQUEST", "conflicting Content-Length headers");
        }
        length = t;
      }
    } else if (name === "transfer-encoding") {
      encodings ??= [];
      for (const v of value.split(",")) encodings.push(v.trim().toLowerCase());
    }
  }
  if (bytes > limits.maxHeaderBytes) {
    throw new ProxyError(
      "LINTEL_HEADERS_TOO_LARGE",
      `the request headers are ${bytes} bytes, over the limit of ${limits.maxHeaderBytes} (maxHeadersKB)`,
    );
  }
  if (hosts > 1) throw new ProxyError("LINTEL_BAD_REQUEST", "more than one Host header");
  if (hosts === 0 && ex.httpVersion === "1.1")
    throw new ProxyError("LINTEL_BAD_REQUEST", "an HTTP/1.1 request needs a Host header");
  if (encodings !== undefined) {
    if (length !== undefined)
      throw new ProxyError("LINTEL_BAD_REQUEST", "both Content-Length and Transfer-Encoding");
    // lintel decodes no transfer coding but chunked, applied once.
    if (encodings.length !== 1 || encodings[0] !== "chunked") {
      throw new ProxyError(
        "LINTEL_BAD_REQUEST",
        `unsupported Transfer-Encoding "${encodings.join(", ")}" (only chunked)`,
      );
    }
  }
  if (
    limits.maxBodyBytes !== undefined &&
    length !== undefined &&
    Number(length) > limits.maxBodyBytes
  ) {
    throw new ProxyError(
      "LINTEL_BODY_TOO_LARGE",
      `the request body is ${length} bytes, over the limit of ${limits.maxBodyBytes} (maxRequestKB)`,
    );
  }
}
