// Response compression at the edge: a router's `compressionLevel`, as Finagle applies it.
// 1..9 gzip every eligible response at that zlib level; -1 gzips textual content types
// only, at zlib's default level; 0 (or unset) is off and costs nothing (the router has no
// ResponseCompression then). A response is eligible when the client accepts gzip, the
// upstream did not encode it, it has a body worth compressing, and it does not forbid
// transformation. The body streams through node:zlib with backpressure both ways: the
// upstream is paused while zlib is full, zlib while the client is slow. What zlib has is
// flushed (Z_SYNC_FLUSH) after each batch of upstream reads, as Netty's compressor does
// per chunk, so a streamed response (events, watches) is not held back by compression.

import { constants, createGzip, type Gzip } from "node:zlib";
import type { ServerExchange } from "../http/exchange.js";

/** Bodies declared smaller than this are not worth compressing (unknown lengths are). */
export const MIN_COMPRESSED_BYTES = 1024;

/** Content types compressionLevel -1 compresses (besides text/*, +json and +xml). */
const TEXTUAL: ReadonlySet<string> = new Set([
  "application/json",
  "application/javascript",
  "application/xml",
  "image/svg+xml",
]);

const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i;
const VARIES_ON_ENCODING = /(?:^|,)\s*(?:\*|accept-encoding)\s*(?:,|$)/i;
const Q_PARAM = /(?:^|;)\s*q\s*=\s*([0-9.]+)/i;

/** Whether a Content-Type (parameters allowed) is one compressionLevel -1 compresses. */
export function isTextual(contentType: string): boolean {
  const semi = contentType.indexOf(";");
  const t = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return t.startsWith("text/") || TEXTUAL.has(t) || t.endsWith("+json") || t.endsWith("+xml");
}

/**
 * Whether the request's Accept-Encoding fields accept gzip (RFC 9110 §12.5.3): `gzip` or
 * `x-gzip` with a q above 0, or else `*` with a q above 0. No Accept-Encoding: no.
 */
export function acceptsGzip(headers: readonly string[]): boolean {
  let gzip = -1;
  let any = -1;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== "accept-encoding") continue;
    for (const part of headers[i + 1]!.split(",")) {
      const semi = part.indexOf(";");
      const coding = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
      if (coding !== "gzip" && coding !== "x-gzip" && coding !== "*") continue;
      let q = 1;
      if (semi >= 0) {
        const m = Q_PARAM.exec(part.slice(semi));
        const n = m ? Number(m[1]) : Number.NaN;
        if (!Number.isNaN(n)) q = n;
      }
      if (coding === "*") any = Math.max(any, q);
      else gzip = Math.max(gzip, q);
    }
  }
  return gzip >= 0 ? gzip > 0 : any > 0;
}

/**
 * The response head as sent compressed: `content-encoding: gzip`, `accept-encoding` added
 * to Vary, a strong ETag made weak (the bytes differ from the upstream's), Accept-Ranges
 * dropped (ranges of the gzip stream cannot be served). Content-Length is not in `headers`.
 */
export function gzipHead(headers: string[]): void {
  let varyAt = -1;
  let varies = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name === "vary") {
      if (varyAt < 0) varyAt = i;
      if (VARIES_ON_ENCODING.test(headers[i + 1]!)) varies = true;
    } else if (name === "etag") {
      const v = headers[i + 1]!;
      if (!v.startsWith("W/")) headers[i + 1] = `W/${v}`;
    }
  }
  if (!varies) {
    if (varyAt < 0) headers.push("vary", "accept-encoding");
    else {
      const v = headers[varyAt + 1]!.trim();
      headers[varyAt + 1] = v === "" ? "accept-encoding" : `${v}, accept-encoding`;
    }
  }
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i] === "accept-ranges") headers.splice(i, 2);
  }
  headers.push("content-encoding", "gzip");
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

/** A router's compressionLevel (not 0): made once per router, decides per response. */
export class ResponseCompression {
  /** -1: textual content types only. */
  private readonly textOnly: boolean;
  private readonly zlibLevel: number;

  constructor(level: number) {
    if (!Number.isInteger(level) || level < -1 || level > 9 || level === 0)
      throw new Error(`compressionLevel ${level}: expected -1 or 1 to 9`);
    this.textOnly = level === -1;
    this.zlibLevel = level === -1 ? constants.Z_DEFAULT_COMPRESSION : level;
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
    if (status < 200 || status === 204 || status === 206 || status === 304) return false;
    if (ex.method === "HEAD") return false;
    if (length !== undefined && length < MIN_COMPRESSED_BYTES) return false;
    let type: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name === "content-encoding" || name === "content-range") return false;
      if (name === "cache-control" && NO_TRANSFORM.test(headers[i + 1]!)) return false;
      if (name === "content-type") type ??= headers[i + 1]!;
    }
    if (this.textOnly && (type === undefined || !isTextual(type))) return false;
    return acceptsGzip(ex.headers);
  }

  /**
   * Starts compressing the response to `ex` when it applies: rewrites `headers` for gzip
   * and returns the body's compressor; undefined when the response goes as it is.
   */
  begin(
    ex: ServerExchange,
    status: number,
    headers: string[],
    length: number | undefined,
    owner: CompressedBodyOwner,
  ): GzipBody | undefined {
    if (!this.applies(ex, status, headers, length)) return undefined;
    gzipHead(headers);
    return new GzipBody(ex, this.zlibLevel, owner);
  }
}

/**
 * One response body going through gzip to the client. The upstream writes into it
 * (write → false: wait for compressorDrained); the output goes to the client as zlib
 * makes it, pausing zlib while the client is not writable.
 */
export class GzipBody {
  private readonly z: Gzip;
  private trailers: string[] | undefined;
  private flushQueued = false;
  private over = false;

  constructor(
    private readonly ex: ServerExchange,
    level: number,
    private readonly owner: CompressedBodyOwner,
  ) {
    const z = createGzip({ level });
    this.z = z;
    z.on("data", this.onOutput);
    z.on("drain", this.onDrain);
    z.on("end", this.onEnd);
    z.on("error", this.onError);
  }

  /** Upstream body bytes (valid only during the call); false: wait for compressorDrained. */
  write(chunk: Buffer): boolean {
    if (this.over) return true;
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
    z.flush(constants.Z_SYNC_FLUSH);
  };

  private readonly onOutput = (out: Buffer) => {
    if (this.over) return;
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
