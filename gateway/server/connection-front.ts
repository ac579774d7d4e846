// What happens to a connection before HTTP: a plain TCP server reads the PROXY v2 header
// (when the server expects one, and only from the peers allowed to send it) and, over TLS,
// the ClientHello, whose server name and ALPN choose the certificate. The connection then
// goes on, with every byte read so far, to the HTTP side (plain) or to the TLS server of
// its certificate. Shared by the listener engines built on Node's sockets.

import { randomBytes } from "node:crypto";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { TLSSocket, TlsOptions, Server as TlsServer } from "node:tls";
import { type ServedCertificate, servingPems } from "../../tls/certificate-set.js";
import { readClientHello } from "../../tls/client-hello.js";
import { type ProxyInfo, type ProxyProtocol, parseProxyHeader } from "./proxy-protocol.js";
import type { ListenerTls } from "./tls-listener.js";

/** What the PROXY header of each connection said (keyed by the socket requests come on). */
const PROXIED = new WeakMap<Socket, ProxyInfo>();
/** How long a peer may take to send its PROXY header and its TLS ClientHello. */
const FRONT_READ_TIMEOUT_MS = 10_000;

/** The client a PROXY header named for this socket (plain or TLS), if one did. */
export function proxiedSource(socket: Socket): ProxyInfo["source"] {
  return PROXIED.get(socket)?.source;
}

/** The ALPN protocol of ACME's TLS-ALPN-01 validations (RFC 8737). */
export const ACME_TLS_ALPN = "acme-tls/1";

/**
 * Node's TLS server presents one certificate per key type, and a certificate chosen in
 * its SNICallback only fills the slot of its own type: the default one can stay in
 * another (OpenSSL may then pick it). So lintel reads the server name from the
 * ClientHello itself and hands each connection to a TLS server that has exactly one
 * certificate: one server per certificate served, made when a connection first needs it
 * (about 1.3 KB besides the TLS context any certificate needs). Public APIs only: each
 * server's own options, and connections handed over with its `connection` event.
 *
 * With thousands of certificates only the servers of recently used ones are kept: at most
 * `contextCacheSize`, the least recently used dropped first (its open connections keep
 * it until they close). A certificate whose files turn out unusable when its server is
 * made is served as a name no certificate has.
 */
export class TlsServers<S extends TlsServer> {
  /** In order of use, least recent first (a Map keeps insertion order). */
  private readonly servers = new Map<ServedCertificate, S>();
  private readonly capacity: number;
  /** Shared by every server, so sessions resume across certificates and reloads. */
  private readonly ticketKeys = randomBytes(48);
  /** Servers with connections open, and how many: what closeIdle and shutdown reach. */
  private readonly busy = new Map<S, number>();

  constructor(
    private readonly tls: ListenerTls,
    /** Makes a TLS server with the listener's handlers. */
    private readonly make: (options: TlsOptions) => S,
    /** The ALPN protocols the HTTP side speaks, most preferred first. */
    private readonly protocols: readonly string[] = ["http/1.1", "http/1.0"],
  ) {
    this.capacity = tls.contextCacheSize ?? DEFAULT_CONTEXT_CACHE_SIZE;
  }

