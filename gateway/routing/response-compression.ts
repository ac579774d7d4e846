// Response compression at the edge: a router's `compressionLevel` (Finagle's: gzip only;
// 1..9 every eligible response at that zlib level, -1 textual types only at zlib's default
// level, 0 or unset off and free) and the `compression` layer (gzip and brotli in a
// preference order, configured content types, a minimum size). A response is eligible
// when the upstream did not encode it, it has a body worth compressing, it is not a range,
// and it does not forbid transformation; it is compressed when the client accepts one of
// the encodings (Accept-Encoding with q-values). A body of known length up to
// WHOLE_BODY_MAX_BYTES is compressed in one call once it is complete; any other streams
// through node:zlib with backpressure both ways: the upstream is paused while zlib is
// full, zlib while the client is slow. What zlib has is flushed after each batch of
// upstream reads, as Netty's compressor does per chunk, so a streamed response (events,
// watches) is not held back.

import {
  type BrotliCompress,
  brotliCompressSync,
  constants,
  createBrotliCompress,
  createGzip,
  type Gzip,
  gzipSync,
} from "node:zlib";
import type { ServerExchange } from "../http/exchange.js";
import { getHeader } from "../http/headers.js";
import type { Counter, Registry } from "../telemetry/index.js";

/** Bodies declared smaller than this are not worth compressing (unknown lengths are). */
export const MIN_COMPRESSED_BYTES = 1024;

/**
 * Bodies of a known length up to this are compressed whole, in one call on the request's
 * thread once they are complete, rather than streamed through zlib on the thread pool:
 * a zlib stream per response costs two to three times the CPU of one call (its state
 * built for each, a trip to the pool per write), and the pool's 4 threads are shared by
 * every worker. One call takes at most about 0.5 ms (64 KiB at gzip 6 or brotli 4).
 */
export const WHOLE_BODY_MAX_BYTES = 64 * 1024;

/** The content codings lintel produces. */
export type Encoding = "br" | "gzip";
export const ENCODINGS: readonly Encoding[] = ["br", "gzip"];

/** zlib's own default level: most of gzip's ratio at a moderate cost. */
export const DEFAULT_GZIP_LEVEL = 6;
/**
 * Brotli's quality by default: 4 makes a 16 KiB JSON body smaller than gzip 6 does, in
 * less CPU time (about 90 µs against 100 µs on the bench machine); 5 costs about twice as
 * much for a few percent, and brotli's own default (11) is for precompressed assets.
 */
export const DEFAULT_BROTLI_QUALITY = 4;

/** What compressionLevel -1 compresses: Finagle's textual types. */
export const TEXTUAL_TYPES: readonly string[] = [
  "text/*",
  "application/json",
  "application/javascript",
  "application/xml",
  "image/svg+xml",
  "*/*+json",
  "*/*+xml",
];

/** The `compression` layer's default content types: the textual ones, and a few that compress as well. */
export const DEFAULT_CONTENT_TYPES: readonly string[] = [
  ...TEXTUAL_TYPES,
  "application/x-javascript",
  "application/wasm",
  "font/ttf",
  "font/otf",
];

const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i;
const VARIES_ON_ENCODING = /(?:^|,)\s*(?:\*|accept-encoding)\s*(?:,|$)/i;
const Q_PARAM = /(?:^|;)\s*q\s*=\s*([0-9.]+)/i;
/** An RFC 9110 token, less `*` (the patterns' wildcard). */
const TOKEN = "[a-z0-9!#$%&'+.^_`|~-]+";
/** `type/subtype`, `type/*`, `type/*+suffix`, `*\/*+suffix` or `*\/*` (lower case). */
const TYPE_PATTERN = new RegExp(
  `^(?:${TOKEN}/(?:\\*|\\*\\+${TOKEN}|${TOKEN})|\\*/\\*(?:\\+${TOKEN})?)$`,
);

/** Why `pattern` is not a content-type pattern, or undefined when it is one. */
export function contentTypeProblem(pattern: string): string | undefined {
  const p = pattern.trim().toLowerCase();
  if (TYPE_PATTERN.test(p)) return undefined;
  return `expected a content type such as text/html, text/* or application/*+json, got ${JSON.stringify(pattern)}`;
}

