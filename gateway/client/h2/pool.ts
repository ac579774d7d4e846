// HTTP/2 to one upstream address: one session (prior knowledge in cleartext, or TLS with
// ALPN h2 through the client's TLS origination) carries every request as a stream. The
// response comes back through the same handler events as HTTP/1's (head, data with
// backpressure, end with trailers), so the layers above never know the protocol. A
// session that fails or is told to go away is replaced for the next request; requests
// that arrive while it connects wait for it.

import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type Settings,
} from "node:http2";
import type { Socket } from "node:net";
import { H2_CONNECTION_SPECIFIC } from "../../http/headers.js";
import type { UpstreamControl, UpstreamHandler, UpstreamRequest } from "../http1/connection.js";
import { type ConnectionCounters, connectError, type TlsOrigination } from "../http1/pool.js";
import { ResponseLimitError } from "../http1/response-parser.js";

export interface H2PoolOptions {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs?: number;
  /** Requests that may wait for the session; more are refused at once. */
  readonly maxWaiters?: number;
  /** Originate TLS (ALPN h2) to the address. */
  readonly tls?: TlsOrigination;
  readonly counters?: ConnectionCounters;
  /** SETTINGS this side announces (the client's h2 parameters). */
  readonly settings?: Settings;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

interface Waiting {
  readonly req: UpstreamRequest;
  readonly handler: UpstreamHandler;
}

export class H2Pool {
  private session: ClientHttp2Session | undefined;
  private connecting = false;
  private readonly queue: Waiting[] = [];
  private readonly sessions = new Set<ClientHttp2Session>();
  private readonly authority: string;

  constructor(private readonly opts: H2PoolOptions) {
    this.authority = `${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${opts.port}`;
  }

  get waiting(): number {
    return this.queue.length;
  }

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    const session = this.session;
    if (session !== undefined && !session.closed && !session.destroyed) {
      new H2Call(session, req, handler, this.opts.tls !== undefined).start();
      return;
    }
    const max = this.opts.maxWaiters;
    if (max !== undefined && this.queue.length >= max) {
      handler.onError(connectError("EWAITERS", `${this.authority}: too many requests waiting`));
      return;
    }
    this.queue.push({ req, handler });
    if (!this.connecting) this.open();
  }

  /** HTTP/2 carries no Upgrade (RFC 8441's extended CONNECT is not spoken upstream). */
  openTunnel(done: (err: Error | undefined, socket: Socket | undefined) => void): void {
    done(new Error(`${this.authority} speaks HTTP/2: an Upgrade cannot be sent to it`), undefined);
  }

  close(): Promise<void> {
    return this.each((s) => s.close());
  }

  destroy(): Promise<void> {
    return this.each((s) => s.destroy());
  }

  private each(act: (s: ClientHttp2Session) => void): Promise<void> {
    const all = [...this.sessions];
    this.session = undefined;
    for (const w of this.queue.splice(0)) w.handler.onError(new Error("the client is closing"));
    const closed = (s: ClientHttp2Session) =>
      new Promise<void>((r) => {
        if (s.destroyed) return r();
        s.once("close", r);
        act(s);
      });
    return Promise.all(all.map(closed)).then(() => {});
  }

  private open(): void {
    this.connecting = true;
    const timeoutMs = this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const tls = this.opts.tls;
    if (tls === undefined) {
      this.started(
        connect(`http://${this.authority}`, {
          peerMaxConcurrentStreams: 1000,
          settings: this.opts.settings,
        }),
        timeoutMs,
      );
      return;
    }
    tls.connect(this.opts.host, this.opts.port, timeoutMs, (err, socket) => {
      if (err !== undefined || socket === undefined)
        return this.failed(err ?? new Error("TLS failed"));
      this.started(
        connect(`https://${this.authority}`, {
          createConnection: () => socket,
          settings: this.opts.settings,
        }),
        timeoutMs,
      );
    });
  }

