// A CONNECT or Upgrade request as the request path sees every request, so it passes the
// same server stack, identification and binding. A CONNECT's Host is its target (RFC 9110
// §9.3.6): what the identifier names and the egress policy checks is where the tunnel
// goes. An Upgrade request (a WebSocket handshake) is identified like the request it is.
// Neither has a body to forward: lintel answers it (an error, closing the connection) or
// the tunnel takes the connection over.

import type { X509Certificate } from "node:crypto";
import type { Readable } from "node:stream";
import { originForm, type ServerExchange, withHost } from "../http/exchange.js";
import { peerCertificateOf } from "../http/forwarded-client-cert.js";
import { writeRawResponse } from "../http/raw-error.js";
import type { TunnelRequest } from "../server/listener.js";

export class TunnelExchange implements ServerExchange {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  headers: readonly string[];
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly contentLength = undefined;
  readonly hasBody = false;
  readonly condemned = false;
  /** The protocol an Upgrade request asks for; "" for CONNECT. */
  readonly upgrade: string;

  constructor(readonly request: TunnelRequest) {
    const { socket } = request;
    this.method = request.method;
    this.upgrade = request.upgrade;
    this.httpVersion = request.httpVersion;
    // CONNECT names its authority (the target is host:port); an Upgrade request is read as
    // any request, an absolute-form target's authority replacing Host.
    if (request.method === "CONNECT") {
      this.url = request.target;
      this.headers = withHost(request.headers, request.target);
    } else {
      const r = originForm(request.target, request.headers);
      this.url = r.url;
      this.headers = r.headers;
    }
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.clientAddress = request.clientAddress;
    this.clientPort = request.clientPort;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    this.secure = "encrypted" in socket;
  }

  peerCertificate(): X509Certificate | undefined {
    return peerCertificateOf(this.request.socket);
  }

  get aborted(): boolean {
    return this.request.socket.destroyed;
  }

  onAbort(cb: () => void): void {
    this.request.socket.once("close", cb);
  }

  replaceHeaders(headers: readonly string[]): void {
    this.headers = headers;
  }

  body(): Readable {
    throw new Error("a CONNECT or Upgrade request has no body to forward");
  }

  respond(status: number, headers: readonly string[], body: Buffer): void {
    writeRawResponse(this.request.socket, status, headers, body);
  }

  writeHead(): void {
    throw new Error("a tunnelled request is answered whole or tunnelled");
  }

  write(): boolean {
    throw new Error("a tunnelled request is answered whole or tunnelled");
  }

  onWritable(): void {}

  end(): void {
    throw new Error("a tunnelled request is answered whole or tunnelled");
  }

  destroy(): void {
    this.request.socket.destroy();
  }

  closeAfterResponse(): void {
    // Every answer lintel gives a tunnelled request closes the connection.
  }
}