/** The media type of a Content-Type field value: lower case, without parameters. */
function mediaType(contentType: string): string {
  const semi = contentType.indexOf(";");
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/** A list of content-type patterns, matched against a response's Content-Type. */
export class ContentTypes {
  private readonly exact = new Set<string>();
  /** `text` for `text/*`. */
  private readonly majors = new Set<string>();
  /** `["application/", "+json"]` for `application/*+json`; `["", "+json"]` for `*\/*+json`. */
  private readonly suffixes: [prefix: string, suffix: string][] = [];
  /** `*\/*`: every response, with a Content-Type or without. */
  private readonly all: boolean = false;

  constructor(patterns: readonly string[]) {
    for (const raw of patterns) {
      const problem = contentTypeProblem(raw);
      if (problem !== undefined) throw new Error(problem);
      const p = raw.trim().toLowerCase();
      const slash = p.indexOf("/");
      const major = p.slice(0, slash);
      const minor = p.slice(slash + 1);
      if (p === "*/*") this.all = true;
      else if (minor === "*") this.majors.add(major);
      else if (minor.startsWith("*+"))
        this.suffixes.push([major === "*" ? "" : `${major}/`, minor.slice(1)]);
      else this.exact.add(p);
    }
  }

  /** Whether a Content-Type field value (parameters allowed; undefined: none) is listed. */
  matches(contentType: string | undefined): boolean {
    if (this.all) return true;
    if (contentType === undefined) return false;
    const t = mediaType(contentType);
    if (this.exact.has(t)) return true;
    const slash = t.indexOf("/");
    if (slash <= 0) return false;
    if (this.majors.has(t.slice(0, slash))) return true;
    for (const [prefix, suffix] of this.suffixes)
      if (t.endsWith(suffix) && t.startsWith(prefix) && t.length > prefix.length + suffix.length)
        return true;
    return false;
  }
}

const TEXTUAL = new ContentTypes(TEXTUAL_TYPES);

/** Whether a Content-Type (parameters allowed) is one compressionLevel -1 compresses. */
export function isTextual(contentType: string): boolean {
  return TEXTUAL.matches(contentType);
}

/**
 * The encoding to send among `offered` (in the server's preference order), by the
 * request's Accept-Encoding fields (RFC 9110 §12.5.3): the one with the highest q above
 * 0, named (`x-gzip` is gzip) or else through `*`; on a tie, the one offered first. None
 * when no field accepts one, or when the client names `identity` with a higher q than
 * the best (it prefers the body as it is). No Accept-Encoding: none.
 */
export function chooseEncoding(
  headers: readonly string[],
  offered: readonly Encoding[],
): Encoding | undefined {
  // Each coding's q as named; -1 when not named.
  let br = -1;
  let gzip = -1;
  let any = -1;
  let identity = -1;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== "accept-encoding") continue;
    for (const part of headers[i + 1]!.split(",")) {
      const semi = part.indexOf(";");
      const coding = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
      let q = 1;
      if (semi >= 0) {
        const m = Q_PARAM.exec(part.slice(semi));
        const n = m ? Number(m[1]) : Number.NaN;
        if (!Number.isNaN(n)) q = n;
      }
      if (coding === "br") br = Math.max(br, q);
      else if (coding === "gzip" || coding === "x-gzip") gzip = Math.max(gzip, q);
      else if (coding === "*") any = Math.max(any, q);
      else if (coding === "identity") identity = Math.max(identity, q);
    }
  }
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const e of offered) {
    const named = e === "br" ? br : gzip;
    const q = named >= 0 ? named : Math.max(any, 0);
    if (q > bestQ) {
      best = e;
      bestQ = q;
    }
  }
  return best !== undefined && identity > bestQ ? undefined : best;
}

/** Whether the request's Accept-Encoding fields accept gzip (see chooseEncoding). */
export function acceptsGzip(headers: readonly string[]): boolean {
  return chooseEncoding(headers, ["gzip"]) !== undefined;
}

/** Adds `accept-encoding` to the response's Vary (or a Vary), unless it varies on it or on `*`. */
export function varyOnEncoding(headers: string[]): void {
  let varyAt = -1;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== "vary") continue;
    if (VARIES_ON_ENCODING.test(headers[i + 1]!)) return;
    if (varyAt < 0) varyAt = i;
  }
  if (varyAt < 0) headers.push("vary", "accept-encoding");
  else {
    const v = headers[varyAt + 1]!.trim();
    headers[varyAt + 1] = v === "" ? "accept-encoding" : `${v}, accept-encoding`;
  }
}

/**
 * The response head as sent encoded: `content-encoding`, `accept-encoding` added to Vary,
 * a strong ETag made weak (the bytes differ from the upstream's), Accept-Ranges dropped
 * (ranges of the encoded stream cannot be served). Content-Length is not in `headers`.
 */
