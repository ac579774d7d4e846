// The `node` engine: Node's own HTTP/1.x server. Full HTTP semantics — HTTP/1.0,
// absolute-form targets (http_proxy clients), any header names, trailers — at a lower
// request rate than uws. Linkerd node proxies and the egress pool need it.

import { randomBytes } from "node:crypto";
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerOptions,
  type ServerResponse,
} from "node:http";
import {
  createServer as createHttpsServer,
  type Server as HttpsServer,
  type ServerOptions as HttpsServerOptions,
} from "node:https";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { ServedCertificate } from "../../tls/certificate-set.js";
import { readClientHello } from "../../tls/client-hello.js";
import type { CidrSet } from "../http/cidr.js";
import { ProxyError } from "../http/errors.js";
import { type ServerExchange, splitAbsoluteForm } from "../http/exchange.js";
import { writeRawError } from "../http/raw-error.js";
import type { ExchangeHandler, Listener, ListenerOptions } from "./listener.js";
import { type ProxyInfo, parseProxyV2 } from "./proxy-protocol.js";
import type { ListenerTls } from "./tls-listener.js";

/** Connections whose framing can no longer be trusted: pipelined requests on them are dropped. */
const CONDEMNED = new WeakSet<Socket>();
/** What the PROXY header of each connection said (keyed by the socket requests come on). */
const PROXIED = new WeakMap<Socket, ProxyInfo>();
/** How long a peer may take to send its PROXY header and its TLS ClientHello. */
const FRONT_READ_TIMEOUT_MS = 10_000;

class NodeExchange implements ServerExchange {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly headers: string[];
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly contentLength: number | undefined;
  readonly hasBody: boolean;
  aborted = false;
  private abortHandlers: (() => void)[] | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.method = req.method ?? "GET";
    // As parsed: anything but 1.0 and 1.1 is refused by the router's checks.
    this.httpVersion = req.httpVersion;
    const raw = req.rawHeaders;
    const headers: string[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i += 2) {
      headers[i] = raw[i]!.toLowerCase();
      headers[i + 1] = raw[i + 1]!;
    }
    const target = req.url ?? "/";
    const absolute = target.startsWith("/") ? undefined : splitAbsoluteForm(target);
    if (absolute) {
      // RFC 9112 §3.2.2: with an absolute-form target the authority replaces Host.
      const withoutHost: string[] = [];
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i] !== "host") withoutHost.push(headers[i]!, headers[i + 1]!);
      }
      withoutHost.push("host", absolute.authority);
      this.headers = withoutHost;
      this.url = absolute.path;
    } else {
      this.headers = headers;
      this.url = target;
    }
    const socket = req.socket;
    this.secure = (socket as TLSSocket).encrypted === true;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    // Over TLS, what the PROXY header said moved to the TLS socket (see adoptProxied).
    const proxied = PROXIED.get(socket)?.source;
    this.clientAddress = proxied?.address ?? this.remoteAddress;
    this.clientPort = proxied?.port ?? this.remotePort;
    const cl = req.headers["content-length"];
    this.contentLength = cl === undefined ? undefined : Number(cl);
    this.hasBody = (this.contentLength ?? 0) > 0 || req.headers["transfer-encoding"] !== undefined;
    res.on("close", this.onClose);
    req.on("error", NodeExchange.ignore);
  }

  private readonly onClose = () => {
    if (this.res.writableFinished) return;
    this.aborted = true;
    const handlers = this.abortHandlers;
    this.abortHandlers = undefined;
    if (handlers) for (const h of handlers) h();
  };

  body(): Readable {
    return this.req;
  }

  /** A client that leaves mid-body must not become an uncaught exception. */
  private static readonly ignore = () => {};

  onAbort(cb: () => void): void {
    if (this.aborted) cb();
    else {
      this.abortHandlers ??= [];
      this.abortHandlers.push(cb);
    }
  }

  writeHead(status: number, headers: readonly string[], length: number | undefined): void {
    const out = length === undefined ? headers : [...headers, "content-length", String(length)];
    this.res.writeHead(status, out as string[]);
  }

  write(chunk: Buffer): boolean {
    // Node may keep the chunk queued after this call; its memory is the caller's to reuse.
    return this.res.write(Buffer.from(chunk));
  }

  onWritable(cb: () => void): void {
    this.res.once("drain", cb);
  }

  end(trailers?: readonly string[]): void {
    if (trailers && trailers.length > 0 && this.res.chunkedEncoding) {
      const t: Record<string, string> = {};
      for (let i = 0; i < trailers.length; i += 2) t[trailers[i]!] = trailers[i + 1]!;
      this.res.addTrailers(t);
    }
    this.res.end();
  }

  destroy(): void {
    this.res.destroy();
  }

  respond(status: number, headers: readonly string[], body: Buffer): void {
    this.res.writeHead(status, [...headers, "content-length", String(body.length)] as string[]);
    this.res.end(body);
  }

  closeAfterResponse(refuseRest = false): void {
    this.res.shouldKeepAlive = false;
    if (refuseRest) CONDEMNED.add(this.req.socket);
  }

  get condemned(): boolean {
    return CONDEMNED.has(this.req.socket);
  }
}

