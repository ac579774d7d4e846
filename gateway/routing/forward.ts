// Sends one request upstream and streams the answer back. One handler object per
// request carries the whole exchange (no closures per request on the data path): the
// upstream connection calls it as the response arrives; a slow client pauses the upstream read, a client
// that goes away aborts the upstream request, an upstream that dies mid-response
// truncates the client's response rather than leaving it hanging.

import type { Endpoint } from "../client/endpoint.js";
import type { UpstreamControl, UpstreamHandler } from "../client/http1/connection.js";
import { openSslErrorText } from "../client/upstream-tls-errors.js";
import { ProxyError } from "../http/errors.js";
import type { ServerExchange } from "../http/exchange.js";
import { appendVia, HOP_BY_HOP } from "../http/headers.js";
import { CLIENT_CLOSED, RESPONSE_TRUNCATED } from "../telemetry/index.js";

export interface ForwardPolicy {
  /** Drop every l5d-* header from the response (clearContext servers). */
  readonly clearContext: boolean;
  /** The engine writes its own Date header (uws): do not pass the upstream's. */
  readonly engineWritesDate: boolean;
}

export interface ForwardOutcome {
  status: number;
  bytes: number;
  /** Why the exchange failed, for metrics: an error code, or "" when it did not. */
  error: string;
}

// Errors that mean the connection was never made (a reset after connecting is an
// upstream failure, not a connect failure).
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** Builds the response head for the client from the upstream's (flat, lower-case names). */
export function responseHeaders(
  headers: readonly string[],
  policy: ForwardPolicy,
): { out: string[]; length: number | undefined } {
  const out: string[] = [];
  let length: number | undefined;
  let via: string[] | undefined;
  let listed: Set<string> | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (name === "connection") {
      listed ??= new Set();
      for (const t of value.split(",")) listed.add(t.trim().toLowerCase());
      continue;
    }
    if (HOP_BY_HOP.has(name)) continue;
    if (name === "content-length") {
      length ??= Number(value);
      continue;
    }
    if (name === "via") {
      via ??= [];
      via.push(value);
      continue;
    }
    if (policy.clearContext && name.startsWith("l5d-")) continue;
    if (policy.engineWritesDate && name === "date") continue;
    out.push(name, value);
  }
  if (listed) {
    // Connection may come after the headers it names: drop them now.
    for (let i = out.length - 2; i >= 0; i -= 2) if (listed.has(out[i]!)) out.splice(i, 2);
  }
  out.push("via", appendVia(via ?? []));
  return { out, length };
}

export class ForwardHandler implements UpstreamHandler {
  private control: UpstreamControl | undefined;
  private started = false;
  private finished = false;
  readonly outcome: ForwardOutcome = { status: 0, bytes: 0, error: "" };

  constructor(
    private readonly ex: ServerExchange,
    private readonly endpoint: Endpoint,
    private readonly policy: ForwardPolicy,
    private readonly service: string,
    private readonly respondError: (ex: ServerExchange, err: ProxyError) => void,
    private readonly onDone: (h: ForwardHandler) => void,
  ) {
    ex.onAbort(this.clientGone);
  }

  private readonly clientGone = () => {
    this.control?.abort(new Error("the client closed the connection"));
  };

  private readonly resume = () => {
    // Once finished, the connection may already carry another request.
    if (!this.finished) this.control?.resume();
  };

  onStart(control: UpstreamControl): void {
    this.control = control;
    if (this.ex.aborted) control.abort(new Error("the client closed the connection"));
  }

  onHead(status: number, headers: string[]): void {
    this.started = true;
    this.outcome.status = status;
    const { out, length } = responseHeaders(headers, this.policy);
    this.ex.writeHead(status, out, length);
  }

  onData(chunk: Buffer): boolean {
    this.outcome.bytes += chunk.length;
    if (this.ex.write(chunk)) return true;
    this.ex.onWritable(this.resume);
    return false;
  }

  onEnd(trailers: string[] | undefined): void {
    this.ex.end(trailers);
    this.done();
  }

  onError(err: Error): void {
    if (this.ex.aborted) {
      this.outcome.status = this.outcome.status || 499;
      this.outcome.error = CLIENT_CLOSED;
    } else if (this.started) {
      // The answer is half sent: cut the connection so the client sees it truncated.
      this.outcome.error = RESPONSE_TRUNCATED;
      this.ex.destroy();
    } else {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      const where = this.endpoint.key;
      const e =
        err instanceof ProxyError
          ? err
          : CONNECT_CODES.has(code)
            ? new ProxyError(
                "LINTEL_CONNECT",
                `cannot connect to ${where} for ${this.service}: ${code || err.message}`,
              )
            : code.startsWith("ERR_SSL_")
              ? // TLS broke after the handshake, e.g. TLS 1.3 upstreams refuse a client certificate only then.
                new ProxyError(
                  "LINTEL_UPSTREAM_TLS",
                  `TLS to ${where} failed before answering for ${this.service}: ${openSslErrorText(err)}`,
                )
              : new ProxyError(
                  "LINTEL_UPSTREAM",
                  `${where} failed before answering for ${this.service}: ${err.message}`,
                );
      this.outcome.status = e.status;
      this.outcome.error = e.code;
      this.respondError(this.ex, e);
    }
    this.done();
  }

  private done(): void {
    if (this.finished) return;
    this.finished = true;
    this.endpoint.release();
    this.onDone(this);
  }
}
