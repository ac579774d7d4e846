// TLS origination (a router client's `tls`, as in Linkerd 1). The files of each `tls`
// block are loaded once, at startup, into a secure context; each endpoint gets a
// connector that opens TCP + TLS with SNI, verifies the upstream's certificate against
// the client's name (`commonName`, else the host name the address was resolved from) and
// offers the endpoint's latest session on the next connection so it can resume. Any
// failure after TCP connected is a LINTEL_UPSTREAM_TLS error that says what was wrong.

import { isIP, type OnReadOpts, type Socket } from "node:net";
import {
  checkServerIdentity,
  connect,
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
  type TLSSocket,
} from "node:tls";
import { loadClientTrust } from "../../tls/client-trust.js";
import type { LintelConfig, RouterConfig } from "../config/config-schema.js";
import type { DecodeContext } from "../config/schema.js";
import { ProxyError } from "../http/errors.js";
import { type Address, addressKey } from "../naming/index.js";
import { connectError, type TlsOrigination } from "./http1/pool.js";
import type { ClientParams } from "./params.js";
import { certificateRefusal, handshakeFailure } from "./upstream-tls-errors.js";

export type ClientTlsConfig = NonNullable<ClientParams["tls"]>;

/** Every `tls` block of a router's `client`, with its config path (`at` is the client's). */
export function clientTlsBlocks(
  client: RouterConfig["client"],
  at: string,
): { path: string; tls: ClientTlsConfig }[] {
  if (client.kind === "io.l5d.global")
    return client.tls ? [{ path: `${at}.tls`, tls: client.tls }] : [];
  return client.configs.flatMap((c, i) =>
    c.tls ? [{ path: `${at}.configs[${i}].tls`, tls: c.tls }] : [],
  );
}

/** Secure contexts by the files they are made of, shared by every client that names the same files. */
export class UpstreamTlsContexts {
  private readonly byFiles = new Map<string, SecureContext>();

  /** The context for a `tls` block, loading its files the first time (throws CertificateError naming the file at fault). */
  get(tls: ClientTlsConfig): SecureContext {
    const key = JSON.stringify([tls.trustCerts, tls.trustCertsBundle, tls.clientAuth]);
    let context = this.byFiles.get(key);
    if (!context) {
      const trust = loadClientTrust(tls);
      context = createSecureContext({
        // Unset: Node's default roots, which include NODE_EXTRA_CA_CERTS.
        ca: trust.ca ? [...trust.ca] : undefined,
        cert: trust.identity?.chainPem,
        key: trust.identity?.keyPem,
      });
      this.byFiles.set(key, context);
    }
    return context;
  }
}

/** One client's TLS settings; makes the connector of each of its endpoints. */
export class UpstreamTls {
  constructor(
    private readonly config: ClientTlsConfig,
    private readonly context: SecureContext,
    /** ALPN protocols offered (["h2"] for HTTP/2 clients); none for HTTP/1.1. */
    private readonly protocols?: readonly string[],
  ) {}

  forAddress(address: Address): TlsOrigination {
    const hostname = address.meta.hostname;
    const name = this.config.commonName ?? (typeof hostname === "string" ? hostname : undefined);
    const authority = addressKey(address);
    if (name === undefined && !this.config.disableValidation) return unverifiable(authority);
    return new TlsConnector(
      this.context,
      name,
      !this.config.disableValidation,
      authority,
      this.protocols,
    );
  }
}

/** An IP address with no name to check its certificate against: every connection is refused. */
function unverifiable(authority: string): TlsOrigination {
  const err = new ProxyError(
    "LINTEL_UPSTREAM_TLS",
    `TLS to ${authority}: no name to verify the certificate against (the address is an IP, not resolved from a host name); set tls.commonName`,
  );
  return { connect: (_host, _port, _timeoutMs, done) => done(err, undefined) };
}