/**
 * Node's TLS server presents one certificate per key type, and a certificate chosen in
 * its SNICallback only fills the slot of its own type: the default one can stay in
 * another (OpenSSL may then pick it). So lintel reads the server name from the
 * ClientHello itself and hands each connection to an HTTPS server that has exactly one
 * certificate: one server per certificate served, made when a connection first needs it
 * (about 1.3 KB besides the TLS context any certificate needs). Public APIs only: each
 * server's own options, and connections handed over with its `connection` event.
 */
class TlsServers {
  private readonly servers = new WeakMap<ServedCertificate, HttpsServer>();
  /** Shared by every server, so sessions resume across certificates and reloads. */
  private readonly ticketKeys = randomBytes(48);
  /** Servers with connections open, and how many: what closeIdle and shutdown reach. */
  private readonly busy = new Map<HttpsServer, number>();

  constructor(
    private readonly tls: ListenerTls,
    /** Makes an HTTPS server with the listener's HTTP options and handlers. */
    private readonly make: (options: HttpsServerOptions) => HttpsServer,
  ) {}

  /** The server for a server name (undefined: none, and the listener is strict). */
  forServerName(serverName: string | undefined): HttpsServer | undefined {
    const set = this.tls.store.current;
    const cert = serverName === undefined ? undefined : set.match(serverName);
    if (cert) return this.serverOf(cert);
    return this.tls.strictSni ? undefined : this.serverOf(set.defaultCert);
  }

  /**
   * The server for a ClientHello, where ACME may need a moment: an ACME TLS-ALPN-01
   * validation (it offers only acme-tls/1) gets a server of its own with the challenge
   * certificate, and a name nothing serves waits for an on-demand certificate (bounded)
   * before the default.
   */
  forHello(
    serverName: string | undefined,
    alpn: readonly string[],
  ): HttpsServer | undefined | Promise<HttpsServer | undefined> {
    const acme = this.tls.acme;
    if (acme === undefined || serverName === undefined) return this.forServerName(serverName);
    if (acme.answersAlpn && alpn.length === 1 && alpn[0] === ACME_TLS_ALPN) {
      return acme.alpnCertificate(serverName).then(
        (pair) =>
          pair
            ? // RFC 8737: the validator only looks at the certificate; it is not asked for one.
              this.make({
                key: pair.keyPem,
                cert: pair.certPem,
                minVersion: "TLSv1.2",
                ALPNCallback: acmeAlpn,
              })
            : this.forServerName(serverName),
        () => this.forServerName(serverName),
      );
    }
    if (acme.onDemand && !this.tls.store.current.match(serverName)) {
      const done = () => this.forServerName(serverName);
      return acme.onDemand(serverName).then(done, done);
    }
    return this.forServerName(serverName);
  }

  serverOf(cert: ServedCertificate): HttpsServer {
    let server = this.servers.get(cert);
    if (!server) {
      server = this.make({
        minVersion: this.tls.minVersion,
        maxVersion: this.tls.maxVersion,
        ciphers: this.tls.ciphers,
        ca: this.tls.clientCa,
        key: cert.keyPem,
        passphrase: cert.files.passphrase,
        cert: cert.chainPem,
        ticketKeys: this.ticketKeys,
        requestCert: this.tls.clientCa !== undefined,
        rejectUnauthorized: this.tls.requireClientAuth,
        ...(this.tls.acme?.answersAlpn ? { ALPNCallback: acmeAlpn } : {}),
      });
      this.servers.set(cert, server);
    }
    return server;
  }

  /** Gives `server` the connection: TLS takes the paused socket over from here. */
  handOver(server: HttpsServer, socket: Socket): void {
    this.busy.set(server, (this.busy.get(server) ?? 0) + 1);
    socket.once("close", () => {
      const n = this.busy.get(server)! - 1;
      if (n === 0) this.busy.delete(server);
      else this.busy.set(server, n);
    });
    server.emit("connection", socket);
  }

