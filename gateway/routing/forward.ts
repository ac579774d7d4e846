// Sends one request upstream and streams the answer back. One handler object per
// request carries the whole exchange (no closures per request on the data path): undici
// calls it as the response arrives; a slow client pauses the upstream read, a client
// that goes away aborts the upstream request, an upstream that dies mid-response
// truncates the client's response rather than leaving it hanging.

import type { Dispatcher } from "undici";
import type { Endpoint } from "../client/endpoint.js";
import { ProxyError } from "../http/errors.js";
import type { ServerExchange } from "../http/exchange.js";
import { appendVia, HOP_BY_HOP } from "../http/headers.js";

type Controller = Dispatcher.DispatchController;

export interface ForwardPolicy {
  /** Drop every l5d-* header from the response (clearContext servers). */
  readonly clearContext: boolean;
  /** The engine writes its own Date header (uws): do not pass the upstream's. */
  readonly engineWritesDate: boolean;
}

export interface ForwardOutcome {
  status: number;
  bytes: number;
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

/** Builds the response head for the client from the upstream's. */
function responseHeaders(
  headers: Record<string, string | string[] | undefined>,
  policy: ForwardPolicy,
): { out: string[]; length: number | undefined } {
  const out: string[] = [];
  let length: number | undefined;
  let via: string[] | undefined;
  let listed: Set<string> | undefined;
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const v of Array.isArray(connection) ? connection : [connection]) {
      listed ??= new Set();
      for (const t of v.split(",")) listed.add(t.trim().toLowerCase());
    }
  }
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    if (name === "content-length") {
      length = Number(Array.isArray(value) ? value[0] : value);
      continue;
    }
    if (name === "via") {
      via = Array.isArray(value) ? value : [value];
      continue;
    }
    if (policy.clearContext && name.startsWith("l5d-")) continue;
    if (policy.engineWritesDate && name === "date") continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  out.push("via", appendVia(via ?? []));
  return { out, length };
}

export class ForwardHandler implements Dispatcher.DispatchHandler {
  private controller: Controller | undefined;
  private started = false;
  private finished = false;
  readonly outcome: ForwardOutcome = { status: 0, bytes: 0 };

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
    this.controller?.abort(new Error("the client closed the connection"));
  };

  private readonly resume = () => {
    this.controller?.resume();
  };

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.ex.aborted) controller.abort(new Error("the client closed the connection"));
  }

  onResponseStart(
    _controller: Controller,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    // 1xx answers (other than the final one) are not forwarded: the engine sent 100 Continue.
    if (statusCode < 200) return;
    this.started = true;
    this.outcome.status = statusCode;
    const { out, length } = responseHeaders(headers, this.policy);
    this.ex.writeHead(statusCode, out, length);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.outcome.bytes += chunk.length;
    if (!this.ex.write(chunk)) {
      controller.pause();
      this.ex.onWritable(this.resume);
    }
  }

  onResponseEnd(
    _controller: Controller,
    trailers: Record<string, string | string[] | undefined>,
  ): void {
    let t: string[] | undefined;
    for (const name in trailers) {
      const v = trailers[name];
      if (v === undefined) continue;
      t ??= [];
      t.push(name, Array.isArray(v) ? v.join(", ") : v);
    }
    this.ex.end(t);
    this.done();
  }

  onResponseError(_controller: Controller, err: Error): void {
    if (this.ex.aborted) {
      this.outcome.status = this.outcome.status || 499;
    } else if (this.started) {
      // The answer is half sent: cut the connection so the client sees it truncated.
      this.ex.destroy();
    } else {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      const where = this.endpoint.key;
      const e = CONNECT_CODES.has(code)
        ? new ProxyError(
            "LINTEL_CONNECT",
            `cannot connect to ${where} for ${this.service}: ${code || err.message}`,
          )
        : new ProxyError(
            "LINTEL_UPSTREAM",
            `${where} failed before answering for ${this.service}: ${code || err.message}`,
          );
      this.outcome.status = e.status;
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
