// One keep-alive HTTP/1.1 connection to an upstream: writes a request (head, then the
// body with backpressure, chunked when its length is unknown), parses the response with
// ResponseParser and hands it to the request's handler, then goes back to its pool.
// One request at a time (no pipelining). All per-request state lives in fields; the
// socket's listeners are bound once per connection.

import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { holdWrites } from "../../http/write-batching.js";
import {
  type ResponseEvents,
  type ResponseLimits,
  ResponseParseError,
  ResponseParser,
} from "./response-parser.js";

export interface UpstreamRequest {
  readonly method: string;
  /** Origin-form target. */
  readonly path: string;
  /** Flat [name, value, ...] with lower-case names; framing headers are added here. */
  readonly headers: readonly string[];
  readonly body: Readable | null;
  /** Length of `body` when known (sent as Content-Length); otherwise it is sent chunked. */
  readonly contentLength: number | undefined;
  /**
   * The router's limits on the response (maxResponseKB, maxChunkKB): one object per
   * router, made at its construction; none when undefined.
   */
  readonly responseLimits?: ResponseLimits;
}

export interface UpstreamControl {
  /** Gives up on the request: the connection is closed and the handler gets onError. */
  abort(err: Error): void;
  /** Continues delivering the response after onData returned false. */
  resume(): void;
}

/** What a request's sender is told, in order: onStart, onHead, onData*, onEnd — or onError. */
export interface UpstreamHandler {
  onStart(control: UpstreamControl): void;
  onHead(status: number, headers: string[]): void;
  /**
   * Return false to pause until control.resume(). `chunk` is valid only during the call
   * (the connection reads into a buffer it reuses): copy whatever is kept past it.
   */
  onData(chunk: Buffer): boolean;
  onEnd(trailers: string[] | undefined): void;
  onError(err: Error): void;
}

export interface ConnectionOwner {
  /** The connection finished a request and can take another. */
  release(conn: Http1Connection): void;
  /** The connection is gone. */
  remove(conn: Http1Connection): void;
  /**
   * A request failed on a reused connection before any answer: the upstream had closed
   * it while idle. Returns true if the owner sends the request again on a new one.
   */
  retryStale(req: UpstreamRequest, handler: UpstreamHandler, err: Error): boolean;
}

const CHUNK_END = Buffer.from("0\r\n\r\n");
/** Methods a proxy may send again when a reused connection died before answering (RFC 9110 §9.2.2). */
const REPEATABLE = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const CRLF = "\r\n";

export class Http1Connection implements UpstreamControl, ResponseEvents {
  private readonly parser = new ResponseParser();
  private handler: UpstreamHandler | undefined;
  private req: UpstreamRequest | undefined;
  private leftover: Buffer | undefined;
  /** The handler asked to pause; bytes that still arrive (TLS) wait in `leftover`. */
  private readPaused = false;
  private bodySending = false;
  private chunked = false;
  private closed = false;
  /** Requests this connection has carried. */
  uses = 0;
  lastUsed = 0;

  constructor(
    readonly socket: Socket,
    private readonly owner: ConnectionOwner,
    /** `host:port` for requests that carry no Host header. */
    private readonly authority: string,
  ) {
    // Bytes arrive through received(): the pool opens sockets with `onread`.
    socket.on("close", this.onSocketClose);
    socket.on("error", this.onSocketError);
    socket.on("drain", this.onSocketDrain);
  }

  get busy(): boolean {
    return this.handler !== undefined;
  }

  send(req: UpstreamRequest, handler: UpstreamHandler): void {
    this.uses++;
    this.handler = handler;
    this.req = req;
    this.leftover = undefined;
    this.readPaused = false;
    this.parser.expect(req.method, this, req.responseLimits);
    const h = req.headers;
    let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
    let hasHost = false;
    for (let i = 0; i < h.length; i += 2) {
      // Names and values come from a parsed request or from lintel itself: no CR or LF.
      head += `${h[i]}: ${h[i + 1]}${CRLF}`;
      if (h[i] === "host") hasHost = true;
    }
    if (!hasHost) head += `host: ${this.authority}${CRLF}`;
    const body = req.body;
    this.chunked = body !== null && req.contentLength === undefined;
    if (this.chunked) head += `transfer-encoding: chunked${CRLF}`;
    head += CRLF;
    handler.onStart(this);
    if (this.handler !== handler) return; // aborted in onStart
    holdWrites(this.socket, head.length);
    this.socket.write(head, "latin1");
    if (body) {
      this.bodySending = true;
      body.on("data", this.onBodyData);
      body.on("end", this.onBodyEnd);
      body.on("error", this.onBodyError);
    }
  }

  // ---- request body ----

