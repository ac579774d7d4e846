// The `uws` engine: uWebSockets.js, the fast path for edge traffic. Its limits (measured
// with the 20.30 build): requests using HTTP/1.0, absolute-form targets, header names
// with `_`, more than ~50 headers, `OPTIONS *`, CONNECT or a Content-Length of 10 digits
// or more get no response (the connection is left to uws's ~10 s idle timeout); it adds
// `Date` and `uWebSockets: 20` headers and cannot send trailers.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { STATUS_CODES } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { HttpRequest, HttpResponse, us_listen_socket } from "@trufflesuite/uws-js-unofficial";
import type { LoadedCertificate } from "../../tls/certificate.js";
import type { CertificateSet } from "../../tls/certificate-set.js";
import type { CidrSet } from "../http/cidr.js";
import type { ServerExchange } from "../http/exchange.js";
import type { ExchangeHandler, Listener, ListenerOptions } from "./listener.js";
import type { ListenerTls } from "./tls-listener.js";
import { loadUws, type Uws } from "./uws-native.js";

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
  readonly clientAddress: string;
  readonly clientPort = 0;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure: boolean;
  /** A PROXY header was required and missing, or came from a peer not allowed to send one. */
  readonly refused: boolean;
  readonly contentLength: number | undefined;
  readonly hasBody: boolean;
  /** The client sent `Connection: close`. */
  private readonly clientWantsClose: boolean;
  aborted = false;
  private abortHandlers: (() => void)[] | undefined;
  private readonly bodyStream: UwsBody | undefined;
  private done = false;
  private closeAfter = false;
  private refuseRest = false;
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
    ctx: UwsListenerContext,
  ) {
    this.secure = ctx.secure;
    this.localAddress = ctx.ip;
    this.localPort = ctx.port;
    this.method = req.getCaseSensitiveMethod();
    const q = req.getQuery();
    this.url = q ? `${req.getUrl()}?${q}` : req.getUrl();
    const headers = this.headers;
    req.forEach((k, v) => {
      headers.push(k, v);
    });
    this.remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    // uws reads a PROXY v2 header whenever one comes; it counts only where configured.
    if (ctx.proxyFrom) {
      const proxied = Buffer.from(res.getProxiedRemoteAddressAsText()).toString();
      this.refused = proxied === "" || !ctx.proxyFrom.has(this.remoteAddress);
      this.clientAddress = proxied || this.remoteAddress;
    } else {
      this.refused = false;
      this.clientAddress = this.remoteAddress;
    }
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
    this.length = length;
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
      // Never ask uws to close here: after body bytes went out it would write its
      // Connection header into the body. A streamed response keeps its connection.
      if (this.length === undefined || this.length === 0) this.res.end();
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

  /**
   * Applies to answers written whole (respond) and bodiless ones; a streamed response
   * keeps its connection (uws can only close in the call that writes the head).
   */
  closeAfterResponse(refuseRest = false): void {
    this.closeAfter = true;
    this.refuseRest ||= refuseRest;
  }

  respond(status: number, headers: readonly string[], body: Buffer): void {
    if (this.aborted || this.done) return;
    this.done = true;
    if (this.refuseRest) {
      // uws would go on to serve a request pipelined behind this one in the same read.
      // Answering a moment later leaves this response pending when uws reaches it, and uws
      // closes a connection that pipelines while a response is pending: the rest is dropped.
      setImmediate(() => this.writeWhole(status, headers, body));
      return;
    }
    this.writeWhole(status, headers, body);
  }

  private writeWhole(status: number, headers: readonly string[], body: Buffer): void {
    if (this.aborted) return;
    this.res.cork(() => {
      this.status = status;
      this.headHeaders = headers;
      this.flushHead();
      // Status, headers and body in one end(): the only way uws closes cleanly after it.
      this.res.end(body, this.closeAfter || this.clientWantsClose);
    });
  }

  readonly condemned = false;
}

type UwsApp = ReturnType<Uws["App"]>;
type RouteHandler = (res: HttpResponse, req: HttpRequest) => void;

interface UwsListenerContext {
  readonly secure: boolean;
  readonly ip: string;
  port: number;
  readonly proxyFrom: CidrSet | undefined;
}

function routeHandler(handler: ExchangeHandler, ctx: UwsListenerContext): RouteHandler {
  return (res, req) => {
    const ex = new UwsExchange(res, req, ctx);
    if (ex.refused) {
      // Only the configured proxies may speak to this listener, and always with a PROXY header.
      res.close();
      return;
    }
    handler(ex);
  };
}

function listenApp(app: UwsApp, opts: ListenerOptions): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    app.listen(opts.ip, opts.port, (ls: us_listen_socket | false) => {
      if (ls) resolve(ls);
      else
        reject(
          new Error(`cannot listen on ${opts.ip}:${opts.port} (address in use or not available)`),
        );
    });
  });
}

