// The `node` engine: Node's own HTTP/1.x server. Full HTTP semantics — HTTP/1.0,
// absolute-form targets (http_proxy clients), any header names, trailers — at a lower
// request rate than uws. Linkerd node proxies and the egress pool need it.

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
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import { ProxyError } from "../http/errors.js";
import { type ServerExchange, splitAbsoluteForm } from "../http/exchange.js";
import { writeRawError } from "../http/raw-error.js";
import { adoptProxied, connectionFront, proxiedSource, TlsServers } from "./connection-front.js";
import type { ExchangeHandler, Listener, ListenerOptions, TunnelRequest } from "./listener.js";

/** Connections whose framing can no longer be trusted: pipelined requests on them are dropped. */
const CONDEMNED = new WeakSet<Socket>();

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
    const proxied = proxiedSource(socket);
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
 * Hands a plain connection (its PROXY header read) to the HTTP server. Node's HTTP parser
 * reads the socket natively and would never see bytes put back into the stream: hand the
 * connection over, then feed it the bytes that followed.
 */
function handToHttp(server: HttpServer): (socket: Socket, rest: Buffer) => void {
  return (socket, rest) => {
    socket.pause();
    server.emit("connection", socket);
    if (rest.length > 0) socket.emit("data", rest);
    socket.resume();
  };
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
  /** A CONNECT or Upgrade request, the connection taken over from Node's server. */
  const takeover = (req: IncomingMessage, socket: Socket, head: Buffer): TunnelRequest => {
    const source = proxiedSource(socket);
    const headers: string[] = new Array(req.rawHeaders.length);
    for (let i = 0; i < headers.length; i += 2) {
      headers[i] = req.rawHeaders[i]!.toLowerCase();
      headers[i + 1] = req.rawHeaders[i + 1]!;
    }
    return {
      method: req.method ?? "GET",
      target: req.url ?? "",
      upgrade: req.method === "CONNECT" ? "" : (req.headers.upgrade ?? ""),
      httpVersion: req.httpVersion,
      headers,
      clientAddress: source?.address ?? socket.remoteAddress ?? "",
      clientPort: source?.port ?? socket.remotePort ?? 0,
      socket,
      head,
    };
  };
  const onConnect = (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (opts.onConnect) opts.onConnect(takeover(req, socket, head));
    else {
      writeRawError(
        socket,
        new ProxyError(
          "LINTEL_METHOD_NOT_ALLOWED",
          "CONNECT is not enabled on this server (servers[].connect)",
        ),
      );
    }
  };
  const onUpgrade = opts.onUpgrade;
  const upgrade = (req: IncomingMessage, socket: Socket, head: Buffer) =>
    onUpgrade!(takeover(req, socket, head));
  const track = (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };
  const serve = <S extends HttpServer>(s: S): S => {
    s.on("request", onRequest);
    s.on("connect", onConnect);
    // Without a listener, Node serves an Upgrade request as a plain request.
    if (onUpgrade) s.on("upgrade", upgrade);
    s.on("connection", track);
    return s;
  };
  let server: HttpServer | undefined;
  let tls: TlsServers<HttpsServer> | undefined;
  if (opts.tls) {
    const proxied = opts.proxyProtocolFrom !== undefined;
    tls = new TlsServers(opts.tls, (tlsOptions) => {
      const s = serve(createHttpsServer({ ...httpOptions, ...(tlsOptions as HttpsServerOptions) }));
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
      ? connectionFront({ tls }, opts.proxyProtocolFrom)
      : opts.proxyProtocolFrom
        ? connectionFront({ plain: handToHttp(server!) }, opts.proxyProtocolFrom)
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