export function encodedHead(headers: string[], encoding: Encoding): void {
  varyOnEncoding(headers);
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i]!;
    if (name === "accept-ranges") headers.splice(i, 2);
    else if (name === "etag") {
      const v = headers[i + 1]!;
      if (!v.startsWith("W/")) headers[i + 1] = `W/${v}`;
    }
  }
  headers.push("content-encoding", encoding);
}

/** The head of a gzip-encoded response (see encodedHead). */
export function gzipHead(headers: string[]): void {
  encodedHead(headers, "gzip");
}

/** One encoding's counters: responses compressed, bytes before and after. */
export interface EncodingCounters {
  readonly responses: Counter;
  readonly uncompressedBytes: Counter;
  readonly compressedBytes: Counter;
}

/**
 * A router's compression metrics per encoding, `rt/<router>/compression/<encoding>/…`
 * (Prometheus `rt:compression:…{rt, encoding}`): shared by its compression layers.
 */
export class CompressionStats {
  readonly br: EncodingCounters;
  readonly gzip: EncodingCounters;

  constructor(registry: Registry, routerLabel: string) {
    const of = (encoding: Encoding): EncodingCounters => {
      const scope = registry.scope({
        flat: `rt/${routerLabel}/compression/${encoding}`,
        prom: "rt:compression",
        labels: [
          ["rt", routerLabel],
          ["encoding", encoding],
        ],
      });
      return {
        responses: scope.counter("responses"),
        uncompressedBytes: scope.counter("uncompressed_bytes"),
        compressedBytes: scope.counter("compressed_bytes"),
      };
    };
    this.br = of("br");
    this.gzip = of("gzip");
  }
}

/** How a ResponseCompression compresses (see the `compression` layer's keys). */
export interface CompressionOptions {
  /** The encodings offered, most preferred first. */
  readonly encodings: readonly Encoding[];
  /** The content types compressed (patterns); undefined: every response, typed or not. */
  readonly contentTypes: readonly string[] | undefined;
  /** Bodies declared smaller are sent as they are. */
  readonly minBytes: number;
  /** zlib level, 1 (fastest) to 9 (smallest). */
  readonly gzipLevel: number;
  /** Brotli quality, 0 (fastest) to 11 (smallest). */
  readonly brotliQuality: number;
  /** Where compressed responses are counted; undefined: nowhere. */
  readonly stats?: CompressionStats;
}

/** A router's compressionLevel (not 0) as options: gzip; -1 textual types at level 6. */
export function compressionLevelOptions(level: number): CompressionOptions {
  if (!Number.isInteger(level) || level < -1 || level > 9 || level === 0)
    throw new Error(`compressionLevel ${level}: expected -1 or 1 to 9`);
  return {
    encodings: ["gzip"],
    contentTypes: level === -1 ? TEXTUAL_TYPES : undefined,
    minBytes: MIN_COMPRESSED_BYTES,
    gzipLevel: level === -1 ? DEFAULT_GZIP_LEVEL : level,
    brotliQuality: DEFAULT_BROTLI_QUALITY,
  };
}

/** What a compressed body tells the response writer. */
export interface CompressedBodyOwner {
  /** zlib has room again: the upstream may be resumed. */
  compressorDrained(): void;
  /** `bytes` of compressed body went to the client. */
  compressedSent(bytes: number): void;
  /** The compressed body ended (the client's response is complete), or zlib failed (`err`). */
  compressedEnded(err: Error | undefined): void;
}

/**
 * Decides per response whether and how it is compressed: made once (a router's
 * compressionLevel, a compression layer) and shared by every response it sees.
 */
export class ResponseCompression {
  readonly encodings: readonly Encoding[];
  private readonly types: ContentTypes | undefined;
  private readonly minBytes: number;
  private readonly gzipLevel: number;
  private readonly brotliParams: Readonly<Record<number, number>>;
  private readonly stats: CompressionStats | undefined;

