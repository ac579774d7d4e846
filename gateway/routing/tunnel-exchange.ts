// A CONNECT request as the request path sees every request, so it passes the same server
// stack, identification and binding. Its Host is its target (RFC 9110 §9.3.6): what the
// identifier names and the egress policy checks is where the tunnel goes. It has no body
// and gets no forwarded response: either lintel answers it (an error, closing the
// connection) or the tunnel takes the connection over.

import type { Readable } from "node:stream";
import type { ServerExchange } from "../http/exchange.js";
import { writeRawResponse } from "../http/raw-error.js";
import type { TunnelRequest } from "../server/listener.js";

export class TunnelExchange implements ServerExchange {
  readonly method = "CONNECT";
  readonly url: string;
  readonly httpVersion: string;
  readonly headers: readonly string[];
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

  constructor(readonly request: TunnelRequest) {
    const { socket } = request;
    this.url = request.authority;
    this.httpVersion = request.httpVersion;
    const headers: string[] = [];
    const h = request.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] !== "host") headers.push(h[i]!, h[i + 1]!);
    headers.push("host", request.authority);
    this.headers = headers;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.clientAddress = request.clientAddress;
    this.clientPort = request.clientPort;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    this.secure = "encrypted" in socket;
  }

  get aborted(): boolean {
    return this.request.socket.destroyed;
  }

  onAbort(cb: () => void): void {
    this.request.socket.once("close", cb);
  }

  body(): Readable {
    throw new Error("a CONNECT request has no body to forward");
  }

  respond(status: number, headers: readonly string[], body: Buffer): void {
    writeRawResponse(this.request.socket, status, headers, body);
  }

  writeHead(): void {
    throw new Error("a CONNECT request is answered whole or tunnelled");
  }

  write(): boolean {
    throw new Error("a CONNECT request is answered whole or tunnelled");
  }

  onWritable(): void {}

  end(): void {
    throw new Error("a CONNECT request is answered whole or tunnelled");
  }

  destroy(): void {
    this.request.socket.destroy();
  }

  closeAfterResponse(): void {
    // Every answer to a CONNECT closes the connection.
  }
}