  private readonly onBodyData = (chunk: Buffer) => {
    let ok: boolean;
    if (this.chunked) {
      if (chunk.length === 0) return;
      this.socket.cork();
      this.socket.write(`${chunk.length.toString(16)}\r\n`, "latin1");
      this.socket.write(chunk);
      ok = this.socket.write(CRLF, "latin1");
      this.socket.uncork();
    } else {
      ok = this.socket.write(chunk);
    }
    if (!ok) this.req?.body?.pause();
  };

  private readonly onSocketDrain = () => {
    if (this.bodySending) this.req?.body?.resume();
  };

  private readonly onBodyEnd = () => {
    if (this.chunked) this.socket.write(CHUNK_END);
    this.stopBody(false);
    if (this.handler === undefined && !this.closed) this.reuseOrClose();
  };

  private readonly onBodyError = (err: Error) => {
    this.stopBody(false);
    this.abort(err);
  };

  /** Detaches from the request body; with `drain`, lets the rest of it flow away unread. */
  private stopBody(drain: boolean): void {
    const body = this.req?.body;
    if (!body || !this.bodySending) return;
    this.bodySending = false;
    body.off("data", this.onBodyData);
    body.off("end", this.onBodyEnd);
    body.off("error", this.onBodyError);
    if (drain) body.resume();
  }

  // ---- response ----

  /**
   * Bytes read on the socket, opened with `onread` (valid only during the call). A TLS
   * socket still delivers what it had decrypted after pause(): that is kept for resume().
   */
  received(buf: Buffer): void {
    if (this.readPaused) {
      this.leftover = this.leftover ? Buffer.concat([this.leftover, buf]) : Buffer.from(buf);
      return;
    }
    if (this.handler === undefined) {
      // An idle connection the upstream writes on is out of step: drop it.
      this.destroy();
      return;
    }
    this.feed(buf);
  }

  private feed(buf: Buffer): void {
    try {
      const rest = this.parser.feed(buf);
      if (rest !== undefined) {
        // Kept past this read: copied out of a reused read buffer.
        this.leftover = Buffer.from(rest);
        this.pauseReading();
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }

  onHead(status: number, headers: string[]): void {
    this.handler?.onHead(status, headers);
  }

  onBody(chunk: Buffer): boolean {
    const h = this.handler;
    if (!h) return true;
    if (h.onData(chunk)) return true;
    this.pauseReading();
    return false;
  }

  onEnd(trailers: string[] | undefined): void {
    const h = this.handler;
    this.handler = undefined;
    if (!h) return;
    h.onEnd(trailers);
    // The upstream answered before the whole request body went out (an early 4xx, say):
    // the rest of the body is not read, and the connection cannot be reused.
    if (this.bodySending) {
      this.stopBody(true);
      this.destroy();
      return;
    }
    if (!this.closed) this.reuseOrClose();
  }

  private reuseOrClose(): void {
    if (this.parser.keepAlive && this.leftover === undefined) {
      this.lastUsed = Date.now();
      this.readPaused = false;
      this.socket.resume();
      this.owner.release(this);
    } else {
      this.destroy();
    }
  }

  resume(): void {
    if (this.handler === undefined && this.leftover === undefined) return;
    this.readPaused = false;
    const rest = this.leftover;
    this.leftover = undefined;
    if (rest) this.feed(rest);
    if (!this.readPaused && !this.closed) this.socket.resume();
  }

  private pauseReading(): void {
    this.readPaused = true;
    this.socket.pause();
  }

  abort(err: Error): void {
    if (this.handler === undefined) return;
    this.fail(err);
  }

  private fail(err: Error): void {
    const h = this.handler;
    const req = this.req;
    this.handler = undefined;
    this.stopBody(false);
    this.destroy();
    if (!h || !req) return;
    // A reused connection that fails before any answer was most likely closed by the
    // upstream while idle. Requests that are safe to repeat go again on a new connection.
    const stale =
      this.uses > 1 &&
      !this.parser.started &&
      (!(err instanceof ResponseParseError) || err.beforeAnswer);
    if (
      stale &&
      req.body === null &&
      REPEATABLE.has(req.method) &&
      this.owner.retryStale(req, h, err)
    )
      return;
    h.onError(err);
  }

  private readonly onSocketError = (err: Error) => {
    if (this.handler) this.fail(err);
  };

  private readonly onSocketClose = () => {
    if (this.closed) return;
    this.closed = true;
    if (this.handler) {
      try {
        this.parser.closed();
      } catch (e) {
        this.fail(e as Error);
      }
    }
    this.owner.remove(this);
  };

  destroy(): void {
    if (!this.socket.destroyed) this.socket.destroy();
    if (!this.closed) {
      this.closed = true;
      this.owner.remove(this);
    }
  }
}