  /** A compressionLevel (-1 or 1..9), or a compression layer's options. */
  constructor(config: number | CompressionOptions) {
    const o = typeof config === "number" ? compressionLevelOptions(config) : config;
    if (o.encodings.length === 0) throw new Error("compression: no encodings");
    if (!Number.isInteger(o.gzipLevel) || o.gzipLevel < 1 || o.gzipLevel > 9)
      throw new Error(`gzipLevel ${o.gzipLevel}: expected 1 to 9`);
    if (!Number.isInteger(o.brotliQuality) || o.brotliQuality < 0 || o.brotliQuality > 11)
      throw new Error(`brotliQuality ${o.brotliQuality}: expected 0 to 11`);
    this.encodings = [...o.encodings];
    this.types = o.contentTypes === undefined ? undefined : new ContentTypes(o.contentTypes);
    this.minBytes = o.minBytes;
    this.gzipLevel = o.gzipLevel;
    this.brotliParams = { [constants.BROTLI_PARAM_QUALITY]: o.brotliQuality };
    this.stats = o.stats;
  }

  /**
   * Whether the response to `ex` with `status`, `headers` (the client's head, without
   * Content-Length) and body `length` (undefined: chunked or until close) is compressed.
   */
  applies(
    ex: ServerExchange,
    status: number,
    headers: readonly string[],
    length: number | undefined,
  ): boolean {
    return this.eligible(ex, status, headers, length) && this.negotiate(ex) !== undefined;
  }

  /**
   * Starts compressing the response to `ex` when it applies: rewrites `headers` for the
   * chosen encoding and returns the body's compressor; undefined when the response goes
   * as it is (with `accept-encoding` added to Vary when only the request kept it so).
   */
  begin(
    ex: ServerExchange,
    status: number,
    headers: string[],
    length: number | undefined,
    owner: CompressedBodyOwner,
  ): CompressedBody | undefined {
    if (!this.eligible(ex, status, headers, length)) return undefined;
    const encoding = this.negotiate(ex);
    if (encoding === undefined) {
      // Another request for the same resource may get it encoded: caches must know.
      varyOnEncoding(headers);
      return undefined;
    }
    encodedHead(headers, encoding);
    const counters = this.stats?.[encoding];
    if (counters !== undefined) counters.responses.n++;
    // The length, when known, lets brotli size its buffers to the body.
    const params =
      length === undefined
        ? this.brotliParams
        : { ...this.brotliParams, [constants.BROTLI_PARAM_SIZE_HINT]: length };
    if (length !== undefined && length <= WHOLE_BODY_MAX_BYTES) {
      const level = this.gzipLevel;
      const compress =
        encoding === "gzip"
          ? (b: Buffer) => gzipSync(b, { level })
          : (b: Buffer) => brotliCompressSync(b, { params });
      return new WholeBody(ex, length, compress, owner, counters);
    }
    if (encoding === "gzip")
      return new StreamedBody(
        ex,
        createGzip({ level: this.gzipLevel }),
        constants.Z_SYNC_FLUSH,
        owner,
        counters,
      );
    return new StreamedBody(
      ex,
      createBrotliCompress({ params }),
      constants.BROTLI_OPERATION_FLUSH,
      owner,
      counters,
    );
  }

  /** The response side: what the upstream answered allows compression. */
  private eligible(
    ex: ServerExchange,
    status: number,
    headers: readonly string[],
    length: number | undefined,
  ): boolean {
    if (status < 200 || status === 204 || status === 206 || status === 304) return false;
    if (ex.method === "HEAD") return false;
    if (length !== undefined && length < this.minBytes) return false;
    let type: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name === "content-encoding" || name === "content-range") return false;
      if (name === "cache-control" && NO_TRANSFORM.test(headers[i + 1]!)) return false;
      if (name === "content-type") type ??= headers[i + 1]!;
    }
    return this.types === undefined || this.types.matches(type);
  }

  /** The request side: the encoding the client takes; none for a range request. */
  private negotiate(ex: ServerExchange): Encoding | undefined {
    const h = ex.headers;
    // The client asked for part of the upstream's bytes: they go as they are.
    if (getHeader(h, "range") !== undefined) return undefined;
    return chooseEncoding(h, this.encodings);
  }
}

/** One response body on its way to the client encoded: what the response writer feeds. */
export interface CompressedBody {
  /** Upstream body bytes (valid only during the call); false: wait for compressorDrained. */
  write(chunk: Buffer): boolean;
  /** The upstream body is complete: the rest of the output, then the client's response ends. */
  end(trailers: string[] | undefined): void;
  /** Stops (the client left, or the upstream failed): nothing more is written. */
  destroy(): void;
}

/**
 * A body of known length (at most WHOLE_BODY_MAX_BYTES): kept until complete, then
 * compressed in one call and written at once, on a later turn of the event loop.
 */
