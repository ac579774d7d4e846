// One request on a net-engine connection, as the router sees every request
// (ServerExchange). The response is written straight to the socket: the head waits for
// the first body bytes (or the end) so a small response leaves in one write, and chunked
// framing is added where the length is not known in advance.

import type { X509Certificate } from "node:crypto";
import type { Readable } from "node:stream";
import { originForm, type ServerExchange } from "../../http/exchange.js";
import { takeBuffer } from "./output-buffers.js";
import { RequestBody } from "./request-body.js";
import { Framing, type RequestHead } from "./request-head.js";
import { BodyFraming, lastChunk, responseHead } from "./response-head.js";

/** What an exchange needs of its connection. */
export interface ExchangeConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly condemned: boolean;
  /** The TLS client certificate of the connection, if any (the same object each time). */
  peerCertificate(): X509Certificate | undefined;
  /** Writes response bytes; false when the socket's buffer is full. */
  send(data: Buffer | string): boolean;
  /** Writes the first `length` bytes of a buffer from takeBuffer (given back once written). */
  sendBuffer(buf: Buffer, length: number): boolean;
  onDrain(cb: () => void): void;
  /** The response is complete: keep the connection for the next request, or close it. */
  responded(ex: NetExchange, close: boolean): void;
  /** Closes the connection now (a response cut short). */
  kill(): void;
  condemn(): void;
  pauseBody(): void;
  resumeBody(): void;
}

const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";
const CRLF = "\r\n";

export class NetExchange implements ServerExchange {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  headers: readonly string[];
  readonly contentLength: number | undefined;
  readonly hasBody: boolean;
  aborted = false;
  private abortHandlers: (() => void)[] | undefined;
  /** Body bytes that came before the router asked for the body. */
  private early: Buffer[] | undefined;
  private bodyEnded: boolean;
  private stream: RequestBody | undefined;
  /** The response head, until the first body bytes or the end go with it. */
  private pendingHead: string | undefined;
  private framing: BodyFraming = BodyFraming.None;
  private headSent = false;
  private finished = false;
  private closeAfter: boolean;

