// An incremental HTTP/1.1 response parser for upstream connections: status line and
// headers, then the body framed by Transfer-Encoding: chunked (with trailers),
// Content-Length, or the connection closing. Interim 1xx answers are skipped. It never
// copies body bytes: it hands out views of the buffers it is fed. It enforces the router's
// response limits (maxResponseKB, maxChunkKB) as it goes: a number compare per chunk.
// What it refuses (a ResponseParseError: 502 with l5d-err) follows llhttp, Node's parser,
// except where test/client/response-parser-differential.test.ts lists a difference.

import { decimalOf, parseFieldLines } from "../../http/http1-fields.js";

/** Why a response could not be read; the connection is not reusable after one. */
export class ResponseParseError extends Error {
  readonly code = "LINTEL_BAD_RESPONSE";
  constructor(
    message: string,
    /** The connection closed before a single byte of the answer arrived. */
    readonly beforeAnswer = false,
  ) {
    super(message);
    this.name = "ResponseParseError";
  }
}

/**
 * A response over one of the router's limits: an upstream error like a malformed
 * response (the connection is closed, not reused), explained by the attempt layer.
 */
export class ResponseLimitError extends ResponseParseError {
  constructor(
    /** The setting the response broke. */
    readonly setting: "maxResponseKB" | "maxChunkKB",
    /** What the upstream sent, e.g. "is over maxResponseKB (64 KB): its Content-Length is 70000 bytes". */
    message: string,
  ) {
    super(message);
    this.name = "ResponseLimitError";
  }
}

/** A router's limits on response bodies, in bytes (Infinity for none). Made once per router. */
export interface ResponseLimits {
  /** maxResponseKB: the largest body passed on. */
  readonly maxBodyBytes: number;
  /** maxChunkKB: the largest chunk a chunked body may declare. */
  readonly maxChunkBytes: number;
}

const NO_LIMITS: ResponseLimits = {
  maxBodyBytes: Number.POSITIVE_INFINITY,
  maxChunkBytes: Number.POSITIVE_INFINITY,
};

/** `n` bytes in whole KB, as the settings are written. */
const kb = (n: number) => Math.floor(n / 1024);

export interface ResponseEvents {
  /** The final response head. `headers` is flat, names lower-cased. */
  onHead(status: number, headers: string[]): void;
  /** Body bytes; return false to stop parsing until `resume` (the rest is kept). */
  onBody(chunk: Buffer): boolean;
  /** The response is complete; trailers (flat, lower-case names) if chunked ones came. */
  onEnd(trailers: string[] | undefined): void;
}

enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");
/** Largest response head accepted (Linkerd's maxHeadersKB is about requests; this is generous). */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size line (hex digits plus chunk extensions). */
const MAX_CHUNK_LINE = 4096;

export class ResponseParser {
  private state = State.Done;
  private pending: Buffer | undefined;
  private remaining = 0;
  private noBody = false;
  private events: ResponseEvents | undefined;
  private maxBody = Number.POSITIVE_INFINITY;
  private maxChunk = Number.POSITIVE_INFINITY;
  /** Body bytes so far (declared chunk sizes, or bytes read of a close-delimited body). */
  private bodyBytes = 0;
  /**
   * With maxChunkKB, a chunked response's head waits here for its first chunk-size line,
   * so a first chunk over the limit is refused before anything reaches the client.
   */
  private heldHeaders: string[] | undefined;
  private heldStatus = 0;
  /** Set when the response says the connection cannot carry another request. */
  keepAlive = true;
  /** True once a byte of the current response has arrived. */
  started = false;

