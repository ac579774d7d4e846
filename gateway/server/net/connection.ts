// One HTTP/1.x connection on the net engine: reads request heads with lintel's own parser,
// feeds bodies by their framing, hands each request to the router as a NetExchange, and
// answers pipelined requests in order (RFC 9112 §9.3.2) by holding the bytes of the next
// one until the current response is complete. A head it cannot read one way is answered
// with its 4xx and the connection closed; nothing after it is read.

import type { X509Certificate } from "node:crypto";
import type { Socket } from "node:net";
import { ProxyError } from "../../http/errors.js";
import { originForm } from "../../http/exchange.js";
import { peerCertificateOf } from "../../http/forwarded-client-cert.js";
import { writeRawError } from "../../http/raw-error.js";
import { holdWrites, releaseWrites } from "../../http/write-batching.js";
import { H2_PREFACE } from "../h2/h2-side.js";
import type { TunnelRequest } from "../listener.js";
import { BodyDecoder } from "./body-decoder.js";
import { type ExchangeConnection, NetExchange } from "./exchange.js";
import { upgradeToH2c, wantsH2c } from "./h2c-upgrade.js";
import { isPooled, releaseBuffer } from "./output-buffers.js";
import { Framing, parseRequestHead, type RequestHead, RequestHeadError } from "./request-head.js";