  constructor(
    private readonly conn: ExchangeConnection,
    private readonly head: RequestHead,
  ) {
    this.method = head.method;
    this.httpVersion = head.version;
    this.closeAfter = !head.keepAlive;
    const request = originForm(head.target, head.headers);
    this.url = request.url;
    this.headers = request.headers;
    this.contentLength = head.framing === Framing.Length ? head.length : undefined;
    if (head.framing === Framing.None) {
      // RFC 9110 §8.6: a Content-Length of 0 is a length all the same.
      if (this.contentLength === undefined && hasZeroLength(head.headers)) this.contentLength = 0;
      this.hasBody = false;
      this.bodyEnded = true;
    } else {
      this.hasBody = true;
      this.bodyEnded = false;
    }
  }

  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }
  get remotePort(): number {
    return this.conn.remotePort;
  }
  get clientAddress(): string {
    return this.conn.clientAddress;
  }
  get clientPort(): number {
    return this.conn.clientPort;
  }
  get localAddress(): string {
    return this.conn.localAddress;
  }
  get localPort(): number {
    return this.conn.localPort;
  }
  get secure(): boolean {
    return this.conn.secure;
  }
  peerCertificate(): X509Certificate | undefined {
    return this.conn.peerCertificate();
  }
  get condemned(): boolean {
    return this.conn.condemned;
  }
  /** The whole request body has been read off the connection. */
  get bodyComplete(): boolean {
    return this.bodyEnded;
  }
  get done(): boolean {
    return this.finished;
  }

  replaceHeaders(headers: readonly string[]): void {
    this.headers = headers;
  }

  // --- the request body, fed by the connection ---

  onBody(chunk: Buffer): void {
    if (this.stream !== undefined) this.stream.feed(chunk);
    else {
      // Nobody reads yet: keep a copy, and stop reading the socket past a bound.
      this.early ??= [];
      this.early.push(Buffer.from(chunk));
      if (this.early.length === 16) this.conn.pauseBody();
    }
  }

  onBodyEnd(): void {
    this.bodyEnded = true;
    this.stream?.push(null);
  }

  body(): Readable {
    if (this.stream !== undefined) return this.stream;
    const stream = new RequestBody(this.conn);
    this.stream = stream;
    // RFC 9110 §10.1.1: the client waits for 100 Continue before it sends the body; it is
    // sent once the request is routed (a refused request is answered without it).
    if (this.head.expectsContinue && !this.headSent && this.pendingHead === undefined)
      this.conn.send(CONTINUE);
    const early = this.early;
    if (early !== undefined) {
      this.early = undefined;
      for (const c of early) stream.push(c);
      if (early.length >= 16) this.conn.resumeBody();
    }
    if (this.bodyEnded) stream.push(null);
    return stream;
  }

  // --- the client going away ---

  /** The connection closed: an unfinished exchange is aborted. */
  connectionClosed(): void {
    if (!this.bodyEnded) this.stream?.destroy(new Error("the client closed the connection"));
    if (this.finished || this.aborted) return;
    this.aborted = true;
    const handlers = this.abortHandlers;
    this.abortHandlers = undefined;
    if (handlers) for (const h of handlers) h();
  }

  /**
   * The request's body turned out malformed: whatever the router still does with this
   * exchange is dropped. True when nothing of the response went out yet (the connection
   * may still answer 400).
   */
  abandon(): boolean {
    const untouched = !this.headSent;
    this.finished = true;
    if (!this.bodyEnded) this.stream?.destroy(new Error("the request body is malformed"));
    if (!this.aborted) {
      this.aborted = true;
      const handlers = this.abortHandlers;
      this.abortHandlers = undefined;
      if (handlers) for (const h of handlers) h();
    }
    return untouched;
  }

  onAbort(cb: () => void): void {
    if (this.aborted) cb();
    else {
      this.abortHandlers ??= [];
      this.abortHandlers.push(cb);
    }
  }

  // --- the response ---

  writeHead(status: number, headers: readonly string[], length: number | undefined): void {
    if (this.finished) return;
    let connection = "";
    const bodiless =
      this.method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
    let framing: BodyFraming;
    if (status === 204 || status === 304 || (status >= 100 && status < 200))
      framing = BodyFraming.None;
    else if (length !== undefined) framing = BodyFraming.Length;
    else if (this.method === "HEAD") framing = BodyFraming.None;
    else if (this.httpVersion === "1.1") framing = BodyFraming.Chunked;
    else {
      // An HTTP/1.0 client: the body runs until the connection closes.
      framing = BodyFraming.Close;
      this.closeAfter = true;
    }
    if (this.closeAfter) connection = "close";
    else if (this.httpVersion === "1.0") connection = "keep-alive";
    this.pendingHead = responseHead(status, headers, framing, length ?? 0, connection);
    // A HEAD response keeps its Content-Length but sends no body.
    this.framing = bodiless ? BodyFraming.None : framing;
  }

  write(chunk: Buffer): boolean {
    if (this.finished) return true;
    const framing = this.framing;
    if (framing === BodyFraming.None) return true;
    if (chunk.length === 0) return true;
    // The chunk is the upstream's read buffer: copied out (with the head, when it is still
    // held) into one buffer, so a response leaves in one write.
    const head = this.takeHead();
    const headLen = head === undefined ? 0 : head.length;
    if (framing === BodyFraming.Chunked) {
      const size = `${chunk.length.toString(16)}\r\n`;
      const total = headLen + size.length + chunk.length + 2;
      const out = takeBuffer(total);
      if (head !== undefined) out.write(head, 0, "latin1");
      out.write(size, headLen, "latin1");
      chunk.copy(out, headLen + size.length);
      out.write(CRLF, total - 2, "latin1");
      return this.conn.sendBuffer(out, total);
    }
    const total = headLen + chunk.length;
    const out = takeBuffer(total);
    if (head !== undefined) out.write(head, 0, "latin1");
    chunk.copy(out, headLen);
    return this.conn.sendBuffer(out, total);
  }

  onWritable(cb: () => void): void {
    this.conn.onDrain(cb);
  }

  end(trailers?: readonly string[]): void {
    if (this.finished) return;
    const head = this.takeHead();
    if (this.framing === BodyFraming.Chunked) {
      const last = lastChunk(trailers);
      this.conn.send(head === undefined ? last : head + last);
    } else if (head !== undefined) this.conn.send(head);
    this.finish();
  }

  respond(status: number, headers: readonly string[], body: Buffer): void {
    if (this.finished) return;
    this.writeHead(status, headers, body.length);
    if (body.length > 0) this.write(body);
    this.end();
  }

  destroy(): void {
    if (this.finished) return;
    this.finished = true;
    this.conn.kill();
  }

  closeAfterResponse(refuseRest = false): void {
    this.closeAfter = true;
    if (refuseRest) this.conn.condemn();
  }

  private takeHead(): string | undefined {
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      this.headSent = true;
    }
    return head;
  }

  private finish(): void {
    this.finished = true;
    // A close-delimited body ends with the connection; an unread body leaves the next
    // request's start unknown.
    const close = this.closeAfter || this.framing === BodyFraming.Close || !this.bodyEnded;
    this.conn.responded(this, close);
  }
}

/** Whether the head has a `content-length: 0` field (a body of no bytes, but a length). */
function hasZeroLength(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === "content-length") return true;
  return false;
}