  /** The server for a server name (undefined: none, and the listener is strict). */
  forServerName(serverName: string | undefined): S | undefined {
    const set = this.tls.store.current;
    const cert = serverName === undefined ? undefined : set.match(serverName);
    const server = cert && this.serverOf(cert);
    if (server) return server;
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
  ): S | undefined | Promise<S | undefined> {
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
                ALPNCallback: this.alpn,
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

  /** The server of a certificate, made when missing; undefined when its files cannot serve. */
  private serverOf(cert: ServedCertificate): S | undefined {
    const cached = this.servers.get(cert);
    if (cached) {
      // Most recently used now.
      this.servers.delete(cert);
      this.servers.set(cert, cached);
      return cached;
    }
    let pems: { chainPem: string; keyPem: string };
    try {
      pems = servingPems(cert); // a folder's certificate is read and checked here, once
    } catch {
      return undefined; // logged and counted where it was found out (tls/lazy-certificate.ts)
    }
    let server: S;
    try {
      server = this.make({
        minVersion: this.tls.minVersion,
        maxVersion: this.tls.maxVersion,
        ciphers: this.tls.ciphers,
        ca: this.tls.clientCa,
        key: pems.keyPem,
        passphrase: cert.files.passphrase,
        cert: pems.chainPem,
        ticketKeys: this.ticketKeys,
        requestCert: this.tls.clientCa !== undefined,
        rejectUnauthorized: this.tls.requireClientAuth,
        ...(this.tls.acme?.answersAlpn || this.protocols.includes("h2")
          ? { ALPNCallback: this.alpn }
          : {}),
      });
    } catch (e) {
      // Files changed between their check and now (a write in progress): the next
      // handshake tries again, and the store reloads them.
      this.tls.log.warn("cannot make a TLS context for a certificate", {
        names: cert.names.join(","),
        error: (e as Error).message,
      });
      return undefined;
    }
    const counters = this.tls.store.counters;
    if (counters) counters.contextsBuilt++;
    this.servers.set(cert, server);
    if (this.servers.size > this.capacity) {
      const [oldest] = this.servers.keys();
      this.servers.delete(oldest!);
      if (counters) counters.contextsEvicted++;
    }
    return server;
  }

  /** How many TLS contexts are kept now. */
  get cached(): number {
    return this.servers.size;
  }

  /**
   * ALPN where something besides HTTP/1 is spoken: acme-tls/1 for validations, then the
   * HTTP side's protocols in its order. (Otherwise no protocol is negotiated at all.)
   */
  private readonly alpn = ({ protocols }: { protocols: string[] }): string | undefined => {
    if (this.tls.acme?.answersAlpn && protocols.includes(ACME_TLS_ALPN)) return ACME_TLS_ALPN;
    for (const p of this.protocols) if (protocols.includes(p)) return p;
    return undefined;
  };

  /** Gives `server` the connection: TLS takes the paused socket over from here. */
  handOver(server: S, socket: Socket): void {
    this.busy.set(server, (this.busy.get(server) ?? 0) + 1);
    socket.once("close", () => {
      const n = this.busy.get(server)! - 1;
      if (n === 0) this.busy.delete(server);
      else this.busy.set(server, n);
    });
    server.emit("connection", socket);
  }

  /** The servers that have connections open. */
  open(): IterableIterator<S> {
    return this.busy.keys();
  }
}

/**
 * TLS contexts kept per listener when `contextCacheSize` is not set: like HAProxy's
 * `tune.ssl.ssl-ctx-cache-size`, 1000 (an ECDSA context is tens of KB).
 */
export const DEFAULT_CONTEXT_CACHE_SIZE = 1000;

/** A TLS alert record: fatal, with the given description (RFC 8446 §6). */
const alert = (description: number) => Buffer.from([21, 3, 3, 0, 2, 2, description]);
const UNRECOGNIZED_NAME = alert(112);

/** Where a connection goes once its first bytes are read. */
export type FrontTarget<S extends TlsServer> =
  | { readonly tls: TlsServers<S> }
  /** A plain connection, with the bytes that followed the PROXY header. */
  | { readonly plain: (socket: Socket, rest: Buffer) => void };

/**
 * A plain TCP server in front of the HTTP side, or of the TLS servers: it reads the PROXY
 * header (when configured) and the TLS ClientHello (over TLS), then hands the connection
 * over with every byte it read (over TLS, to the server of its certificate).
 */
export function connectionFront<S extends TlsServer>(
  target: FrontTarget<S>,
  proxy: ProxyProtocol | undefined,
  allowHalfOpen = false,
): NetServer {
  const tls = "tls" in target ? target.tls : undefined;
  const plain = "plain" in target ? target.plain : undefined;
  return createNetServer({ allowHalfOpen, noDelay: true }, (socket) => {
    if (proxy && !proxy.from.has(socket.remoteAddress ?? "")) {
      // Only the configured proxies may speak to this listener.
      socket.destroy();
      return;
    }
    let buf: Buffer = Buffer.alloc(0);
    let proxyRead = proxy === undefined;
    const timer = setTimeout(() => socket.destroy(), FRONT_READ_TIMEOUT_MS);
    const stop = () => {
      socket.off("data", onData);
      clearTimeout(timer);
    };
    const onData = (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (!proxyRead) {
        const r = parseProxyHeader(buf, proxy!.version);
        if (r.status === "more") return;
        if (r.status === "error") {
          stop();
          socket.destroy();
          return;
        }
        PROXIED.set(socket, r.info);
        proxyRead = true;
        buf = r.rest;
        if (plain) {
          stop();
          plain(socket, buf);
          return;
        }
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
    const start = (tls: TlsServers<S>, to: S | undefined, bytes = buf) => {
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
export function adoptProxied(socket: TLSSocket): void {
  const key = connectionKey(socket);
  const info = HANDSHAKING.get(key);
  if (info === undefined) return;
  HANDSHAKING.delete(key);
  PROXIED.set(socket, info);
}
