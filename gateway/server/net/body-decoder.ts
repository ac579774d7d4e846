// Reads a request body off the connection by its framing (RFC 9112 §6): a Content-Length
// or chunked transfer coding (with trailers, which are read and dropped). It hands out
// views of the buffers it is fed, never copies, and says where the body ended so the next
// pipelined request starts at the right byte.

import { parseFieldLines } from "../../http/http1-fields.js";
import { Framing, RequestHeadError } from "./request-head.js";

export interface BodySink {
  /** Body bytes: a view valid only during the call. */
  onBody(chunk: Buffer): void;
  onBodyEnd(): void;
}

const State = {
  Length: 0,
  ChunkSize: 1,
  ChunkData: 2,
  ChunkDataEnd: 3,
  Trailers: 4,
  Done: 5,
} as const;
type State = (typeof State)[keyof typeof State];

const CRLF = Buffer.from("\r\n");
const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Longest chunk-size line (hex digits plus chunk extensions). */
const MAX_CHUNK_LINE = 4096;

const badTrailer = (why: string) => new RequestHeadError(400, `trailer: ${why}`);

export class BodyDecoder {
  private state: State;
  private remaining: number;
  private pending: Buffer | undefined;

  constructor(
    framing: Framing,
    length: number,
    private readonly sink: BodySink,
    /** The largest trailer section accepted. */
    private readonly maxTrailerBytes: number,
  ) {
    this.state = framing === Framing.Chunked ? State.ChunkSize : State.Length;
    this.remaining = length;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Feeds bytes; returns the bytes after the body's end (empty when the body ended right
   * at the end of `input`), or undefined while the body goes on. Throws RequestHeadError
   * on a malformed chunked body (the connection cannot be read further).
   */
  feed(input: Buffer): Buffer | undefined {
    let buf = input;
    while (buf.length > 0 || this.state === State.Done) {
      switch (this.state) {
        case State.Length: {
          const n = Math.min(this.remaining, buf.length);
          this.remaining -= n;
          const rest = buf.subarray(n);
          if (n > 0) this.sink.onBody(n === buf.length ? buf : buf.subarray(0, n));
          if (this.remaining === 0) return this.finish(rest);
          return undefined;
        }
        case State.ChunkSize: {
          const data = this.take(buf);
          const eol = data.indexOf(CRLF);
          const lf = data.indexOf(10);
          // RFC 9112 §7.1: the line ends with CRLF; a bare LF (or CR) would be read two ways.
          if (lf >= 0 && (lf === 0 || data[lf - 1] !== 13 || lf - 1 !== eol))
            throw new RequestHeadError(400, "bare LF in a chunk size line");
          // The limit counts the line without its CRLF, and holds however the bytes are
          // cut: a line not ended yet ends at data.length - 1 at the earliest (its CR may be
          // the last byte here). RFC 9112 §7.1.1: a server limits the length of chunk
          // extensions it accepts.
          if (eol < 0) {
            if (data.length - 1 > MAX_CHUNK_LINE)
              throw new RequestHeadError(400, "chunk size line too long");
            return this.keep(data);
          }
          if (eol > MAX_CHUNK_LINE) throw new RequestHeadError(400, "chunk size line too long");
          this.pending = undefined;
          this.remaining = chunkSize(data.toString("latin1", 0, eol));
          buf = data.subarray(eol + 2);
          this.state = this.remaining === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length);
          this.remaining -= n;
          this.sink.onBody(n === buf.length ? buf : buf.subarray(0, n));
          buf = buf.subarray(n);
          if (this.remaining === 0) this.state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkDataEnd: {
          const data = this.take(buf);
          if (data.length < 2) return this.keep(data);
          this.pending = undefined;
          if (data[0] !== 13 || data[1] !== 10)
            throw new RequestHeadError(400, "missing CRLF after chunk data");
          buf = data.subarray(2);
          this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const data = this.take(buf);
          if (data.length < 2) return this.keep(data);
          // No trailers: the terminating CRLF right away.
          if (data[0] === 13 && data[1] === 10) {
            this.pending = undefined;
            return this.finish(data.subarray(2));
          }
          // The limit counts the field lines without the blank line that ends them, and holds
          // however the bytes are cut (RFC 9112 §7.1.2, RFC 9110 §6.5: trailers are a field
          // section like the header's, 431 over its limit): a section not ended yet ends at
          // data.length - 3 at the earliest (its CRLFCR may be the last bytes here).
          const end = data.indexOf(CRLFCRLF);
          if (end < 0) {
            if (data.length - 3 > this.maxTrailerBytes)
              throw new RequestHeadError(431, "request trailers too large");
            return this.keep(data);
          }
          if (end > this.maxTrailerBytes)
            throw new RequestHeadError(431, "request trailers too large");
          this.pending = undefined;
          // Checked like header lines, then dropped: nothing upstream reads request trailers.
          parseFieldLines(data, data.toString("latin1", 0, end), 0, badTrailer);
          return this.finish(data.subarray(end + 4));
        }
        case State.Done:
          return buf;
      }
    }
    return undefined;
  }

  private take(buf: Buffer): Buffer {
    const p = this.pending;
    return p === undefined ? buf : Buffer.concat([p, buf]);
  }

  /** Keeps a partial line for the next feed (copied: the connection's buffers are not ours). */
  private keep(data: Buffer): undefined {
    // With bytes pending, `data` is a fresh concatenation already.
    this.pending = this.pending === undefined ? Buffer.from(data) : data;
    return undefined;
  }

  private finish(rest: Buffer): Buffer {
    this.state = State.Done;
    this.sink.onBodyEnd();
    return rest;
  }
}

/** RFC 9112 §7.1: hex digits start the line; whitespace (BWS) only before a ";". */
function chunkSize(line: string): number {
  if (line.includes("\r")) throw new RequestHeadError(400, "bare CR in a chunk size line");
  const semi = line.indexOf(";");
  const hex = semi < 0 ? line : line.slice(0, semi).replace(/[\t ]+$/, "");
  if (!/^[0-9a-fA-F]{1,12}$/.test(hex))
    throw new RequestHeadError(400, `invalid chunk size ${JSON.stringify(hex.slice(0, 20))}`);
  return Number.parseInt(hex, 16);
}
