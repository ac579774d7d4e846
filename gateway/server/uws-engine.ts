// The `uws` engine: uWebSockets.js, the fast path for edge traffic. Its limits (measured
// with the 20.30 build): requests using HTTP/1.0, absolute-form targets, header names
// with `_`, more than ~50 headers, `OPTIONS *`, CONNECT or a Content-Length of 10 digits
// or more get no response (the connection is left to uws's ~10 s idle timeout); it adds
// `Date` and `uWebSockets: 20` headers and cannot send trailers.

import { STATUS_CODES } from "node:http";
import { Readable } from "node:stream";
import type { HttpRequest, HttpResponse, us_listen_socket } from "@trufflesuite/uws-js-unofficial";
import type { ServerExchange } from "../http/exchange.js";
import type { ExchangeHandler, Listener, ListenerOptions } from "./listener.js";
import { loadUws } from "./uws-native.js";

const STATUS_LINES: string[] = [];
const ignore = () => {};
function statusLine(status: number): string {
  let line = STATUS_LINES[status];
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? "Unknown"}`;
    STATUS_LINES[status] = line;
  }
  return line;
}

/** The request body as a Readable; uws is paused while the Readable's buffer is full. */
class UwsBody extends Readable {
  private pausedSource = false;

  constructor(private readonly exchange: UwsExchange) {
    super({ highWaterMark: 64 * 1024 });
    // A client that leaves mid-body destroys this stream with an error; whoever reads the
    // body hears of it, and with nobody reading it must not become an uncaught exception.
    this.on("error", ignore);
  }

  feed(ab: ArrayBuffer, last: boolean): void {
    // uws reuses the ArrayBuffer after this callback: copy it out.
    if (ab.byteLength > 0 && !this.push(Buffer.copyBytesFrom(new Uint8Array(ab))) && !last) {
      this.pausedSource = true;
      this.exchange.pauseRequest();
    }
    if (last) this.push(null);
  }

  override _read(): void {
    if (this.pausedSource) {
      this.pausedSource = false;
      this.exchange.resumeRequest();
    }
  }
}

class UwsExchange implements ServerExchange {
  readonly method: string;
  readonly url: string;
  readonly httpVersion = "1.1";
  readonly headers: string[] = [];
  readonly remoteAddress: string;
  readonly remotePort = 0;
  readonly secure: boolean;
  readonly contentLength: number | undefined;
  readonly hasBody: boolean;
  /** Bytes of the request line target and headers, to enforce the head size limit. */
  readonly headBytes: number;
  /** The client sent `Connection: close`. */
  private readonly clientWantsClose: boolean;
  aborted = false;
  private abortHandlers: (() => void)[] | undefined;
  private readonly bodyStream: UwsBody | undefined;
  private done = false;
  private closeAfter = false;
  // Response head, written together with the first body bytes.
  private status = 0;
  private headHeaders: readonly string[] | undefined;
  private length: number | undefined;
  private headWritten = false;
  // A tryEnd chunk uws could not take whole (length-framed responses).
  private pendingChunk: Buffer | undefined;
  private pendingOffset = 0;

  constructor(
    private readonly res: HttpResponse,
    req: HttpRequest,
    secure: boolean,
  ) {
    this.secure = secure;
    this.method = req.getCaseSensitiveMethod();
    const q = req.getQuery();
    this.url = q ? `${req.getUrl()}?${q}` : req.getUrl();
    const headers = this.headers;
    let headBytes = this.url.length;
    req.forEach((k, v) => {
      headers.push(k, v);
      headBytes += k.length + v.length + 4;
    });
    this.headBytes = headBytes;
    this.remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    const cl = req.getHeader("content-length");
    this.contentLength = cl === "" ? undefined : Number(cl);
    this.hasBody = (this.contentLength ?? 0) > 0 || req.getHeader("transfer-encoding") !== "";
    this.clientWantsClose = /(^|,)\s*close\s*(,|$)/i.test(req.getHeader("connection"));
    res.onAborted(this.onAborted);
    if (this.hasBody) {
      // uws delivers body data only to a handler registered now, synchronously.
      const body = new UwsBody(this);
      this.bodyStream = body;
      res.onData((ab, last) => body.feed(ab, last));
    }
  }

  private readonly onAborted = () => {
    this.aborted = true;
    this.bodyStream?.destroy(new Error("the client closed the connection"));
    const handlers = this.abortHandlers;
    this.abortHandlers = undefined;
    if (handlers && !this.done) for (const h of handlers) h();
  };

  pauseRequest(): void {
    if (!this.aborted) this.res.pause();
  }

  resumeRequest(): void {
    if (!this.aborted) this.res.resume();
  }

  body(): Readable {
    return this.bodyStream ?? Readable.from([]);
  }

  onAbort(cb: () => void): void {
    if (this.aborted) cb();
    else {
      this.abortHandlers ??= [];
      this.abortHandlers.push(cb);
    }
  }

  writeHead(status: number, headers: readonly string[], length: number | undefined): void {
    this.status = status;
    this.headHeaders = headers;
    // While draining, frame by chunks so the connection can close after the response.
    this.length = this.closeAfter ? undefined : length;
  }

  private flushHead(): void {
    if (this.headWritten) return;
    this.headWritten = true;
    const res = this.res;
    res.writeStatus(statusLine(this.status));
    const h = this.headHeaders!;
    for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, h[i + 1]!);
  }

  write(chunk: Buffer): boolean {
    if (this.aborted) return true;
    let ok = true;
    this.res.cork(() => {
      this.flushHead();
      if (this.length === undefined) {
        ok = this.res.write(chunk);
        return;
      }
      const offset = this.res.getWriteOffset();
      const [written, complete] = this.res.tryEnd(chunk, this.length);
      if (complete) this.done = true;
      if (!written) {
        this.pendingChunk = chunk;
        this.pendingOffset = offset;
        ok = false;
      }
    });
    return ok;
  }

  onWritable(cb: () => void): void {
    if (this.aborted) return;
    this.res.onWritable((offset) => {
      const pending = this.pendingChunk;
      if (pending) {
        const [written, complete] = this.res.tryEnd(
          pending.subarray(offset - this.pendingOffset),
          this.length!,
        );
        if (complete) this.done = true;
        if (!written) return false;
        this.pendingChunk = undefined;
      }
      cb();
      return true;
    });
  }

  end(): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      const noBody = this.method === "HEAD" || this.status === 204 || this.status === 304;
      if (noBody && !this.headWritten) {
        this.flushHead();
        const length = this.status === 204 ? undefined : this.length;
        // uws closes after a bodiless response only when given a length (an explicit
        // undefined becomes 2^63); so a closing 204 states Content-Length: 0.
        if (this.closeAfter || this.clientWantsClose) this.res.endWithoutBody(length ?? 0, true);
        else if (length === undefined) this.res.endWithoutBody();
        else this.res.endWithoutBody(length);
        return;
      }
      this.flushHead();
      if (this.length === undefined || this.length === 0) this.res.end(undefined, this.closeAfter);
      // A length-framed response the upstream ended early would hang the client: close.
      else this.res.close();
    });
  }

  destroy(): void {
    if (this.aborted) return;
    this.done = true;
    this.aborted = true;
    this.res.close();
  }

  closeAfterResponse(): void {
    this.closeAfter = true;
  }
}

export function listenUws(opts: ListenerOptions, handler: ExchangeHandler): Promise<Listener> {
  const uws = loadUws();
  const app = uws.App();
  app.any("/*", (res, req) => {
    const ex = new UwsExchange(res, req, false);
    // uws's own limit is far above Linkerd's maxHeadersKB; enforce the configured one.
    if (ex.headBytes > opts.maxHeaderBytes) {
      const body = "request headers too large\n";
      ex.closeAfterResponse();
      ex.writeHead(431, ["content-type", "text/plain; charset=utf-8"], body.length);
      ex.write(Buffer.from(body));
      return;
    }
    handler(ex);
  });
  return new Promise((resolve, reject) => {
    app.listen(opts.ip, opts.port, (ls: us_listen_socket | false) => {
      if (!ls) {
        reject(
          new Error(`cannot listen on ${opts.ip}:${opts.port} (address in use or not available)`),
        );
        return;
      }
      let listening: us_listen_socket | undefined = ls;
      const stop = () => {
        if (listening) uws.us_listen_socket_close(listening);
        listening = undefined;
      };
      resolve({
        engine: "uws",
        port: uws.us_socket_local_port(ls),
        stopAccepting: stop,
        // uws gives no way to find idle keep-alive connections; they close with the process.
        closeIdle: () => {},
        destroy: () => {
          stop();
          (app as unknown as { close(): void }).close();
        },
      });
    });
  });
}