class TlsConnector implements TlsOrigination {
  /** The latest session the upstream gave, offered on the next connection so it resumes. */
  private session: Buffer | undefined;
  /** SNI carries host names only (RFC 6066), never an IP literal. */
  private readonly servername: string | undefined;
  /** How errors name the upstream: `127.0.0.5:443 (api.example.com)`. */
  private readonly where: string;
  /** Checks the certificate against the name rather than the IP connected to. */
  private readonly checkName: (host: string, cert: PeerCertificate) => Error | undefined;

  constructor(
    private readonly context: SecureContext,
    /** Defined whenever `validate` is. */
    private readonly name: string | undefined,
    private readonly validate: boolean,
    private readonly authority: string,
    private readonly protocols: readonly string[] | undefined,
  ) {
    this.servername = name !== undefined && isIP(name) === 0 ? name : undefined;
    this.where = name === undefined ? authority : `${authority} (${name})`;
    this.checkName =
      name === undefined ? checkServerIdentity : (_host, cert) => checkServerIdentity(name, cert);
  }

  connect(
    host: string,
    port: number,
    timeoutMs: number,
    done: (err: Error | undefined, socket: Socket | undefined) => void,
    onread?: OnReadOpts,
  ): void {
    const socket = connect({
      ...(onread ? { onread } : {}),
      host,
      port,
      servername: this.servername,
      secureContext: this.context,
      session: this.session,
      // Node still verifies (socket.authorized); the decision is taken on secureConnect,
      // below, where the certificate is at hand to say why it is refused.
      rejectUnauthorized: false,
      checkServerIdentity: this.checkName,
      ...(this.protocols ? { ALPNProtocols: [...this.protocols] } : {}),
    });
    socket.setNoDelay(true);
    let tcpConnected = false;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.session = undefined;
      socket.destroy();
      done(err, undefined);
    };
    const timer = setTimeout(() => {
      fail(
        tcpConnected
          ? this.failure(`no TLS handshake within ${timeoutMs} ms (connectTimeoutMs)`)
          : connectError("ETIMEDOUT", `connecting to ${this.authority} took over ${timeoutMs} ms`),
      );
    }, timeoutMs);
    // Before TCP connects, errors are connect errors (LINTEL_CONNECT), as without TLS.
    const onError = (err: Error) => fail(tcpConnected ? this.failure(handshakeFailure(err)) : err);
    socket.on("error", onError);
    socket.once("connect", () => {
      tcpConnected = true;
    });
    socket.once("secureConnect", () => {
      const refused =
        this.refusal(socket) ??
        (this.protocols && !this.protocols.includes(String(socket.alpnProtocol))
          ? this.failure(`the upstream did not agree to ${this.protocols.join(" or ")} (ALPN)`)
          : undefined);
      if (refused) {
        fail(refused);
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.off("error", onError);
      // Node emits the handshake's session right after secureConnect: listening only from
      // here keeps sessions of verified connections only.
      socket.on("session", this.keepSession);
      done(undefined, socket);
    });
  }

  private readonly keepSession = (session: Buffer) => {
    this.session = session;
  };

  private refusal(socket: TLSSocket): ProxyError | undefined {
    if (!this.validate || socket.authorized) return undefined;
    // authorizationError is Node's verification code (a string, despite its type).
    const code = String(socket.authorizationError);
    return this.failure(certificateRefusal(code, this.name!, socket.getPeerCertificate(true)));
  }

  private failure(why: string): ProxyError {
    return new ProxyError("LINTEL_UPSTREAM_TLS", `TLS to ${this.where}: ${why}`);
  }
}

/** Loads every client `tls` block's files once, so `lintel check` reports what startup would. */
export function checkClientTls(config: LintelConfig, cx: DecodeContext): void {
  const contexts = new UpstreamTlsContexts();
  config.routers.forEach((r, i) => {
    for (const { path, tls } of clientTlsBlocks(r.client, `routers[${i}].client`)) {
      try {
        contexts.get(tls);
      } catch (e) {
        cx.report(path, (e as Error).message);
      }
    }
  });
}