export class WholeBody implements CompressedBody {
  private readonly body: Buffer;
  private received = 0;
  private trailers: string[] | undefined;
  private over = false;

  constructor(
    private readonly ex: ServerExchange,
    length: number,
    private readonly compress: (body: Buffer) => Buffer,
    private readonly owner: CompressedBodyOwner,
    private readonly counters: EncodingCounters | undefined,
  ) {
    this.body = Buffer.allocUnsafe(length);
  }

  write(chunk: Buffer): boolean {
    if (this.over) return true;
    if (this.received + chunk.length > this.body.length) {
      this.fail(new Error(`the body is longer than its Content-Length (${this.body.length})`));
      return true;
    }
    chunk.copy(this.body, this.received);
    this.received += chunk.length;
    return true;
  }

  end(trailers: string[] | undefined): void {
    if (this.over) return;
    this.trailers = trailers;
    setImmediate(this.finish);
  }

  destroy(): void {
    this.over = true;
  }

  private readonly finish = () => {
    if (this.over) return;
    const plain = this.body.subarray(0, this.received);
    let out: Buffer;
    try {
      out = this.compress(plain);
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    this.over = true;
    const c = this.counters;
    if (c !== undefined) {
      c.uncompressedBytes.n += plain.length;
      c.compressedBytes.n += out.length;
    }
    this.owner.compressedSent(out.length);
    // Bounded by the body's size: the engine keeps what the client is not ready for.
    this.ex.write(out);
    this.ex.end(this.trailers);
    this.owner.compressedEnded(undefined);
  };

  private fail(err: Error): void {
    this.over = true;
    this.owner.compressedEnded(err);
  }
}

/** The zlib stream of one response: gzip or brotli. */
type Compressor = Gzip | BrotliCompress;

/**
 * A body streaming through zlib to the client. The upstream writes into it (write →
 * false: wait for compressorDrained); the output goes to the client as zlib makes it,
 * pausing zlib while the client is not writable.
 */
export class StreamedBody implements CompressedBody {
  private trailers: string[] | undefined;
  private flushQueued = false;
  private over = false;

  constructor(
    private readonly ex: ServerExchange,
    private readonly z: Compressor,
    /** Z_SYNC_FLUSH or BROTLI_OPERATION_FLUSH: out with what zlib holds, keep going. */
    private readonly flushKind: number,
    private readonly owner: CompressedBodyOwner,
    private readonly counters: EncodingCounters | undefined,
  ) {
    z.on("data", this.onOutput);
    z.on("drain", this.onDrain);
    z.on("end", this.onEnd);
    z.on("error", this.onError);
  }

  /** Upstream body bytes (valid only during the call); false: wait for compressorDrained. */
  write(chunk: Buffer): boolean {
    if (this.over) return true;
    if (this.counters !== undefined) this.counters.uncompressedBytes.n += chunk.length;
    // zlib keeps the bytes past this call (it works on the thread pool): a copy.
    const ok = this.z.write(Buffer.from(chunk));
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
    return ok;
  }

  /** The upstream body is complete: the rest of the output, then the client's response ends. */
  end(trailers: string[] | undefined): void {
    if (this.over) return;
    this.trailers = trailers;
    this.z.end();
  }

  /** Stops (the client left, or the upstream failed): nothing more is written. */
  destroy(): void {
    if (this.over) return;
    this.over = true;
    this.z.destroy();
  }

  /** After this turn's upstream reads: what zlib holds goes out now, not when its buffer fills. */
  private readonly flush = () => {
    this.flushQueued = false;
    const z = this.z;
    if (this.over || z.writableEnded || z.destroyed) return;
    z.flush(this.flushKind);
  };

  private readonly onOutput = (out: Buffer) => {
    if (this.over) return;
    if (this.counters !== undefined) this.counters.compressedBytes.n += out.length;
    this.owner.compressedSent(out.length);
    if (this.ex.write(out)) return;
    this.z.pause();
    this.ex.onWritable(this.resumeOutput);
  };

  private readonly resumeOutput = () => {
    if (!this.over) this.z.resume();
  };

  private readonly onDrain = () => {
    if (!this.over) this.owner.compressorDrained();
  };

  private readonly onEnd = () => {
    if (this.over) return;
    this.over = true;
    this.ex.end(this.trailers);
    this.owner.compressedEnded(undefined);
  };

  private readonly onError = (err: Error) => {
    if (this.over) return;
    this.over = true;
    this.z.destroy();
    this.owner.compressedEnded(err);
  };
}