  /** The servers that have connections open. */
  open(): IterableIterator<HttpsServer> {
    return this.busy.keys();
  }
}

/** The ALPN protocol of ACME's TLS-ALPN-01 validations (RFC 8737). */
const ACME_TLS_ALPN = "acme-tls/1";

/**
 * ALPN on a listener that answers TLS-ALPN-01: acme-tls/1 for validations, HTTP/1 for
 * everyone else. (A listener without ACME negotiates no protocol at all, as before.)
 */
function acmeAlpn({ protocols }: { protocols: string[] }): string | undefined {
  if (protocols.includes(ACME_TLS_ALPN)) return ACME_TLS_ALPN;
  return protocols.find((p) => p === "http/1.1" || p === "http/1.0");
}

/** A TLS alert record: fatal, with the given description (RFC 8446 §6). */
const alert = (description: number) => Buffer.from([21, 3, 3, 0, 2, 2, description]);
const UNRECOGNIZED_NAME = alert(112);

/**
 * A plain TCP server in front of the HTTP server, or of the HTTPS servers: it reads the
 * PROXY header (when configured) and the TLS ClientHello (over TLS), then hands the
 * connection over with every byte it read (over TLS, to the server of its certificate).
 */
function connectionFront(
  target: HttpServer | TlsServers,
  proxyFrom: CidrSet | undefined,
): NetServer {
  const tls = target instanceof TlsServers ? target : undefined;
  const plain = tls === undefined ? (target as HttpServer) : undefined;
  return createNetServer((socket) => {
    if (proxyFrom && !proxyFrom.has(socket.remoteAddress ?? "")) {
      // Only the configured proxies may speak to this listener.
      socket.destroy();
      return;
    }
    let buf: Buffer = Buffer.alloc(0);
    let proxyRead = proxyFrom === undefined;
    const timer = setTimeout(() => socket.destroy(), FRONT_READ_TIMEOUT_MS);
    const stop = () => {
      socket.off("data", onData);
      clearTimeout(timer);
    };
    const handOver = (rest: Buffer) => {
      stop();
      socket.pause();
      // Node's HTTP parser reads the socket natively and would never see bytes put back
      // into the stream: hand the connection over, then feed it the bytes that followed.
      plain!.emit("connection", socket);
      if (rest.length > 0) socket.emit("data", rest);
      socket.resume();
    };
    const onData = (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (!proxyRead) {
        const r = parseProxyV2(buf);
        if (r.status === "more") return;
        if (r.status === "error") {
          stop();
          socket.destroy();
          return;
        }
        PROXIED.set(socket, r.info);
        proxyRead = true;
        buf = r.rest;
        if (!tls) return handOver(buf);
        if (buf.length === 0) return;
      }
      if (!tls) return;
      const hello = readClientHello(buf);
      if (hello.status === "more") return;
      // Not TLS at all: the TLS server fails the handshake (and reports it).
      const chosen =
        hello.status === "hello"
          ? tls.forHello(hello.serverName, hello.alpn)
          : tls.forServerName(undefined);
      if (!(chosen instanceof Promise)) return start(tls, chosen);
      // ACME needs a moment (a challenge answer, an on-demand order): stop reading meanwhile.
      stop();
      const held = buf;
      void chosen.then((to) => {
        if (!socket.destroyed) start(tls, to, held);
      });
    };
    const start = (tls: TlsServers, to: HttpsServer | undefined, bytes = buf) => {
      stop();
      if (!to) {
        socket.end(UNRECOGNIZED_NAME);
        return;
      }
      socket.pause();
      // TLS takes the paused socket over and reads what was put back first.
      if (bytes.length > 0) socket.unshift(bytes);
      const proxied = PROXIED.get(socket);
      if (proxied) {
        // Until the handshake is done and the TLS socket known (see adoptProxied).
        const key = connectionKey(socket);
        HANDSHAKING.set(key, proxied);
        socket.once("close", () => {
          if (HANDSHAKING.get(key) === proxied) HANDSHAKING.delete(key);
        });
      }
      tls.handOver(to, socket);
    };
    socket.on("data", onData);
    socket.on("error", stop);
    socket.on("close", stop);
  });
}

/**
 * What the PROXY header said of TLS connections still in their handshake, by
 * connectionKey: requests arrive on the TLS socket, which the TLS server makes.
 */
const HANDSHAKING = new Map<string, ProxyInfo>();

/** The addresses of a connection (the same on the TCP socket and the TLS socket over it). */
const connectionKey = (s: Socket) =>
  `${s.remoteAddress} ${s.remotePort} ${s.localAddress} ${s.localPort}`;

