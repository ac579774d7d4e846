// The request/response interface every listener engine (uws, node) provides, so routing,
// policy and telemetry never know which engine a request came from.
// Headers are flat arrays [name, value, ...] with lower-case names.

import type { X509Certificate } from "node:crypto";
import type { Readable } from "node:stream";

export interface ServerExchange {
  readonly method: string;
  /** Origin-form target (path and query). Absolute-form targets are already split. */
  readonly url: string;
  /** "1.1" or "1.0". */
  readonly httpVersion: string;
  readonly headers: readonly string[];
  /**
   * Replaces `headers` for the rest of the request path (later layers, identification,
   * the request sent upstream): an auth layer drops the credentials it checked and adds
   * the identity it verified.
   */
  replaceHeaders(headers: readonly string[]): void;
  /** The direct peer of the connection. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The client: the direct peer, or the one a PROXY header from an allowed peer names. */
  readonly clientAddress: string;
  readonly clientPort: number;
  /** This listener's address as the peer reached it. */
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  /** The TLS client certificate the peer presented (mTLS), if any. */
  peerCertificate(): X509Certificate | undefined;
  /** Content-Length of the request, undefined when chunked or absent. */
  readonly contentLength: number | undefined;
  /** True when the request has a body to forward (a length above 0, or chunked). */
  readonly hasBody: boolean;
  /** The request body, with backpressure toward the client. */
  body(): Readable;

  /** True once the client went away before the response completed. */
  readonly aborted: boolean;
  /** Calls `cb` once if the client goes away before the response completed. */
  onAbort(cb: () => void): void;

  /** Starts the response; `length` undefined means the length is not known in advance. */
  writeHead(status: number, headers: readonly string[], length: number | undefined): void;
  /**
   * Writes body bytes; false means the client is slower than the upstream: wait for
   * onWritable. `chunk` is valid only during the call: an engine copies what it keeps.
   */
  write(chunk: Buffer): boolean;
  onWritable(cb: () => void): void;
  /** Completes the response (with trailers where the engine and the framing allow). */
  end(trailers?: readonly string[]): void;
  /** A whole answer lintel makes itself (errors, redirects): head and body at once. */
  respond(status: number, headers: readonly string[], body: Buffer): void;
  /** Closes the connection without completing the response (the client sees it truncated). */
  destroy(): void;
  /**
   * Asks the engine to close the connection after this response (draining). With
   * `refuseRest`, requests already pipelined behind this one are not served either: the
   * connection's framing cannot be trusted.
   */
  closeAfterResponse(refuseRest?: boolean): void;
  /** An earlier request on this connection was refused with refuseRest: drop this one. */
  readonly condemned: boolean;
}

/** Splits an absolute-form request target (`http://host:port/path?q`) into authority and path. */
export function splitAbsoluteForm(target: string): { authority: string; path: string } | undefined {
  const m = /^https?:\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (!m) return undefined;
  const rest = m[2]!;
  return { authority: m[1]!, path: rest === "" ? "/" : rest.startsWith("?") ? `/${rest}` : rest };
}

/**
 * A request target and header fields as the router reads them: an absolute-form target
 * becomes its path, and its authority replaces Host (RFC 9112 §3.2.2). Origin-form (and
 * anything else) passes as it is.
 */
export function originForm(
  target: string,
  headers: readonly string[],
): { url: string; headers: readonly string[] } {
  const absolute = target.charCodeAt(0) === 47 ? undefined : splitAbsoluteForm(target);
  if (absolute === undefined) return { url: target, headers };
  return { url: absolute.path, headers: withHost(headers, absolute.authority) };
}

/** `headers` with every Host field replaced by one naming `authority`. */
export function withHost(headers: readonly string[], authority: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i] !== "host") out.push(headers[i]!, headers[i + 1]!);
  out.push("host", authority);
  return out;
}
