// One HTTP/2 stream as the router sees every request (ServerExchange). `:authority`
// becomes `host` (RFC 9113 §8.3.1), so identifiers and checks read HTTP/2 requests as they
// read HTTP/1 ones. Responses are sent with the stream's own framing; trailers go out when
// the client said it takes them (`te: trailers`, as gRPC clients do).

import {
  constants,
  type Http2Session,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { ServerExchange } from "../../http/exchange.js";

/** Fields HTTP/2 forbids in a response (RFC 9113 §8.2.2); Node refuses to send them. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

const ignore = () => {};

export class H2Exchange implements ServerExchange {
  readonly method: string;
  readonly url: string;
  readonly httpVersion = "2.0";
  readonly headers: readonly string[];
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly contentLength: number | undefined;
  readonly hasBody: boolean;
  readonly condemned = false;
  aborted = false;
  private abortHandlers: (() => void)[] | undefined;
  private finished = false;
  /** The client takes trailers: the response waits for them before it ends the stream. */
  private readonly trailersWanted: boolean;
  private waitingForTrailers = false;
  /** The response head, held until the body's first bytes or the end. */
  private head: OutgoingHttpHeaders | undefined;
  /** Draining: the session ends once this response is out. */
  private closeSession = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    raw: readonly string[],
    readonly clientAddress: string,
    readonly clientPort: number,
    /** Called once the response is complete (the session may close after it). */
    private readonly onDone: (session: Http2Session | undefined, closeSession: boolean) => void,
  ) {
    let method = "GET";
    let path = "/";
    let authority: string | undefined;
    let hasHost = false;
    let length: number | undefined;
    let trailers = false;
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      if (name.charCodeAt(0) === 58) {
        if (name === ":method") method = value;
        else if (name === ":path") path = value;
        else if (name === ":authority") authority = value;
        continue;
      }
      if (name === "host") hasHost = true;
      else if (name === "content-length") length = Number(value);
      else if (name === "te") trailers = value.toLowerCase().includes("trailers");
      headers.push(name, value);
    }
    if (authority !== undefined && !hasHost) headers.push("host", authority);
    this.method = method;
    this.url = path;
    this.headers = headers;
    this.contentLength = length;
    this.hasBody = !stream.endAfterHeaders;
    this.trailersWanted = trailers;
    const socket = stream.session?.socket;
    this.remoteAddress = socket?.remoteAddress ?? "";
    this.remotePort = socket?.remotePort ?? 0;
    this.localAddress = socket?.localAddress ?? "";
    this.localPort = socket?.localPort ?? 0;
    this.secure = (socket as TLSSocket | undefined)?.encrypted === true;
    stream.on("error", ignore);
    stream.once("close", this.onClose);
  }

  private readonly onClose = () => {
    if (this.finished) return;
    this.finished = true;
    this.aborted = true;
    const handlers = this.abortHandlers;
    this.abortHandlers = undefined;
    if (handlers) for (const h of handlers) h();
  };

  body(): Readable {
    return this.stream;
  }

  onAbort(cb: () => void): void {
    if (this.aborted) cb();
    else {
      this.abortHandlers ??= [];
      this.abortHandlers.push(cb);
    }
  }

  writeHead(status: number, headers: readonly string[], length: number | undefined): void {
    if (this.finished || this.stream.headersSent) return;
    const out = toObject(status, headers);
    if (length !== undefined) out["content-length"] = length;
    const bodiless = this.method === "HEAD" || status === 204 || status === 304;
    if (bodiless) this.stream.respond(out, { endStream: true });
    // Sent with the first body bytes or the end: a response with neither body nor
    // trailers goes out as one HEADERS frame ending the stream (gRPC's trailers-only form).
    else this.head = out;
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.stream.destroyed) return true;
    this.sendHead(false);
    // The stream may keep the chunk queued; its memory is the caller's to reuse.
    return this.stream.write(Buffer.from(chunk));
  }

  /** Sends the held head: ending the stream, or leaving it open for a body (and trailers). */
  private sendHead(last: boolean): void {
    const head = this.head;
    if (head === undefined) return;
    this.head = undefined;
    this.waitingForTrailers = !last && this.trailersWanted;
    this.stream.respond(head, { endStream: last, waitForTrailers: this.waitingForTrailers });
  }

  onWritable(cb: () => void): void {
    this.stream.once("drain", cb);
  }

  end(trailers?: readonly string[]): void {
    if (this.finished) return;
    const stream = this.stream;
    const withTrailers = trailers !== undefined && trailers.length > 0 && this.trailersWanted;
    if (this.head !== undefined) this.sendHead(!withTrailers);
    if (this.waitingForTrailers) {
      stream.once("wantTrailers", () => stream.sendTrailers(trailerObject(trailers)));
    }
    if (!stream.writableEnded) stream.end();
    this.done();
  }

  respond(status: number, headers: readonly string[], body: Buffer): void {
    if (this.finished || this.stream.headersSent) return;
    const out = toObject(status, headers);
    out["content-length"] = body.length;
    this.stream.respond(out, { endStream: body.length === 0 || this.method === "HEAD" });
    if (body.length > 0 && this.method !== "HEAD") this.stream.end(body);
    this.done();
  }

  destroy(): void {
    if (this.finished) return;
    this.finished = true;
    this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  /** Draining: the session ends (GOAWAY) once its streams are done. A stream's framing cannot taint others. */
  closeAfterResponse(refuseRest = false): void {
    if (!refuseRest) this.closeSession = true;
  }

  private done(): void {
    this.finished = true;
    this.onDone(this.stream.session, this.closeSession);
  }
}

/** A response head as Node's HTTP/2 API takes it; repeated names become lists. */
function toObject(status: number, headers: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ":status": status };
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (CONNECTION_SPECIFIC.has(name)) continue;
    const value = headers[i + 1]!;
    const had = out[name];
    if (had === undefined) out[name] = value;
    else if (Array.isArray(had)) had.push(value);
    else out[name] = [String(had), value];
  }
  return out;
}

function trailerObject(trailers: readonly string[] | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (trailers === undefined) return out;
  for (let i = 0; i < trailers.length; i += 2) {
    const name = trailers[i]!;
    if (CONNECTION_SPECIFIC.has(name)) continue;
    out[name] = trailers[i + 1]!;
  }
  return out;
}