/** What a connection needs from its listener. */
export interface ConnectionHost {
  readonly maxHeaderBytes: number;
  readonly handler: (ex: NetExchange) => void;
  /** Takes over CONNECT requests; without it they are refused with 405. */
  readonly onConnect: ((request: TunnelRequest) => void) | undefined;
  /** Takes over Upgrade requests; without it they are served as plain requests. */
  readonly onUpgrade: ((request: TunnelRequest) => void) | undefined;
  /** Takes over a connection that opens with the HTTP/2 preface (with the bytes read). */
  readonly http2: ((socket: Socket, first: Buffer) => void) | undefined;
  /** The connection is done with its socket (closed, or taken over by a tunnel). */
  released(conn: Http1Connection): void;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Pipelined bytes held while a response is in progress before the socket is paused. */
const MAX_HELD_BYTES = 64 * 1024;
/** How long a client that asked for h2c has to send its HTTP/2 preface after the 101. */
const H2C_PREFACE_WAIT_MS = 10_000;

/** Why reading is paused (bits): the body's reader is slow, or requests are held. */
const PAUSED_BODY = 1;
const PAUSED_HELD = 2;

const STATUS_CODE: Record<RequestHeadError["status"], ProxyError["code"]> = {
  400: "LINTEL_BAD_REQUEST",
  431: "LINTEL_HEADERS_TOO_LARGE",
  505: "LINTEL_VERSION_NOT_SUPPORTED",
};

/** The connection a socket's events go to (one shared listener per event, not a closure each). */
const CONNECTION = Symbol("lintel.http1-connection");
type ServedSocket = Socket & { [CONNECTION]?: Http1Connection };

function onSocketData(this: ServedSocket, chunk: Buffer): void {
  this[CONNECTION]?.received(chunk);
}
function onSocketEnd(this: ServedSocket): void {
  this[CONNECTION]?.peerEnd();
}
function onSocketClose(this: ServedSocket): void {
  this[CONNECTION]?.socketClosed();
}

// An idle keep-alive connection costs what this object and its socket hold: listeners are
// shared functions, addresses are read from the socket when asked for.
export class Http1Connection implements ExchangeConnection {
  condemned = false;
  /** The TLS client certificate, once asked for (null: none). */
  private peerCert: X509Certificate | null | undefined;
  /** Sweeps of the listener's timer since the connection last made progress. */
  idleTicks = 0;
  /** The bytes of the next head are arriving (its time is counted by headersTimeoutMs). */
  inHead = false;
  private pending: Buffer | undefined;
  private current: NetExchange | undefined;
  private decoder: BodyDecoder | undefined;
  private parsing = false;
  private paused = 0;
  /** Request heads read on this connection. */
  private requests = 0;
  /** Pooled buffers the socket is writing, oldest first (made with the first one). */
  private inflight: Buffer[] | undefined;
  /** A pooled buffer the socket wrote goes back (one that failed is left to the GC). */
  private written: ((err?: Error | null) => void) | undefined;
  private closing = false;
  /** The client sent FIN: answer what it asked, then close. */
  private peerEnded = false;

  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
    readonly clientAddress: string,
    readonly clientPort: number,
    readonly secure: boolean,
    first: Buffer | undefined,
  ) {
    (socket as ServedSocket)[CONNECTION] = this;
    socket.on("data", onSocketData);
    socket.on("end", onSocketEnd);
    socket.on("error", ignore);
    socket.on("close", onSocketClose);
    if (first !== undefined && first.length > 0) this.received(first);
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? "";
  }
  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }
  get localAddress(): string {
    return this.socket.localAddress ?? "";
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  /** No request in progress and no bytes of one: the connection may be closed when idle. */
  get idle(): boolean {
    return this.current === undefined && this.pending === undefined;
  }

  /** Bytes read on the socket. */
  received(chunk: Buffer): void {
    let data: Buffer | undefined = chunk;
    const decoder = this.decoder;
    if (decoder !== undefined) {
      try {
        data = decoder.feed(chunk);
      } catch (e) {
        this.refuse(e);
        return;
      }
      if (data === undefined) return;
      this.decoder = undefined;
      if (data.length === 0) return;
    }
    if (this.closing) return;
    if (this.pending === undefined) {
      this.pending = data;
      if (this.current === undefined) {
        this.inHead = true;
        this.idleTicks = 0;
      }
    } else this.pending = Buffer.concat([this.pending, data]);
    if (this.current !== undefined) {
      // A pipelined request behind one in progress: hold it, within a bound.
      if (this.pending.length > MAX_HELD_BYTES) this.pause(PAUSED_HELD);
      return;
    }
    this.parse();
  }

  /** Reads heads from the pending bytes while no response is in progress. */
  private parse(): void {
    if (this.parsing) return;
    this.parsing = true;
    try {
      while (this.current === undefined && this.pending !== undefined && !this.closing) {
        if (!this.next(this.pending)) break;
      }
    } finally {
      this.parsing = false;
    }
    if (this.pending === undefined && this.current === undefined && this.peerEnded) this.close();
  }

  /** Starts the request at the head of `buf`; false when its head is not complete. */
  private next(input: Buffer): boolean {
    let buf = input;
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    let skip = 0;
    while (skip + 1 < buf.length && buf[skip] === 13 && buf[skip + 1] === 10) skip += 2;
    if (skip > 0) buf = buf.subarray(skip);
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0) {
      if (hasBareLf(buf)) {
        // RFC 9112 §2.2 allows reading a bare LF as a line end; an edge reads one way only.
        this.refuse(new RequestHeadError(400, "bare LF in the request head"));
        return false;
      }
      // Over the limit as soon as it can no longer end within it (its CRLFCRLF is 4 bytes,
      // one of them may have come): the same answer however the bytes were split.
      if (buf.length - 3 > this.host.maxHeaderBytes) {
        this.refuse(new RequestHeadError(431, "the request head is too large"));
        return false;
      }
      this.pending = buf;
      return false;
    }
    // Cleartext HTTP/2 with prior knowledge: the connection's first bytes are the preface.
    if (this.requests === 0 && buf[0] === 0x50 && this.host.http2 && startsWithPreface(buf)) {
      this.handOver();
      this.host.http2(this.socket, buf);
      return false;
    }
    let head: ReturnType<typeof parseRequestHead>;
    try {
      if (end > this.host.maxHeaderBytes)
        throw new RequestHeadError(431, "the request head is too large");
      head = parseRequestHead(buf, buf.toString("latin1", 0, end));
    } catch (e) {
      this.refuse(e);
      return false;
    }
    this.inHead = false;
    this.idleTicks = 0;
    this.requests++;
    let rest = buf.subarray(end + 4);
    if (this.host.http2 !== undefined && !this.secure && wantsH2c(head)) {
      this.upgradeToH2(head, rest);
      return false;
    }
    // An h2c upgrade not taken (TLS, a body, HTTP/2 off) is served in HTTP/1.1.
    const upgrade = head.upgrade !== "" && head.upgrade.toLowerCase() !== "h2c";
    if (head.method === "CONNECT" || (upgrade && this.host.onUpgrade !== undefined)) {
      this.tunnel(head.method, head.target, head.upgrade, head.version, head.headers, rest);
      return false;
    }
    const ex = new NetExchange(this, head);
    // Set before the body is fed: a malformed body abandons the exchange (answered 400).
    this.current = ex;
    if (head.framing !== Framing.None) {
      const decoder = new BodyDecoder(head.framing, head.length, ex, this.host.maxHeaderBytes);
      this.decoder = decoder;
      if (rest.length > 0) {
        try {
          const after = decoder.feed(rest);
          if (after === undefined) rest = EMPTY;
          else {
            this.decoder = undefined;
            rest = after;
          }
        } catch (e) {
          this.refuse(e);
          return false;
        }
      }
    }
    // What follows is the next request: kept until this one is answered.
    this.pending = rest.length === 0 ? undefined : rest;
    if (this.pending !== undefined && this.pending.length > MAX_HELD_BYTES) this.pause(PAUSED_HELD);
    this.host.handler(ex);
    return true;
  }

  // --- ExchangeConnection ---

  send(data: Buffer | string): boolean {
    const socket = this.socket;
    if (socket.destroyed) return true;
    holdWrites(socket, data.length);
    return typeof data === "string" ? socket.write(data, "latin1") : socket.write(data);
  }

  sendBuffer(buf: Buffer, length: number): boolean {
    const socket = this.socket;
    if (socket.destroyed) return true;
    const view = length === buf.length ? buf : buf.subarray(0, length);
    holdWrites(socket, length);
    if (!isPooled(buf)) return socket.write(view);
    // Writes complete in order: the oldest buffer in flight is the one written.
    this.inflight ??= [];
    const inflight = this.inflight;
    inflight.push(buf);
    this.written ??= (err?: Error | null): void => {
      const written = inflight.shift();
      if (written !== undefined && !err) releaseBuffer(written);
    };
    return socket.write(view, this.written);
  }

  /** A pooled buffer the socket wrote goes back (one that failed is left to the GC). */
  onDrain(cb: () => void): void {
    this.socket.once("drain", cb);
  }

  responded(ex: NetExchange, close: boolean): void {
    if (ex !== this.current) return;
    this.current = undefined;
    this.idleTicks = 0;
    if (close || this.closing) {
      this.close();
      return;
    }
    this.resume(PAUSED_HELD);
    if (this.pending !== undefined) {
      this.inHead = true;
      this.parse();
    } else if (this.peerEnded) this.close();
  }

  kill(): void {
    this.closing = true;
    releaseWrites(this.socket);
    this.socket.destroy();
  }

  condemn(): void {
    this.condemned = true;
  }

  pauseBody(): void {
    this.pause(PAUSED_BODY);
  }

  resumeBody(): void {
    this.resume(PAUSED_BODY);
  }

  // --- the listener's part ---

  /** Answers a head that took too long (headersTimeoutMs) with 408 and closes. */
  timeOutHead(): void {
    this.answerAndClose(
      new ProxyError("LINTEL_REQUEST_TIMEOUT", "the request head took too long to arrive"),
    );
  }

  /** Closes the connection if no request is in progress (draining, idle timeout). */
  closeIfIdle(): void {
    if (this.idle) this.close();
  }

  destroy(): void {
    this.closing = true;
    releaseWrites(this.socket);
    this.socket.destroy();
  }

  private pause(why: number): void {
    if (this.paused === 0) this.socket.pause();
    this.paused |= why;
  }

  private resume(why: number): void {
    if ((this.paused & why) === 0) return;
    this.paused &= ~why;
    if (this.paused === 0 && !this.closing) this.socket.resume();
  }

  private refuse(e: unknown): void {
    if (!(e instanceof RequestHeadError)) throw e;
    this.answerAndClose(new ProxyError(STATUS_CODE[e.status], e.message));
  }

  /** Answers with lintel's error and closes: nothing more is read on this connection. */
  private answerAndClose(err: ProxyError): void {
    this.closing = true;
    this.pending = undefined;
    this.decoder = undefined;
    this.socket.off("data", onSocketData);
    const current = this.current;
    this.current = undefined;
    // The request's body is broken: a response already under way is cut off.
    if (current !== undefined && !current.done && !current.abandon()) {
      releaseWrites(this.socket);
      this.socket.destroy();
      return;
    }
    writeRawError(this.socket, err);
  }

  peerCertificate(): X509Certificate | undefined {
    if (this.peerCert === undefined) this.peerCert = peerCertificateOf(this.socket) ?? null;
    return this.peerCert ?? undefined;
  }

  private close(): void {
    this.closing = true;
    this.pending = undefined;
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.off("data", onSocketData);
    // FIN after what is queued; a peer that never closes its side is cut by the sweep.
    // Ended already (a `connection: close` answer, then the peer's FIN): a second end()
    // would build an ERR_STREAM_ALREADY_FINISHED with its stack, 3% of a TLS connection.
    if (!socket.writableEnded) socket.end();
  }

  /** Hands the connection over to a CONNECT or Upgrade tunnel (or refuses CONNECT). */
  private tunnel(
    method: string,
    target: string,
    upgrade: string,
    version: string,
    headers: string[],
    rest: Buffer,
  ): void {
    const take = method === "CONNECT" ? this.host.onConnect : this.host.onUpgrade;
    if (take === undefined) {
      this.answerAndClose(
        new ProxyError(
          "LINTEL_METHOD_NOT_ALLOWED",
          "CONNECT is not enabled on this server (servers[].connect)",
        ),
      );
      return;
    }
    const socket = this.socket;
    this.handOver();
    take({
      method,
      target,
      upgrade,
      httpVersion: version,
      headers,
      clientAddress: this.clientAddress,
      clientPort: this.clientPort,
      socket,
      head: rest,
    });
  }

  /** Switches to HTTP/2 (h2c), the request being its stream 1. */
  private upgradeToH2(head: RequestHead, rest: Buffer): void {
    const socket = this.socket;
    const http2 = this.host.http2!;
    const { url, headers } = originForm(head.target, head.headers);
    this.handOver();
    upgradeToH2c(
      socket,
      { method: head.method, url, headers },
      rest,
      H2C_PREFACE_WAIT_MS,
      (first) => http2(socket, first),
    );
  }

  /** Another protocol owns the socket from here; it reads on when it is ready. */
  private handOver(): void {
    const socket = this.socket;
    // Held responses leave before the new owner writes (node:http2 writes past the stream).
    releaseWrites(socket);
    socket.pause();
    this.closing = true;
    this.pending = undefined;
    socket.off("data", onSocketData);
    socket.off("end", onSocketEnd);
    socket.off("close", onSocketClose);
    (socket as ServedSocket)[CONNECTION] = undefined;
    this.host.released(this);
  }

  /** The client sent FIN. */
  peerEnd(): void {
    this.peerEnded = true;
    // A client that closes with a request in flight went away (as Node's server reads it):
    // the request is aborted. Heads already pipelined are answered, then the connection closes.
    const current = this.current;
    if (current !== undefined && !current.done) {
      this.kill();
      return;
    }
    // What is pending now can only be a head the client will never finish.
    if (this.current === undefined) this.close();
  }

  /** The socket closed. */
  socketClosed(): void {
    this.closing = true;
    const current = this.current;
    this.current = undefined;
    current?.connectionClosed();
    this.host.released(this);
  }
}

const EMPTY = Buffer.alloc(0);

/** Whether `buf` starts with the HTTP/2 connection preface's first line. */
function startsWithPreface(buf: Buffer): boolean {
  return (
    buf.length >= H2_PREFACE.length &&
    buf.compare(H2_PREFACE, 0, H2_PREFACE.length, 0, H2_PREFACE.length) === 0
  );
}

/** Whether a LF in `buf` is not preceded by CR (only looked at while a head is incomplete). */
function hasBareLf(buf: Buffer): boolean {
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (i === 0 || buf[i - 1] !== 13) return true;
  }
  return false;
}
const ignore = () => {};
