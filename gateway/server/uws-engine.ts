// The `uws` engine: uWebSockets.js, the fast path for edge traffic. Its limits (measured
// with the 20.30 build): requests using HTTP/1.0, absolute-form targets, header names
// with `_`, more than ~50 headers, `OPTIONS *`, CONNECT or a Content-Length of 10 digits
// or more get no response (the connection is left to uws's ~10 s idle timeout); it adds
// `Date` and `uWebSockets: 20` headers and cannot send trailers.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { STATUS_CODES } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { HttpRequest, HttpResponse, us_listen_socket } from "@trufflesuite/uws-js-unofficial";
import type { CertificateSet, ServedCertificate } from "../../tls/certificate-set.js";
import type { CidrSet } from "../http/cidr.js";
import type { ServerExchange } from "../http/exchange.js";
import { freePort } from "./free-port.js";
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

/** One request on a uws listener (exported for its unit tests). */
export class UwsExchange implements ServerExchange {
  readonly method: string;
  readonly url: string;
  readonly httpVersion = "1.1";
  headers: readonly string[];
  readonly remotePort = 0;
  readonly clientPort = 0;
  // Read from uws only when asked (most requests never need them), while res is valid.
  private remote: string | undefined;
  private client: string | undefined;
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
  /** end() came while a chunk was pending: it runs once the chunk is out. */
  private endWhenWritten = false;

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
    const headers: string[] = [];
    this.headers = headers;
    // The few headers the engine itself needs are picked up in the same pass (the first
    // of each, as getHeader would give), sparing a native call each.
    let cl: string | undefined;
    let hasTransferEncoding = false;
    let connection = "";
    req.forEach((k, v) => {
      headers.push(k, v);
      if (k === "content-length") cl ??= v;
      else if (k === "transfer-encoding") hasTransferEncoding ||= v !== "";
      else if (k === "connection" && connection === "") connection = v;
    });
    // uws reads a PROXY v2 header whenever one comes; it counts only where configured.
    if (ctx.proxyFrom) {
      const proxied = Buffer.from(res.getProxiedRemoteAddressAsText()).toString();
      this.refused = proxied === "" || !ctx.proxyFrom.has(this.remoteAddress);
      this.client = proxied || this.remoteAddress;
    } else {
      this.refused = false;
    }
    this.contentLength = cl === undefined || cl === "" ? undefined : Number(cl);
    this.hasBody = (this.contentLength ?? 0) > 0 || hasTransferEncoding;
    this.clientWantsClose = connection !== "" && /(^|,)\s*close\s*(,|$)/i.test(connection);
    res.onAborted(this.onAborted);
    if (this.hasBody) {
      // uws delivers body data only to a handler registered now, synchronously.
      const body = new UwsBody(this);
      this.bodyStream = body;
      res.onData((ab, last) => body.feed(ab, last));
    }
  }

  get remoteAddress(): string {
    if (this.remote === undefined) {
      this.remote = this.aborted || this.done ? "" : remoteText(this.res);
    }
    return this.remote;
  }

  get clientAddress(): string {
    return this.client ?? this.remoteAddress;
  }

  private readonly onAborted = () => {
    this.aborted = true;
    this.bodyStream?.destroy(new Error("the client closed the connection"));
    const handlers = this.abortHandlers;
    this.abortHandlers = undefined;
    if (handlers && !this.done) for (const h of handlers) h();
  };

  replaceHeaders(headers: readonly string[]): void {
    this.headers = headers;
  }

  pauseRequest(): void {
    if (!this.aborted) this.res.pause();
  }

  resumeRequest(): void {
    if (!this.aborted) this.res.resume();
  }

  body(): Readable {
    return this.bodyStream ?? Readable.from([]);
  }

  /** uws asks no client certificate (mTLS needs engine: net). */
  peerCertificate(): undefined {
    return undefined;
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

  /** Writes the head; `closing` says the connection closes after this response. */
  private flushHead(closing: boolean): void {
    if (this.headWritten) return;
    this.headWritten = true;
    const res = this.res;
    res.writeStatus(statusLine(this.status));
    const h = this.headHeaders!;
    for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, h[i + 1]!);
    // RFC 9112 §9.6: say so (uws closes without telling; clients then count an error).
    if (closing) res.writeHeader("connection", "close");
  }

  write(chunk: Buffer): boolean {
    if (this.aborted) return true;
    let ok = true;
    this.res.cork(() => {
      // Streamed: uws closes after it only when the client asked.
      this.flushHead(this.clientWantsClose);
      if (this.length === undefined) {
        ok = this.res.write(chunk);
        return;
      }
      const offset = this.res.getWriteOffset();
      const [written, complete] = this.res.tryEnd(chunk, this.length);
      if (complete) this.done = true;
      if (!written) {
        // Kept until the client reads more; the chunk's memory is the client's to reuse.
        this.pendingChunk = Buffer.from(chunk);
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
        if (this.endWhenWritten) {
          // The upstream has finished: nothing more to read, only to end.
          this.endWhenWritten = false;
          this.end();
          return true;
        }
      }
      cb();
      return true;
    });
  }

  end(): void {
    if (this.aborted || this.done) return;
    if (this.pendingChunk) {
      // The last bytes met backpressure; ending now would cut them off.
      this.endWhenWritten = true;
      return;
    }
    this.done = true;
    this.res.cork(() => {
      const noBody = this.method === "HEAD" || this.status === 204 || this.status === 304;
      if (noBody && !this.headWritten) {
        const closing = this.closeAfter || this.clientWantsClose;
        this.flushHead(closing);
        const length = this.status === 204 ? undefined : this.length;
        // uws closes after a bodiless response only when given a length (an explicit
        // undefined becomes 2^63); so a closing 204 states Content-Length: 0.
        if (closing) this.res.endWithoutBody(length ?? 0, true);
        else if (length === undefined) this.res.endWithoutBody();
        else this.res.endWithoutBody(length);
        return;
      }
      this.flushHead(this.clientWantsClose);
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
      const closing = this.closeAfter || this.clientWantsClose;
      this.flushHead(closing);
      // Status, headers and body in one end(): the only way uws closes cleanly after it.
      this.res.end(body, closing);
    });
  }

  readonly condemned = false;
}

