// The HTTP/2 side of a listener: connections that negotiated `h2` by ALPN, or that open
// with the HTTP/2 preface in cleartext (prior knowledge), are handed to one node:http2
// server that never listens itself. Its limits answer the known attacks: a bounded number
// of concurrent streams, a header list size, a session memory cap (nghttp2 also refuses
// rapid resets and CONTINUATION floods), and sessions idle past the keep-alive time close.

import type { X509Certificate } from "node:crypto";
import {
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type Settings,
} from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { peerCertificateOf } from "../../http/forwarded-client-cert.js";
import type { ExchangeHandler } from "../listener.js";
import { type H2Connection, H2Exchange } from "./h2-exchange.js";

/** The cleartext HTTP/2 connection preface (RFC 9113 §3.4) starts with this line. */
export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

export interface H2Limits {
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the request head's bytes. */
  readonly maxHeaderBytes: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS (HAProxy and nginx use 100 and 128). */
  readonly maxConcurrentStreams: number;
  /** A session with no stream for this long is closed. */
  readonly idleTimeoutMs: number;
  /** SETTINGS the server's config names (Linkerd's h2 server parameters); they win. */
  readonly settings?: Settings;
}

export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;

export class H2Side {
  private readonly server: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  /** Streams in progress per session. */
  private readonly open = new Map<Http2Session, number>();
  /** Each session's connection, read from its socket as it is accepted. */
  private readonly connections = new WeakMap<Http2Session, H2Connection>();
  /** The connection being handed to the server (its session is made synchronously). */
  private accepting: H2Connection | undefined;
  private draining = false;

  constructor(
    handler: ExchangeHandler,
    limits: H2Limits,
    /** The client a connection stands for (what a PROXY header named, or the peer). */
    private readonly clientOf: (socket: Socket) => { address: string; port: number },
  ) {
    this.server = createServer({
      maxSessionMemory: 32,
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderBytes,
        ...limits.settings,
        enablePush: false,
      },
    });
    this.server.on("session", (session: ServerHttp2Session) => {
      if (this.accepting !== undefined) this.connections.set(session, this.accepting);
      this.sessions.add(session);
      this.open.set(session, 0);
      session.setTimeout(limits.idleTimeoutMs, () => {
        if ((this.open.get(session) ?? 0) === 0) session.close();
      });
      session.on("error", ignore);
      session.once("close", () => {
        this.sessions.delete(session);
        this.open.delete(session);
      });
    });
    const onStream = (
      stream: ServerHttp2Stream,
      _headers: IncomingHttpHeaders,
      _flags: number,
      raw: string[],
    ) => {
      const session = stream.session;
      const conn = session && this.connections.get(session);
      if (session === undefined || conn === undefined) return;
      this.open.set(session, (this.open.get(session) ?? 0) + 1);
      // Counted down when the stream closes, answered or reset (a reset flood leaves none).
      stream.once("close", () => {
        const n = this.open.get(session);
        if (n !== undefined) this.open.set(session, n - 1);
      });
      handler(new H2Exchange(stream, raw, conn, this.finished));
    };
    this.server.on("stream", onStream);
  }

  /** A stream's response is complete; a draining router asks for its session to end. */
  private readonly finished = (session: Http2Session | undefined, closeSession: boolean) => {
    // Graceful (GOAWAY): streams in progress finish, no new ones start.
    if (session !== undefined && (closeSession || this.draining)) session.close();
  };

  /** Takes a connection over: TLS with ALPN h2, or cleartext with `first` bytes read already. */
  accept(socket: Socket, first?: Buffer): void {
    if (first !== undefined && first.length > 0) {
      socket.pause();
      socket.unshift(first);
    }
    const client = this.clientOf(socket);
    let peerCert: X509Certificate | null | undefined;
    this.accepting = {
      peerCertificate() {
        if (peerCert === undefined) peerCert = peerCertificateOf(socket) ?? null;
        return peerCert ?? undefined;
      },
      remoteAddress: socket.remoteAddress ?? "",
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? "",
      localPort: socket.localPort ?? 0,
      secure: (socket as TLSSocket).encrypted === true,
      clientAddress: client.address,
      clientPort: client.port,
    };
    try {
      this.server.emit("connection", socket);
    } finally {
      this.accepting = undefined;
    }
  }

  /** Sessions with no stream in progress close now; the others after their streams (GOAWAY). */
  closeIdle(): void {
    this.draining = true;
    for (const session of this.sessions) session.close();
  }

  destroy(): void {
    for (const session of this.sessions) session.destroy();
  }
}

const ignore = () => {};