/** On `secureConnection`: what the PROXY header said, now kept with the TLS socket. */
function adoptProxied(socket: TLSSocket): void {
  const key = connectionKey(socket);
  const info = HANDSHAKING.get(key);
  if (info === undefined) return;
  HANDSHAKING.delete(key);
  PROXIED.set(socket, info);
}

export function listenNode(opts: ListenerOptions, handler: ExchangeHandler): Promise<Listener> {
  const sockets = new Set<Socket>();
  const httpOptions: ServerOptions = {
    // A backstop: the router checks the request line and the headers against their own limits.
    maxHeaderSize: opts.maxHeaderBytes,
    keepAliveTimeout: 10_000,
    requestTimeout: 0,
    // Slow clients (slow-loris) are cut off once the head has taken this long; Node looks
    // every connectionsCheckingInterval, so check often enough to hold the bound.
    headersTimeout: opts.headersTimeoutMs ?? 10_000,
    connectionsCheckingInterval: 1000,
    // lintel answers a missing Host itself, and then refuses what is pipelined behind it.
    requireHostHeader: false,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) =>
    handler(new NodeExchange(req, res));
  const onConnect = (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (opts.onConnect) {
      const source = PROXIED.get(socket)?.source;
      const headers: string[] = new Array(req.rawHeaders.length);
      for (let i = 0; i < headers.length; i += 2) {
        headers[i] = req.rawHeaders[i]!.toLowerCase();
        headers[i + 1] = req.rawHeaders[i + 1]!;
      }
      opts.onConnect({
        authority: req.url ?? "",
        httpVersion: req.httpVersion,
        headers,
        clientAddress: source?.address ?? socket.remoteAddress ?? "",
        clientPort: source?.port ?? socket.remotePort ?? 0,
        socket,
        head,
      });
    } else {
      writeRawError(
        socket,
        new ProxyError(
          "LINTEL_METHOD_NOT_ALLOWED",
          "CONNECT is not enabled on this server (servers[].connect)",
        ),
      );
    }
  };
  const track = (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };
  const serve = <S extends HttpServer>(s: S): S => {
    s.on("request", onRequest);
    s.on("connect", onConnect);
    s.on("connection", track);
    return s;
  };
  let server: HttpServer | undefined;
  let tls: TlsServers | undefined;
  if (opts.tls) {
    const proxied = opts.proxyProtocolFrom !== undefined;
    tls = new TlsServers(opts.tls, (tlsOptions) => {
      const s = serve(createHttpsServer({ ...httpOptions, ...tlsOptions }));
      if (proxied) s.on("secureConnection", adoptProxied);
      // These servers never listen (the front hands them connections), and an HTTP
      // server tracks its connections from "listening" on: the headersTimeout checker
      // (slow-loris) and closeIdleConnections (draining) need it. Tests guard both.
      s.emit("listening");
      return s;
    });
  } else {
    server = serve(createServer(httpOptions));
  }
  // Over TLS or with the PROXY protocol a plain TCP server reads the connection's first
  // bytes, then hands it to the HTTP server, or over TLS to the HTTPS server of its
  // certificate. Otherwise the HTTP server listens itself.
  const front =
    tls !== undefined
      ? connectionFront(tls, opts.proxyProtocolFrom)
      : opts.proxyProtocolFrom
        ? connectionFront(server!, opts.proxyProtocolFrom)
        : server!;
  if (front !== server) front.on("connection", track);
  // Behind a PROXY-reading front the HTTP server does not listen either (see above).
  if (server !== undefined && front !== server) server.emit("listening");
  if (opts.maxConnections !== undefined) front.maxConnections = opts.maxConnections;
  /** The HTTP(S) servers with connections: the one server, or the TLS servers in use. */
  const servers = (): Iterable<HttpServer> => (tls ? [...tls.open()] : [server!]);
  return new Promise((resolve, reject) => {
    front.once("error", reject);
    front.listen(opts.port, opts.ip, () => {
      front.off("error", reject);
      const address = front.address();
      const port = typeof address === "object" && address ? address.port : opts.port;
      resolve({
        engine: "node",
        port,
        stopAccepting: () => {
          front.close();
          for (const s of servers()) if (s !== front) s.close();
        },
        closeIdle: () => {
          for (const s of servers()) s.closeIdleConnections();
        },
        destroy: () => {
          front.close();
          for (const s of servers()) if (s !== front) s.close();
          for (const s of sockets) s.destroy();
        },
      });
    });
  });
}