export async function listenUws(
  opts: ListenerOptions,
  handler: ExchangeHandler,
): Promise<Listener> {
  const uws = loadUws();
  if (opts.tls) return listenUwsTls(uws, opts, opts.tls, handler);
  const app = uws.App();
  const ctx: UwsListenerContext = {
    secure: false,
    ip: opts.ip,
    port: opts.port,
    proxyFrom: opts.proxyProtocolFrom,
  };
  app.any("/*", routeHandler(handler, ctx));
  const ls = await listenApp(app, opts);
  ctx.port = uws.us_socket_local_port(ls);
  let listening: us_listen_socket | undefined = ls;
  const stop = () => {
    if (listening) uws.us_listen_socket_close(listening);
    listening = undefined;
  };
  return {
    engine: "uws",
    port: uws.us_socket_local_port(ls),
    stopAccepting: stop,
    // uws gives no way to find idle keep-alive connections; they close with the process.
    closeIdle: () => {},
    destroy: () => {
      stop();
      (app as unknown as { close(): void }).close();
    },
  };
}

/**
 * TLS on uws: the default certificate is the app's own; every name a certificate serves is
 * added with addServerName (uws picks exact names before wildcards) and routed to the same
 * handler. uws reads certificates from files, so each is written to a private folder.
 * When certificates change, names are removed and added in place; when the default
 * changes, a new app takes over the port (SO_REUSEPORT) and the old one keeps its
 * connections until they close.
 */
async function listenUwsTls(
  uws: Uws,
  opts: ListenerOptions,
  tls: ListenerTls,
  handler: ExchangeHandler,
): Promise<Listener> {
  const dir = mkdtempSync(join(tmpdir(), "lintel-tls-"));
  chmodSync(dir, 0o700);
  const written = new Map<
    string,
    { key_file_name: string; cert_file_name: string; passphrase?: string }
  >();
  const filesOf = (c: LoadedCertificate) => {
    let f = written.get(c.fingerprint);
    if (!f) {
      const base = join(dir, c.fingerprint.slice(0, 32));
      writeFileSync(`${base}.crt`, c.chainPem, { mode: 0o600 });
      writeFileSync(`${base}.key`, c.keyPem, { mode: 0o600 });
      f = { cert_file_name: `${base}.crt`, key_file_name: `${base}.key` };
      if (c.files.passphrase !== undefined) f.passphrase = c.files.passphrase;
      written.set(c.fingerprint, f);
    }
    return f;
  };
  const ctx: UwsListenerContext = {
    secure: true,
    ip: opts.ip,
    port: opts.port,
    proxyFrom: opts.proxyProtocolFrom,
  };
  const route = routeHandler(handler, ctx);
  const served = new Map<string, string>(); // name → certificate fingerprint on the current app
  const makeApp = (set: CertificateSet): UwsApp => {
    const app = uws.SSLApp({
      ...filesOf(set.defaultCert),
      ...(tls.ciphers ? { ssl_ciphers: tls.ciphers } : {}),
    });
    app.any("/*", route);
    served.clear();
    for (const [name, c] of set.names) addName(app, name, c);
    return app;
  };
  const addName = (app: UwsApp, name: string, c: LoadedCertificate) => {
    app.addServerName(name, filesOf(c));
    app.domain(name).any("/*", route);
    served.set(name, c.fingerprint);
  };
  let app = makeApp(tls.store.current);
  let defaultFingerprint = tls.store.current.defaultCert.fingerprint;
  let ls: us_listen_socket | undefined = await listenApp(app, opts);
  const port = uws.us_socket_local_port(ls);
  ctx.port = port;
  const retired: UwsApp[] = [];
  let stopped = false;

  const stopReloads = tls.store.onChange((set) => {
    if (stopped) return;
    if (set.defaultCert.fingerprint !== defaultFingerprint) {
      const next = makeApp(set);
      listenApp(next, { ...opts, port }).then(
        (nextLs) => {
          if (ls) uws.us_listen_socket_close(ls);
          retired.push(app);
          app = next;
          ls = nextLs;
          defaultFingerprint = set.defaultCert.fingerprint;
        },
        () => {
          // Could not take over the port: keep serving the old default (the store logged the change).
        },
      );
      return;
    }
    for (const [name, fp] of [...served]) {
      const c = set.names.get(name);
      if (!c || c.fingerprint !== fp) {
        app.removeServerName(name);
        served.delete(name);
      }
    }
    for (const [name, c] of set.names) if (!served.has(name)) addName(app, name, c);
  });

  const stop = () => {
    if (ls) uws.us_listen_socket_close(ls);
    ls = undefined;
  };
  return {
    engine: "uws",
    port,
    stopAccepting: stop,
    closeIdle: () => {},
    destroy: () => {
      stopped = true;
      stopReloads();
      stop();
      for (const a of [...retired, app]) (a as unknown as { close(): void }).close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