  private started(session: ClientHttp2Session, timeoutMs: number): void {
    const timer = setTimeout(() => {
      session.destroy(
        connectError("ETIMEDOUT", `connecting to ${this.authority} took over ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      this.failed(err);
    };
    session.once("error", onError);
    session.once("connect", () => {
      clearTimeout(timer);
      session.off("error", onError);
      session.on("error", ignore);
      this.connecting = false;
      this.session = session;
      this.sessions.add(session);
      const counters = this.opts.counters;
      if (counters) {
        counters.connects.n++;
        counters.connections.n++;
      }
      // A session going away takes no new streams: the next request opens another.
      session.once("goaway", () => {
        if (this.session === session) this.session = undefined;
      });
      session.once("close", () => {
        this.sessions.delete(session);
        if (counters) counters.connections.n--;
        if (this.session === session) this.session = undefined;
      });
      const waiting = this.queue.splice(0);
      for (const w of waiting) this.dispatch(w.req, w.handler);
    });
  }

  private failed(err: Error): void {
    this.connecting = false;
    for (const w of this.queue.splice(0)) w.handler.onError(err);
  }
}

/** One request as one stream, reported to its handler as an HTTP/1 exchange would be. */
class H2Call implements UpstreamControl {
  private stream: ClientHttp2Stream | undefined;
  private trailers: string[] | undefined;
  private done = false;
  private bytes = 0;

  constructor(
    private readonly session: ClientHttp2Session,
    private readonly req: UpstreamRequest,
    private readonly handler: UpstreamHandler,
    private readonly secure: boolean,
  ) {}

  start(): void {
    const req = this.req;
    const headers: OutgoingHttpHeaders = {
      ":method": req.method,
      ":path": req.path,
      ":scheme": this.secure ? "https" : "http",
    };
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i]!;
      const value = h[i + 1]!;
      if (name === "host") headers[":authority"] = value;
      // te: only "trailers" may cross (RFC 9113 §8.2.2).
      else if (name === "te") {
        if (value.toLowerCase().includes("trailers")) headers.te = "trailers";
      } else if (!H2_CONNECTION_SPECIFIC.has(name)) {
        const had = headers[name];
        headers[name] = had === undefined ? value : [...[had].flat().map(String), value];
      }
    }
    if (req.contentLength !== undefined) headers["content-length"] = req.contentLength;
    let stream: ClientHttp2Stream;
    try {
      stream = this.session.request(headers, { endStream: req.body === null });
    } catch (e) {
      this.handler.onError(e as Error);
      return;
    }
    this.stream = stream;
    this.handler.onStart(this);
    stream.on("response", this.onResponse);
    stream.on("trailers", this.onTrailers);
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("error", this.onError);
    stream.on("close", this.onClose);
    if (req.body !== null) {
      req.body.on("error", (e: Error) => this.abort(e));
      req.body.pipe(stream);
    }
  }

  abort(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.stream?.close(constants.NGHTTP2_CANCEL);
    this.handler.onError(err);
  }

  resume(): void {
    this.stream?.resume();
  }

  private readonly onResponse = (h: IncomingHttpHeaders) => {
    const status = Number(h[":status"]);
    this.handler.onHead(status, flatten(h));
  };

  private readonly onTrailers = (h: IncomingHttpHeaders) => {
    this.trailers = flatten(h);
  };

  private readonly onData = (chunk: Buffer) => {
    if (this.done) return;
    this.bytes += chunk.length;
    const limits = this.req.responseLimits;
    if (limits !== undefined && this.bytes > limits.maxBodyBytes) {
      this.abort(
        new ResponseLimitError(
          "maxResponseKB",
          `is over maxResponseKB (${Math.floor(limits.maxBodyBytes / 1024)} KB): its body ran past ${limits.maxBodyBytes} bytes`,
        ),
      );
      return;
    }
    if (!this.handler.onData(chunk)) this.stream?.pause();
  };

  private readonly onEnd = () => {
    if (this.done) return;
    this.done = true;
    this.handler.onEnd(this.trailers);
  };

  private readonly onError = (err: Error) => {
    if (this.done) return;
    this.done = true;
    this.handler.onError(err);
  };

  private readonly onClose = () => {
    if (this.done) return;
    this.done = true;
    const code = this.stream?.rstCode;
    this.handler.onError(
      new Error(`the upstream reset the HTTP/2 stream (code ${code ?? "unknown"})`),
    );
  };
}

/** Response fields (no pseudo-headers) as the flat list the handlers take. */
function flatten(h: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 58) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, String(v));
  }
  return out;
}

const ignore = () => {};