type UwsApp = ReturnType<Uws["App"]>;

/**
 * Every uws app open in this thread. A worker thread must close them all before it ends:
 * uws leaves handles on the thread's loop that otherwise abort the whole process.
 */
const openApps = new Set<UwsApp>();
/** Follow-up closes (see closeApp) still to come, each settling when done. */
const closing = new Set<Promise<void>>();
/** close() again this many times, CLOSE_AGAIN_MS apart, after the first. */
const FOLLOW_UP_CLOSES = 3;
const CLOSE_AGAIN_MS = 10;

function openApp(app: UwsApp): UwsApp {
  openApps.add(app);
  return app;
}

/**
 * Closes the app's listen sockets and connections (uws ≥ 20.30's App.close()). uws holds
 * TLS connections whose handshake it deferred (many arriving at once) outside the app's
 * list for a loop turn, so one close() misses them: they are closed by the next ones.
 */
function closeApp(app: UwsApp): void {
  if (!openApps.delete(app)) return;
  const closable = app as unknown as { close(): void };
  closable.close();
  const done: Promise<void> = new Promise((resolve) => {
    let left = FOLLOW_UP_CLOSES;
    const again = () => {
      closable.close();
      if (--left > 0) setTimeout(again, CLOSE_AGAIN_MS);
      else resolve();
    };
    setTimeout(again, CLOSE_AGAIN_MS);
  });
  closing.add(done);
  void done.then(() => closing.delete(done));
}

/**
 * Closes every uws app of this thread (a worker about to end, even on a crash); resolves
 * once no connection of theirs can be left, when the thread may end.
 */
