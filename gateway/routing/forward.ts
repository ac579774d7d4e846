// Writes the upstream's answer to the client, the top of the handler chain the layers
// below call as the response arrives (no closures per request on the data path): a slow
// client pauses the upstream read, a client that goes away aborts the upstream request,
// an upstream that dies mid-response truncates the client's response rather than leaving
// it hanging, and an error before any answer becomes lintel's error response. With
// compression (a router's compressionLevel, a compression layer), an eligible body goes
// through gzip or brotli (response-compression.ts).

import type { UpstreamControl, UpstreamHandler } from "../client/http1/connection.js";
import { ProxyError } from "../http/errors.js";
import type { ServerExchange } from "../http/exchange.js";
import { appendVia, HOP_BY_HOP } from "../http/headers.js";
import { CLIENT_CLOSED, RESPONSE_TRUNCATED } from "../telemetry/index.js";
import type {
  CompressedBody,
  CompressedBodyOwner,
  ResponseCompression,
} from "./response-compression.js";

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

/**
 * The response writer: the last handler of the request path, nearest the client. `C` is
 * what its owner keeps with it (the router's per-request state).
 */
export class ForwardHandler<C> implements UpstreamHandler, CompressedBodyOwner {
  private control: UpstreamControl | undefined;
  private started = false;
  private finished = false;
  /** The body goes to the client through gzip or brotli (set in onHead). */
  private compressed: CompressedBody | undefined;
  /** The upstream's response ended while its compressed body was still going out. */
  private upstreamDone = false;
  readonly outcome: ForwardOutcome = { status: 0, bytes: 0, error: "" };

  constructor(
    readonly ex: ServerExchange,
    private readonly policy: ForwardPolicy,
    private readonly respondError: (
      ex: ServerExchange,
      err: ProxyError,
      added: readonly string[] | undefined,
      ctx: C,
    ) => void,
    private readonly onDone: (h: ForwardHandler<C>) => void,
    readonly ctx: C,
    /** A compression layer's, or the router's compressionLevel; undefined: none. */
    private readonly compression?: ResponseCompression,
    /** Fields the layers add to the response (RateLimit, HSTS), flat. */
    private readonly added?: readonly string[],
    /** Upstream fields the layers drop (a responseHeaders layer's `set` and `remove`). */
    private readonly dropped?: ReadonlySet<string>,
  ) {
    ex.onAbort(this.clientGone);
  }

  private readonly clientGone = () => {
    if (this.upstreamDone) {
      // Only the compressed rest of the body was still going out.
      this.compressed?.destroy();
      if (!this.finished) {
        this.outcome.error = CLIENT_CLOSED;
        this.done();
      }
      return;
    }
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
    const dropped = this.dropped;
    if (dropped !== undefined)
      for (let i = out.length - 2; i >= 0; i -= 2) if (dropped.has(out[i]!)) out.splice(i, 2);
    if (this.added !== undefined) out.push(...this.added);
    if (this.compression !== undefined) {
      this.compressed = this.compression.begin(this.ex, status, out, length, this);
      if (this.compressed !== undefined) {
        this.ex.writeHead(status, out, undefined);
        return;
      }
    }
    this.ex.writeHead(status, out, length);
  }

  onData(chunk: Buffer): boolean {
    if (this.compressed !== undefined) return this.compressed.write(chunk);
    this.outcome.bytes += chunk.length;
    if (this.ex.write(chunk)) return true;
    this.ex.onWritable(this.resume);
    return false;
  }

  onEnd(trailers: string[] | undefined): void {
    if (this.compressed !== undefined) {
      // The client's response ends when zlib has given out the rest (compressedEnded).
      this.upstreamDone = true;
      this.compressed.end(trailers);
      return;
    }
    this.ex.end(trailers);
    this.done();
  }

  // ---- CompressedBodyOwner: the zlib stream of a compressed response --------------------

  compressorDrained(): void {
    if (!this.upstreamDone && !this.finished) this.control?.resume();
  }

  compressedSent(bytes: number): void {
    this.outcome.bytes += bytes;
  }

  compressedEnded(err: Error | undefined): void {
    if (err === undefined) {
      this.done();
      return;
    }
    // zlib failed: the client's response is cut, like an upstream dying mid-response.
    if (!this.upstreamDone) this.control?.abort(err);
    if (this.finished) return;
    this.outcome.error = RESPONSE_TRUNCATED;
    this.ex.destroy();
    this.done();
  }

  onError(err: Error): void {
    if (this.finished) return;
    this.compressed?.destroy();
    if (this.ex.aborted) {
      this.outcome.status = this.outcome.status || 499;
      this.outcome.error = CLIENT_CLOSED;
    } else if (this.started) {
      // The answer is half sent: cut the connection so the client sees it truncated.
      this.outcome.error = RESPONSE_TRUNCATED;
      this.ex.destroy();
    } else {
      const e = err instanceof ProxyError ? err : new ProxyError("LINTEL_UPSTREAM", err.message);
      this.outcome.status = e.status;
      this.outcome.error = e.code;
      this.respondError(this.ex, e, this.added, this.ctx);
    }
    this.done();
  }

  private done(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone(this);
  }
}
