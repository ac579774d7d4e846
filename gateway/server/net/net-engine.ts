// The `net` engine: lintel's own HTTP/1.x server on node:net and node:tls sockets. Its
// parser is strict (what can be read two ways is answered 400 and the connection closed)
// and complete (HTTP/1.0 and 1.1, absolute-form targets, any token header name, trailers,
// Expect, CONNECT); responses are written straight to the socket. TLS picks each
// connection's certificate from its ClientHello (connection-front.ts), public APIs only.

import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import {
  createServer as createTlsServer,
  type TLSSocket,
  type Server as TlsServer,
} from "node:tls";
import { adoptProxied, connectionFront, proxiedSource, TlsServers } from "../connection-front.js";
import { DEFAULT_MAX_CONCURRENT_STREAMS, H2Side } from "../h2/h2-side.js";
import type { ExchangeHandler, Listener, ListenerOptions } from "../listener.js";
import { type ConnectionHost, Http1Connection } from "./connection.js";

/** How long a keep-alive connection may sit without a request before it is closed. */
const KEEP_ALIVE_TIMEOUT_MS = 10_000;
const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;

const ignore = () => {};

export function listenNet(opts: ListenerOptions, handler: ExchangeHandler): Promise<Listener> {
  const connections = new Set<Http1Connection>();
  const clientOf = (socket: Socket) => {
    const source = proxiedSource(socket);
    return {
      address: source?.address ?? socket.remoteAddress ?? "",
      port: source?.port ?? socket.remotePort ?? 0,
    };
  };
  const h2 = opts.http2
    ? new H2Side(
        handler,
        {
          maxHeaderBytes: opts.maxHeaderBytes,
          maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
          idleTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
          settings: opts.http2Settings,
        },
        clientOf,
      )
    : undefined;
  /** Every socket accepted, also those still in their PROXY header or TLS handshake. */
  const sockets = new Set<Socket>();
  const host: ConnectionHost = {
    maxHeaderBytes: opts.maxHeaderBytes,
    handler,
    onConnect: opts.onConnect,
    onUpgrade: opts.onUpgrade,
    http2: h2 ? (socket, first) => h2.accept(socket, first) : undefined,
    released: (c) => connections.delete(c),
  };
  const secure = opts.tls !== undefined;
  const perClient = opts.maxConnectionsPerClient;
  const admit = perClient === undefined ? undefined : clientConnections(perClient, clientOf);
  const accept = (socket: Socket, first: Buffer | undefined) => {
    if (admit !== undefined && !admit(socket)) return;
    const client = clientOf(socket);
    const c = new Http1Connection(socket, host, client.address, client.port, secure, first);
    if (!socket.destroyed) connections.add(c);
  };
  const headersTimeoutMs = opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  let front: NetServer;
  if (opts.tls) {
    const proxied = opts.proxyProtocol !== undefined;
    // With HTTP/2, ALPN offers h2 first; a client that does not take it speaks HTTP/1.
    const protocols = h2 ? ["h2", "http/1.1", "http/1.0"] : undefined;
    const tls = new TlsServers<TlsServer>(
      opts.tls,
      (tlsOptions) => {
        // A handshake counts against the head's time: a slow-loris cannot park in it.
        const s = createTlsServer({ ...tlsOptions, handshakeTimeout: headersTimeoutMs });
        s.on("secureConnection", (socket: TLSSocket) => {
          if (proxied) adoptProxied(socket);
          if (h2 !== undefined && socket.alpnProtocol === "h2") {
            if (admit === undefined || admit(socket)) h2.accept(socket);
          } else accept(socket, undefined);
        });
        // A failed handshake closes its connection; there is nobody to tell.
        s.on("tlsClientError", ignore);
        return s;
      },
      protocols,
    );
    front = connectionFront({ tls }, opts.proxyProtocol, true);
  } else if (opts.proxyProtocol) {
    front = connectionFront({ plain: accept }, opts.proxyProtocol, true);
  } else {
    // allowHalfOpen: what a client's FIN means is the connection's to decide (connection.ts).
    front = createNetServer({ allowHalfOpen: true, noDelay: true }, (s) => accept(s, undefined));
  }
  // One shared listener, not a closure per connection (idle connections are most of them).
  function forget(this: Socket): void {
    sockets.delete(this);
  }
  front.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", forget);
  });
  if (opts.maxConnections !== undefined) front.maxConnections = opts.maxConnections;
  // One timer per listener instead of one per connection: each tick ages every connection.
  const tickMs = Math.max(50, Math.min(1000, Math.floor(headersTimeoutMs / 4)));
  const headTicks = Math.ceil(headersTimeoutMs / tickMs);
  const idleTicks = Math.ceil(KEEP_ALIVE_TIMEOUT_MS / tickMs);
  const sweep = setInterval(() => {
    for (const c of connections) {
      const ticks = ++c.idleTicks;
      if (c.inHead) {
        if (ticks >= headTicks) c.timeOutHead();
      } else if (c.idle && ticks >= idleTicks) c.destroy();
    }
  }, tickMs);
  sweep.unref();
  return new Promise((resolve, reject) => {
    front.once("error", reject);
    front.listen(opts.port, opts.ip, () => {
      front.off("error", reject);
      const address = front.address();
      const port = typeof address === "object" && address ? address.port : opts.port;
      resolve({
        engine: "net",
        port,
        stopAccepting: () => front.close(),
        closeIdle: () => {
          for (const c of connections) c.closeIfIdle();
          h2?.closeIdle();
        },
        destroy: () => {
          h2?.destroy();
          clearInterval(sweep);
          front.close();
          for (const s of sockets) s.destroy();
          for (const c of connections) c.destroy();
        },
      });
    });
  });
}

/**
 * Counts each client address's open connections (the address a PROXY header named, else
 * the peer's): a connection over `max` is closed as it arrives, the others counted until
 * they close. The net engine serves on one thread, so this is the process's count.
 */
function clientConnections(
  max: number,
  clientOf: (socket: Socket) => { address: string },
): (socket: Socket) => boolean {
  const open = new Map<string, number>();
  return (socket) => {
    const address = clientOf(socket).address;
    const n = open.get(address) ?? 0;
    if (n >= max) {
      socket.destroy();
      return false;
    }
    open.set(address, n + 1);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left === 0) open.delete(address);
      else open.set(address, left);
    });
    return true;
  };
}
