// A scripted client side for the response writer's unit tests (what the writer did to
// it: the head, the bytes, the end), the upstream's control as the writer sees it, and a
// request as the layers see it.

import type { Readable } from "node:stream";
import type { UpstreamControl } from "../../gateway/client/http1/connection.js";
import { CidrSet } from "../../gateway/http/cidr.js";
import type { ServerExchange } from "../../gateway/http/exchange.js";
import type { StackedRequest } from "../../gateway/routing/server-stack/layer-stack.js";

export class FakeExchange implements ServerExchange {
  readonly url = "/";
  readonly httpVersion = "1.1";
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 1;
  readonly clientAddress = "127.0.0.1";
  readonly clientPort = 1;
  readonly localAddress = "127.0.0.1";
  readonly localPort = 2;
  readonly contentLength = undefined;
  readonly hasBody = false;
  readonly condemned = false;
  aborted = false;
  head: { status: number; headers: readonly string[]; length: number | undefined } | undefined;
  readonly written: Buffer[] = [];
  ended = false;
  destroyed = false;
  /** write() answers this (false: the client is slow). */
  writable = true;
  private abortCbs: (() => void)[] = [];
  private writableCbs: (() => void)[] = [];

  constructor(
    readonly method: string,
    public headers: readonly string[],
    readonly secure = false,
  ) {}
  replaceHeaders(headers: readonly string[]): void {
    this.headers = headers;
  }
  body(): Readable {
    throw new Error("no body");
  }
  peerCertificate(): undefined {
    return undefined;
  }

  onAbort(cb: () => void): void {
    this.abortCbs.push(cb);
  }
  writeHead(status: number, headers: readonly string[], length: number | undefined): void {
    this.head = { status, headers: [...headers], length };
  }
  write(chunk: Buffer): boolean {
    this.written.push(Buffer.from(chunk));
    return this.writable;
  }
  onWritable(cb: () => void): void {
    this.writableCbs.push(cb);
  }
  end(): void {
    this.ended = true;
  }
  respond(): void {
    throw new Error("not expected");
  }
  destroy(): void {
    this.destroyed = true;
  }
  closeAfterResponse(): void {}
  /** The client left. */
  leave(): void {
    this.aborted = true;
    for (const cb of this.abortCbs.splice(0)) cb();
  }
  /** The client can take more. */
  drain(): void {
    this.writable = true;
    for (const cb of this.writableCbs.splice(0)) cb();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.written);
  }
  /** The head's value of `name` (the first), as the client got it. */
  field(name: string): string | undefined {
    const h = this.head?.headers ?? [];
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return undefined;
  }
}

/** The upstream side as the writer sees it: counts resumes and aborts. */
export class FakeControl implements UpstreamControl {
  resumes = 0;
  aborted: Error | undefined;
  constructor(private readonly onAbort?: (err: Error) => void) {}
  abort(err: Error): void {
    this.aborted = err;
    this.onAbort?.(err);
  }
  resume(): void {
    this.resumes++;
  }
}

/** A request on `ex` as the layers see it, on a server trusting `trusted` proxies. */
export function arriving(ex: ServerExchange, trusted: readonly string[] = []): StackedRequest {
  return {
    ex,
    server: { trustedProxies: new CidrSet(trusted) },
    service: undefined,
    client: undefined,
    responseHeaders: undefined,
    dropResponseFields: undefined,
    claims: undefined,
    compression: undefined,
    passed: 0,
    servicePassed: 0,
  };
}