export async function closeAllUwsApps(): Promise<void> {
  for (const app of [...openApps]) closeApp(app);
  await Promise.all(closing);
}

type RouteHandler = (res: HttpResponse, req: HttpRequest) => void;

export interface UwsListenerContext {
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
  const app = openApp(uws.App());
  const ctx: UwsListenerContext = {
    secure: false,
    ip: opts.ip,
    port: opts.port,
    proxyFrom: opts.proxyProtocol?.from,
  };
  app.any("/*", routeHandler(handler, ctx));
  const ls = await listenApp(app, opts).catch((e: Error) => {
    closeApp(app);
    throw e;
  });
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
      closeApp(app);
    },
  };
}

/** How long an app replaced by a certificate change keeps serving the connections it has. */
const RETIRED_APP_GRACE_MS = 10 * 60_000;
/** How long the old and the new app both accept when certificates change. */
const LISTEN_HANDOVER_MS = 50;
/** Server names a client sent in other letter cases, added on demand (see below), per app. */
const MAX_CASE_VARIANTS = 64;

type UwsCertFiles = { key_file_name: string; cert_file_name: string; passphrase?: string };

/**
 * An SSLApp serving one certificate set: the default certificate is the app's own, every
 * name a certificate serves is added with addServerName (uws picks exact names before
 * wildcards) and routed to the same handler. uws reads certificates from files while the
 * app is built, so they are written to a private folder that is removed right after.
 */
