// The cleartext upgrade to HTTP/2 (RFC 7540 §3.2, what `curl --http2 http://…` and
// `nghttp -u` do): a bodiless HTTP/1.1 request with `Upgrade: h2c` and one
// `HTTP2-Settings` is answered `101 Switching Protocols`, and the connection goes on in
// HTTP/2, the request itself being stream 1. node:http2 has no such upgrade, so the
// request is handed to it as what it is: once the client's preface and first SETTINGS
// have arrived, a HEADERS frame for stream 1 is put after them, HPACK-encoded with
// literals that leave the dynamic table untouched, and the session starts from there.
// The HTTP2-Settings header is not read: the same settings come in the client's SETTINGS
// frame, which node:http2 has applied before it sees stream 1.

import type { Socket } from "node:net";
import { connectionListed, H2_CONNECTION_SPECIFIC } from "../../http/headers.js";
import { Framing, type RequestHead } from "./request-head.js";

/** The whole client connection preface (RFC 9113 §3.4). */
const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME_HEADER = 9;
const SETTINGS = 0x4;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
/** SETTINGS_MAX_FRAME_SIZE's initial value: what a peer must accept before settings. */
const MAX_FRAME = 16_384;
/** The client's SETTINGS frame may not be larger than a few settings need. */
const MAX_SETTINGS = 1024;

const SWITCHING = Buffer.from(
  "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
  "latin1",
);

/**
 * Whether `head` asks for an upgrade this server takes: HTTP/1.1, `h2c` among the
 * protocols, exactly one `HTTP2-Settings`, and no body (a request with one is served in
 * HTTP/1.1, which the RFC allows).
 */
export function wantsH2c(head: RequestHead): boolean {
  if (head.upgrade === "" || head.version !== "1.1" || head.framing !== Framing.None) return false;
  if (!head.upgrade.split(",").some((p) => p.trim().toLowerCase() === "h2c")) return false;
  let settings = 0;
  for (let i = 0; i < head.headers.length; i += 2)
    if (head.headers[i] === "http2-settings") settings++;
  return settings === 1;
}

/** The upgrade request in origin form (`url`), its Host naming the authority. */
export interface H2cRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: readonly string[];
}

/**
 * Answers `101` and waits for the client's preface and SETTINGS; then `proceed` gets the
 * bytes to start an HTTP/2 session with (the request as stream 1 after the SETTINGS).
 * A client that sends anything else, or takes longer than `timeoutMs`, is disconnected.
 */
export function upgradeToH2c(
  socket: Socket,
  request: H2cRequest,
  rest: Buffer,
  timeoutMs: number,
  proceed: (first: Buffer) => void,
): void {
  const stream1 = requestFrames(request);
  let got = rest;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  timer.unref();
  const onData = (chunk: Buffer) => {
    got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
    check();
  };
  const check = () => {
    const seen = Math.min(got.length, CLIENT_PREFACE.length);
    if (got.compare(CLIENT_PREFACE, 0, seen, 0, seen) !== 0) return fail();
    if (got.length < CLIENT_PREFACE.length + FRAME_HEADER) return;
    const at = CLIENT_PREFACE.length;
    const length = got.readUIntBE(at, 3);
    if (got[at + 3] !== SETTINGS || length > MAX_SETTINGS) return fail();
    const end = at + FRAME_HEADER + length;
    if (got.length < end) return;
    done();
    proceed(Buffer.concat([got.subarray(0, end), stream1, got.subarray(end)]));
  };
  const fail = () => {
    done();
    socket.destroy();
  };
  const done = () => {
    clearTimeout(timer);
    socket.off("data", onData);
  };
  socket.write(SWITCHING);
  socket.on("data", onData);
  if (got.length > 0) check();
  socket.resume();
}

/** The request as stream 1's HEADERS (and CONTINUATION) frames, ending the stream. */
function requestFrames(request: H2cRequest): Buffer {
  const h = request.headers;
  let authority: string | undefined;
  for (let i = 0; i < h.length; i += 2) if (h[i] === "host") authority = h[i + 1];
  const fields: [string, string][] = [
    [":method", request.method],
    [":scheme", "http"],
  ];
  if (authority !== undefined) fields.push([":authority", authority]);
  fields.push([":path", request.url]);
  const listed = connectionListed(h);
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    if (name === "host" || name === "http2-settings" || H2_CONNECTION_SPECIFIC.has(name)) continue;
    if (listed?.has(name)) continue;
    if (name === "te" && value.trim().toLowerCase() !== "trailers") continue;
    fields.push([name, value]);
  }
  return frames(1, hpackLiterals(fields));
}

/** A header block of "literal without indexing, new name" fields (RFC 7541 §6.2.2). */
export function hpackLiterals(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.of(0), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

/** A string literal without Huffman coding: a 7-bit-prefix length, then the bytes. */
function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, "latin1");
  return Buffer.concat([hpackInteger(bytes.length, 7), bytes]);
}

/** An HPACK integer with an n-bit prefix (RFC 7541 §5.1), the flag bits left zero. */
export function hpackInteger(value: number, prefixBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.of(value);
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** HEADERS with END_STREAM, split into CONTINUATION frames at the initial frame size. */
function frames(streamId: number, block: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  do {
    const chunk = block.subarray(at, at + MAX_FRAME);
    const first = at === 0;
    at += chunk.length;
    const last = at >= block.length;
    const header = Buffer.alloc(FRAME_HEADER);
    header.writeUIntBE(chunk.length, 0, 3);
    header[3] = first ? HEADERS : CONTINUATION;
    header[4] = (first ? END_STREAM : 0) | (last ? END_HEADERS : 0);
    header.writeUInt32BE(streamId, 5);
    out.push(header, chunk);
  } while (at < block.length);
  return Buffer.concat(out);
}
