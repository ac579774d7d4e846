// One HTTP/2 stream as the router sees every request (ServerExchange). `:authority`
// becomes `host` (RFC 9113 §8.3.1), so identifiers and checks read HTTP/2 requests as they
// read HTTP/1 ones. Responses are sent with the stream's own framing; trailers go out when
// the client said it takes them (`te: trailers`, as gRPC clients do).

import type { X509Certificate } from "node:crypto";
import {
  constants,
  type Http2Session,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { Readable } from "node:stream";
import type { ServerExchange } from "../../http/exchange.js";
import { H2_CONNECTION_SPECIFIC } from "../../http/headers.js";

const ignore = () => {};

/**
 * What every stream of a connection shares, read once from the real socket (a session's
 * `socket` is a proxy object, slow to read and unknown to the PROXY-header map).
 */
export interface H2Connection {
  /** The TLS client certificate of the connection, if any (the same object each time). */
  peerCertificate(): X509Certificate | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  /** The client: the peer, or the one a PROXY header from an allowed peer named. */
  readonly clientAddress: string;
  readonly clientPort: number;
}

/** The largest first chunk held back to leave with the end of the response. */
const HOLD_BYTES = 16 * 1024;

const flushHeld = (ex: H2Exchange) => ex.flush();

export class H2Exchange implements ServerExchange {
  readonly method: string;
  readonly url: string;
  readonly httpVersion = "2.0";
  headers: readonly string[];
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly clientAddress: string;
  readonly clientPort: number;
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
  /** A small first body chunk, held with the head until the end or the next tick. */
  private held: Buffer | undefined;
  /** Draining: the session ends once this response is out. */
  private closeSession = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    raw: readonly string[],
    /** The connection the stream came on (read once per connection, from its socket). */
    private readonly conn: H2Connection,
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
    this.remoteAddress = conn.remoteAddress;
    this.remotePort = conn.remotePort;
    this.localAddress = conn.localAddress;
    this.localPort = conn.localPort;
    this.secure = conn.secure;
    this.clientAddress = conn.clientAddress;
    this.clientPort = conn.clientPort;
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

  replaceHeaders(headers: readonly string[]): void {
    this.headers = headers;
  }

  body(): Readable {
    return this.stream;
  }

  peerCertificate(): X509Certificate | undefined {
    return this.conn.peerCertificate();
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
    // The stream may keep the chunk queued; its memory is the caller's to reuse.
    const copy = Buffer.from(chunk);
    if (this.head !== undefined && this.held === undefined && copy.length <= HOLD_BYTES) {
      // A small first chunk waits for the end in the same turn (a whole small response
      // arrives in one upstream read): head and body then leave as HEADERS and one DATA
      // frame ending the stream. Otherwise it goes out on the next tick.
      this.held = copy;
      process.nextTick(flushHeld, this);
      return true;
    }
    this.flush();
    return this.stream.write(copy);
  }

  /** Sends the held head and first chunk, if they are still held. */
  flush(): void {
    if (this.finished || this.stream.destroyed) return;
    this.sendHead(false);
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      this.stream.write(held);
    }
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
    const held = this.held;
    this.held = undefined;
    if (this.head !== undefined) this.sendHead(!withTrailers && held === undefined);
    if (this.waitingForTrailers) {
      stream.once("wantTrailers", () => stream.sendTrailers(trailerObject(trailers)));
    }
    if (!stream.writableEnded) {
      if (held !== undefined) stream.end(held);
      else stream.end();
    }
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
    if (H2_CONNECTION_SPECIFIC.has(name)) continue;
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
    if (H2_CONNECTION_SPECIFIC.has(name)) continue;
    out[name] = trailers[i + 1]!;
  }
  return out;
}