function buildTlsApp(uws: Uws, set: CertificateSet, tls: ListenerTls, route: RouteHandler): UwsApp {
  const dir = mkdtempSync(join(tmpdir(), "lintel-tls-")); // mode 0700
  try {
    const written = new Map<ServedCertificate, UwsCertFiles>();
    const filesOf = (c: ServedCertificate): UwsCertFiles => {
      let f = written.get(c);
      if (!f) {
        const base = join(dir, String(written.size));
        writeFileSync(`${base}.crt`, c.chainPem, { mode: 0o600 });
        writeFileSync(`${base}.key`, c.keyPem, { mode: 0o600 });
        f = { cert_file_name: `${base}.crt`, key_file_name: `${base}.key` };
        if (c.files.passphrase !== undefined) f.passphrase = c.files.passphrase;
        written.set(c, f);
      }
      return f;
    };
    const app = openApp(
      uws.SSLApp({
        ...filesOf(set.defaultCert),
        ...(tls.ciphers ? { ssl_ciphers: tls.ciphers } : {}),
      }),
    );
    app.any("/*", route);
    for (const [name, c] of set.names) {
      app.addServerName(name, filesOf(c));
      app.domain(name).any("/*", route);
    }
    // uws compares server names case-sensitively; names match case-insensitively (RFC 6066
    // §3). A name sent in other letters is added as sent, a bounded number of times.
    let variants = 0;
    app.missingServerName((sent) => {
      const c = sent === sent.toLowerCase() ? undefined : set.match(sent);
      if (!c || variants >= MAX_CASE_VARIANTS) return;
      variants++;
      const variantDir = mkdtempSync(join(tmpdir(), "lintel-tls-"));
      try {
        const base = join(variantDir, "variant");
        writeFileSync(`${base}.crt`, c.chainPem, { mode: 0o600 });
        writeFileSync(`${base}.key`, c.keyPem, { mode: 0o600 });
        app.addServerName(sent, {
          cert_file_name: `${base}.crt`,
          key_file_name: `${base}.key`,
          ...(c.files.passphrase !== undefined ? { passphrase: c.files.passphrase } : {}),
        });
        app.domain(sent).any("/*", route);
      } finally {
        rmSync(variantDir, { recursive: true, force: true });
      }
    });
    return app;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether Linux moves a closed listen socket's pending connections to its reuseport peers. */
function acceptQueuesMigrate(): boolean {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim() === "1";
  } catch {
    return false;
  }
}

/**
 * TLS on uws. uws cannot safely remove a server name while connections use it, so a
 * certificate change builds a new app with the whole set, which takes over the port
 * (SO_REUSEPORT); the old app keeps its connections for RETIRED_APP_GRACE_MS.
 */
async function listenUwsTls(
  uws: Uws,
  opts: ListenerOptions,
  tls: ListenerTls,
  handler: ExchangeHandler,
): Promise<Listener> {
  const ctx: UwsListenerContext = {
    secure: true,
    ip: opts.ip,
    port: opts.port,
    proxyFrom: opts.proxyProtocol?.from,
  };
  const route = routeHandler(handler, ctx);
  if (!acceptQueuesMigrate()) {
    tls.log.warn(
      "certificate changes on the uws engine reset connections still in the accept queue; set net.ipv4.tcp_migrate_req=1 (or use engine: net) for hitless changes",
    );
  }
  const port = opts.port === 0 ? await freePort(opts.ip) : opts.port;
  let app = buildTlsApp(uws, tls.store.current, tls, route);
  let ls: us_listen_socket | undefined = await listenApp(app, { ...opts, port }).catch(
    (e: Error) => {
      closeApp(app);
      throw e;
    },
  );
  ctx.port = port;
  const retired = new Map<UwsApp, NodeJS.Timeout>();
  const handovers = new Map<NodeJS.Timeout, us_listen_socket>();
  let stopped = false;

  const stopReloads = tls.store.onChange((set) => {
    if (stopped) return;
    let next: UwsApp;
    try {
      next = buildTlsApp(uws, set, tls, route);
    } catch (e) {
      tls.log.error("cannot load the new certificates into uws; the previous ones keep serving", {
        error: (e as Error).message,
      });
      return;
    }
    if (!ls) {
      // Not accepting any more (draining): the old app finishes what it has.
      closeApp(next);
      return;
    }
    listenApp(next, { ...opts, port }).then(
      (nextLs) => {
        if (stopped || !ls) {
          uws.us_listen_socket_close(nextLs);
          closeApp(next);
          return;
        }
        // Closing a listen socket resets what waits in its accept queue, which filled while
        // the new app was built: let uws accept those first. Meanwhile the kernel spreads new
        // connections over both sockets.
        const oldLs = ls;
        const handover = setTimeout(() => {
          // Close right after an I/O poll (where uws accepts), not after a busy stretch.
          setImmediate(() => {
            if (!handovers.delete(handover)) return;
            uws.us_listen_socket_close(oldLs);
          });
        }, LISTEN_HANDOVER_MS);
        handovers.set(handover, oldLs);
        const old = app;
        retired.set(
          old,
          setTimeout(() => {
            retired.delete(old);
            closeApp(old);
          }, RETIRED_APP_GRACE_MS).unref(),
        );
        app = next;
        ls = nextLs;
      },
      (e: Error) => {
        closeApp(next);
        tls.log.error(
          "cannot take over the port with the new certificates; the previous ones keep serving",
          {
            error: e.message,
          },
        );
      },
    );
  });

  const stop = () => {
    if (ls) uws.us_listen_socket_close(ls);
    ls = undefined;
    for (const [timer, old] of handovers) {
      clearTimeout(timer);
      uws.us_listen_socket_close(old);
    }
    handovers.clear();
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
      for (const [a, timer] of retired) {
        clearTimeout(timer);
        closeApp(a);
      }
      retired.clear();
      closeApp(app);
    },
  };
}

/**
 * The peer's address as text. An IPv4 peer's four bytes are written out here (limits and
 * access rules read the address on every request; uws's text form costs a decode), any
 * other address is uws's text.
 */
function remoteText(res: HttpResponse): string {
  const bin = new Uint8Array(res.getRemoteAddress());
  if (bin.length === 4) return `${bin[0]}.${bin[1]}.${bin[2]}.${bin[3]}`;
  return Buffer.from(res.getRemoteAddressAsText()).toString();
}