  /**
   * Prepares for the response to a request with `method` (HEAD responses have no body),
   * under the router's `limits` (none when undefined).
   */
  expect(method: string, events: ResponseEvents, limits: ResponseLimits = NO_LIMITS): void {
    this.state = State.Head;
    this.pending = undefined;
    this.noBody = method === "HEAD";
    this.events = events;
    this.keepAlive = true;
    this.started = false;
    this.maxBody = limits.maxBodyBytes;
    this.maxChunk = limits.maxChunkBytes;
    this.bodyBytes = 0;
    this.heldHeaders = undefined;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** True while the body runs until the connection closes. */
  get readsUntilClose(): boolean {
    return this.state === State.UntilClose;
  }

  /**
   * Feeds bytes. Returns the unconsumed rest when a body handler asked to pause (feed it
   * again to continue), or undefined when everything was consumed. Throws ResponseParseError.
   */
  feed(input: Buffer): Buffer | undefined {
    let buf = input;
    if (buf.length > 0) this.started = true;
    while (buf.length > 0) {
      switch (this.state) {
        case State.Head: {
          const data = this.pending ? Buffer.concat([this.pending, buf]) : buf;
          const end = data.indexOf(CRLFCRLF);
          if (end < 0) {
            if (data.length > MAX_HEAD_BYTES)
              throw new ResponseParseError(`response head over ${MAX_HEAD_BYTES} bytes`);
            this.pending = data === buf ? Buffer.from(buf) : data;
            return undefined;
          }
          this.pending = undefined;
          this.head(data, data.toString("latin1", 0, end));
          buf = data.subarray(end + 4);
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, buf.length);
          const chunk = buf.subarray(0, n);
          this.remaining -= n;
          buf = buf.subarray(n);
          if (this.remaining === 0) this.state = State.Done;
          const go = this.events!.onBody(chunk);
          if (this.state === State.Done) {
            this.finish(undefined);
            if (buf.length > 0) throw new ResponseParseError("bytes after the end of the response");
            return undefined;
          }
          if (!go) return buf.length > 0 ? buf : undefined;
          break;
        }
        case State.UntilClose:
          this.bodyBytes += buf.length;
          if (this.bodyBytes > this.maxBody) throw this.overMaxBody();
          // A pause needs no leftover here: the whole buffer was handed over.
          this.events!.onBody(buf);
          return undefined;
        case State.ChunkSize: {
          const data = this.pending ? Buffer.concat([this.pending, buf]) : buf;
          const eol = data.indexOf(CRLF);
          if (eol < 0) {
            if (data.length > MAX_CHUNK_LINE)
              throw new ResponseParseError("chunk size line too long");
            this.pending = data === buf ? Buffer.from(buf) : data;
            return undefined;
          }
          this.pending = undefined;
          const line = data.toString("latin1", 0, eol);
          // RFC 9112 §7.1: the hex digits start the line; whitespace (BWS) only before a ";".
          const semi = line.indexOf(";");
          const hex = semi < 0 ? line : line.slice(0, semi).replace(/[\t ]+$/, "");
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex))
            throw new ResponseParseError(`invalid chunk size "${hex}"`);
          const size = Number.parseInt(hex, 16);
          if (size > this.maxChunk) {
            throw new ResponseLimitError(
              "maxChunkKB",
              `declares a chunk of ${size} bytes, over maxChunkKB (${kb(this.maxChunk)} KB)`,
            );
          }
          this.bodyBytes += size;
          if (this.bodyBytes > this.maxBody) throw this.overMaxBody();
          this.remaining = size;
          buf = data.subarray(eol + 2);
          this.state = size === 0 ? State.Trailers : State.ChunkData;
          const held = this.heldHeaders;
          if (held !== undefined) {
            this.heldHeaders = undefined;
            this.events!.onHead(this.heldStatus, held);
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length);
          const chunk = buf.subarray(0, n);
          this.remaining -= n;
          buf = buf.subarray(n);
          if (this.remaining === 0) this.state = State.ChunkDataEnd;
          if (!this.events!.onBody(chunk)) return buf.length > 0 ? buf : undefined;
          break;
        }
        case State.ChunkDataEnd: {
          const data = this.pending ? Buffer.concat([this.pending, buf]) : buf;
          if (data.length < 2) {
            this.pending = Buffer.from(data);
            return undefined;
          }
          this.pending = undefined;
          if (data[0] !== 13 || data[1] !== 10)
            throw new ResponseParseError("missing CRLF after chunk data");
          buf = data.subarray(2);
          this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const data = this.pending ? Buffer.concat([this.pending, buf]) : buf;
          // No trailers: the terminating CRLF right away.
          if (data.length >= 2 && data[0] === 13 && data[1] === 10) {
            this.pending = undefined;
            buf = data.subarray(2);
            this.state = State.Done;
            this.finish(undefined);
            if (buf.length > 0) throw new ResponseParseError("bytes after the end of the response");
            return undefined;
          }
          const end = data.indexOf(CRLFCRLF);
          if (end < 0) {
            if (data.length > MAX_HEAD_BYTES) throw new ResponseParseError("trailers too large");
            this.pending = data === buf ? Buffer.from(buf) : data;
            return undefined;
          }
          this.pending = undefined;
          const trailers = fields(data, data.toString("latin1", 0, end), 0);
          buf = data.subarray(end + 4);
          this.state = State.Done;
          this.finish(trailers);
          if (buf.length > 0) throw new ResponseParseError("bytes after the end of the response");
          return undefined;
        }
        case State.Done:
          throw new ResponseParseError("bytes the upstream sent without being asked");
      }
    }
    return undefined;
  }

  /** The connection closed: completes a close-delimited body, else it is an error. */
  closed(): void {
    if (this.state === State.UntilClose) {
      this.state = State.Done;
      this.finish(undefined);
      return;
    }
    if (this.state !== State.Done) {
      const before = this.state === State.Head && !this.started;
      throw new ResponseParseError(
        before
          ? "the upstream closed the connection without answering"
          : "the upstream closed the connection in the middle of the response",
        before,
      );
    }
  }

  private overMaxBody(): ResponseLimitError {
    return new ResponseLimitError(
      "maxResponseKB",
      `is over maxResponseKB (${kb(this.maxBody)} KB): its body ran past ${this.maxBody} bytes`,
    );
  }

  private finish(trailers: string[] | undefined): void {
    const events = this.events!;
    this.events = undefined;
    events.onEnd(trailers);
  }

  /** The head in `text`, which is the start of `bytes` as latin1. */
  private head(bytes: Buffer, text: string): void {
    const lineEnd = text.indexOf("\r\n");
    const statusLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
    const status = statusOf(statusLine);
    if (status < 0)
      throw new ResponseParseError(
        `invalid status line ${JSON.stringify(statusLine.slice(0, 80))}`,
      );
    const http10 = statusLine.charCodeAt(7) === 48; // "HTTP/1.0"
    let headers = lineEnd < 0 ? [] : fields(bytes, text, lineEnd + 2);
    // Interim answers (100 Continue, 103 Early Hints): wait for the final one.
    if (status >= 100 && status < 200 && status !== 101) {
      this.state = State.Head;
      return;
    }
    let contentLength: number | undefined;
    let repeatedLength = false;
    let encoded = false;
    let chunked = false;
    let connection: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name === "content-length") {
        const v = headers[i + 1]!;
        const n = decimalOf(v);
        if (n < 0) throw new ResponseParseError(`invalid Content-Length "${v}"`);
        if (contentLength !== undefined) {
          if (contentLength !== n)
            throw new ResponseParseError("conflicting Content-Length headers");
          // RFC 9110 §8.6: repeats of one value are read as one, and passed on as one.
          repeatedLength = true;
        }
        contentLength = n;
      } else if (name === "transfer-encoding") {
        encoded = true;
        // The last coding of the last line decides (RFC 9112 §6.3).
        chunked = /(?:^|,)\s*chunked\s*$/i.test(headers[i + 1]!);
      } else if (name === "connection") {
        connection = connection === undefined ? headers[i + 1]! : `${connection},${headers[i + 1]}`;
      }
    }
    if (encoded) {
      // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and without chunked last
      // the body runs until the connection closes. A message with both may be an attempt
      // at response splitting: its Content-Length is not passed on (an intermediary must
      // remove it, same section) and the connection is not reused.
      if (contentLength !== undefined) {
        headers = withoutContentLength(headers, false);
        contentLength = undefined;
        this.keepAlive = false;
      }
      if (!chunked) this.keepAlive = false;
    } else if (repeatedLength) headers = withoutContentLength(headers, true);
    const tokens = connection?.toLowerCase() ?? "";
    if (/(?:^|,)\s*close\s*(?:,|$)/.test(tokens)) this.keepAlive = false;
    else if (http10 && !/(?:^|,)\s*keep-alive\s*(?:,|$)/.test(tokens)) this.keepAlive = false;
    const bodiless = this.noBody || status === 204 || status === 304 || status === 101;
    if (!bodiless && !chunked && contentLength !== undefined && contentLength > this.maxBody) {
      throw new ResponseLimitError(
        "maxResponseKB",
        `is over maxResponseKB (${kb(this.maxBody)} KB): its Content-Length is ${contentLength} bytes`,
      );
    }
    if (!bodiless && chunked && this.maxChunk !== Number.POSITIVE_INFINITY) {
      // The head goes on with the first chunk-size line (see heldHeaders).
      this.heldStatus = status;
      this.heldHeaders = headers;
      this.state = State.ChunkSize;
      return;
    }
    this.events!.onHead(status, headers);
    if (bodiless) {
      this.state = State.Done;
      this.finish(undefined);
    } else if (chunked) {
      this.state = State.ChunkSize;
    } else if (contentLength !== undefined) {
      this.remaining = contentLength;
      this.state = contentLength === 0 ? State.Done : State.Length;
      if (contentLength === 0) this.finish(undefined);
    } else {
      this.keepAlive = false;
      this.state = State.UntilClose;
    }
  }
}

/**
 * The status code of an `HTTP/1.x NNN[ reason]` line, or -1. Hand-rolled: a response head
 * is parsed per proxied request, and this and parseFields were its largest costs. The
 * reason phrase is not passed on (the engines write their own), so only a bare CR or LF
 * in it is refused: either would hide the header line after it.
 */
function statusOf(line: string): number {
  if (!line.startsWith("HTTP/1.") || line.length < 12) return -1;
  const minor = line.charCodeAt(7);
  if ((minor !== 48 && minor !== 49) || line.charCodeAt(8) !== 32) return -1;
  if (line.length > 12 && line.charCodeAt(12) !== 32) return -1;
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = line.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    status = status * 10 + d;
  }
  // RFC 9110 §15: codes below 100 are invalid (no engine can write them to the client).
  if (status < 100) return -1;
  for (let i = 13; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 13 || c === 10) return -1;
  }
  return status;
}

/** `headers` (flat) without their Content-Length lines, or all but the first. */
function withoutContentLength(headers: string[], keepFirst: boolean): string[] {
  const out: string[] = [];
  let keep = keepFirst;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === "content-length") {
      if (!keep) continue;
      keep = false;
    }
    out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/** Header or trailer lines of a response; a bad line is the upstream's fault (502). */
function fields(bytes: Uint8Array, text: string, from: number): string[] {
  return parseFieldLines(bytes, text, from, badResponseLine);
}

const badResponseLine = (why: string) => new ResponseParseError(why);
