// Reads an HTTP/1.x request head (RFC 9112 §3, §5, §6): the request line, the field
// lines (the same strict grammar as upstream responses, http1-fields.ts) and the body's
// framing. It refuses what can be read more than one way with a 4xx, so that no request
// and nothing pipelined behind it reaches a router: lintel never guesses where a body
// ends. What the router checks on every engine (Host, limits) stays with the router.

import { decimalOf, parseFieldLines, TCHAR } from "../../http/http1-fields.js";

/** A head that cannot be served: answered with `status` and the connection closed. */
export class RequestHeadError extends Error {
  constructor(
    readonly status: 400 | 431 | 505,
    message: string,
  ) {
    super(message);
    this.name = "RequestHeadError";
  }
}

/** How the request's body is delimited. */
export const Framing = { None: 0, Length: 1, Chunked: 2 } as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

export interface RequestHead {
  readonly method: string;
  /** The request target as sent (origin-, absolute-, authority- or asterisk-form). */
  readonly target: string;
  /** "1.1" or "1.0". */
  readonly version: string;
  /** Flat [name, value, …], names lower-cased, in the order sent. */
  readonly headers: string[];
  readonly framing: Framing;
  /** The Content-Length (Framing.Length), else 0. */
  readonly length: number;
  /** Keep the connection open after the response, as far as the request goes. */
  readonly keepAlive: boolean;
  /** `Expect: 100-continue` on an HTTP/1.1 request. */
  readonly expectsContinue: boolean;
  /** The protocol an `Upgrade` request asks for (with `Connection: upgrade`), else "". */
  readonly upgrade: string;
}

const badField = (why: string) => new RequestHeadError(400, why);

/** 1 for the bytes a request target may hold: visible ASCII (RFC 9112 §3.2, RFC 3986). */
const TARGET_CHAR = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) TARGET_CHAR[c] = 1;

/**
 * Parses the head in `bytes[0 .. end)`, `end` being where its blank line starts (the
 * index of the CRLFCRLF). `text` is the same bytes as latin1.
 */
export function parseRequestHead(bytes: Uint8Array, text: string): RequestHead {
  const lineEnd = text.indexOf("\r\n");
  const lineLen = lineEnd < 0 ? text.length : lineEnd;
  // method SP request-target SP HTTP-version (RFC 9112 §3): single spaces, nothing else.
  let i = 0;
  while (i < lineLen && TCHAR[bytes[i]!] === 1) i++;
  if (i === 0 || bytes[i] !== 32) throw badLine(text, lineLen);
  const method = text.slice(0, i);
  const targetStart = ++i;
  while (i < lineLen && TARGET_CHAR[bytes[i]!] === 1) i++;
  if (i === targetStart || bytes[i] !== 32) throw badLine(text, lineLen);
  const target = text.slice(targetStart, i);
  const version = versionOf(text, i + 1, lineLen);
  if (!targetFits(method, target)) {
    const shown = JSON.stringify(target.slice(0, 80));
    throw new RequestHeadError(400, `a ${method} request cannot have the target ${shown}`);
  }
  const headers = lineEnd < 0 ? [] : parseFieldLines(bytes, text, lineEnd + 2, badField);
  return readFraming(method, target, version, headers);
}

/** "1.1" or "1.0" from `HTTP/1.x` at text[from .. to); refuses others. */
function versionOf(text: string, from: number, to: number): string {
  if (to - from !== 8 || !text.startsWith("HTTP/", from)) throw badLine(text, to);
  const major = text.charCodeAt(from + 5);
  const minor = text.charCodeAt(from + 7);
  if (text.charCodeAt(from + 6) !== 46 || major < 48 || major > 57 || minor < 48 || minor > 57)
    throw badLine(text, to);
  if (major !== 49 || minor > 49)
    throw new RequestHeadError(505, `HTTP/${text.slice(from + 5, to)} is not supported`);
  return minor === 49 ? "1.1" : "1.0";
}

/** A scheme (RFC 3986 §3.1) and "://": an absolute-form target with an authority. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * Whether `target` has a form `method` may use (RFC 9112 §3.2): origin-form, absolute-form
 * (§3.2.2; http and https URIs have an authority), the asterisk-form for OPTIONS alone
 * (§3.2.4), and for CONNECT the authority-form (§3.2.3), which the router checks as
 * host:port (connect-target.ts). Anything else ("a/b", "host:80" on a GET, "*x") is no
 * request-target: a backend may resolve it to a path the router's rules never saw.
 */
function targetFits(method: string, target: string): boolean {
  const c = target.charCodeAt(0);
  if (c === 47 || method === "CONNECT") return true;
  if (c === 42) return target.length === 1 && method === "OPTIONS";
  return ABSOLUTE_FORM.test(target);
}

function badLine(text: string, lineLen: number): RequestHeadError {
  const line = text.slice(0, Math.min(lineLen, 80));
  return new RequestHeadError(400, `invalid request line ${JSON.stringify(line)}`);
}

/** The body's framing and the connection's fate from the header fields (RFC 9112 §6, §9). */
function readFraming(
  method: string,
  target: string,
  version: string,
  headers: string[],
): RequestHead {
  let length = -1;
  let encodings: string | undefined;
  let connection = "";
  let expect = "";
  let upgrade = "";
  for (let n = 0; n < headers.length; n += 2) {
    const name = headers[n]!;
    // The few fields framing depends on; the rest pass by with one length compare.
    if (name.length < 6 || name.length > 17) continue;
    const value = headers[n + 1]!;
    if (name === "content-length") {
      // RFC 9112 §6.3 item 5: a list, a repeat or junk is refused, never guessed.
      const v = decimalOf(value);
      if (v < 0) throw new RequestHeadError(400, `invalid Content-Length "${value}"`);
      if (length >= 0) throw new RequestHeadError(400, "more than one Content-Length header");
      length = v;
    } else if (name === "transfer-encoding") {
      encodings = encodings === undefined ? value : `${encodings}, ${value}`;
    } else if (name === "connection") {
      connection = connection === "" ? value : `${connection}, ${value}`;
    } else if (name === "expect") {
      expect = value;
    } else if (name === "upgrade") {
      upgrade = value;
    }
  }
  let framing: Framing = Framing.None;
  if (encodings !== undefined) {
    if (length >= 0) throw new RequestHeadError(400, "both Content-Length and Transfer-Encoding");
    if (version === "1.0")
      throw new RequestHeadError(400, "Transfer-Encoding in an HTTP/1.0 request");
    // RFC 9112 §6.1: chunked, applied once, and last; lintel decodes no other coding.
    if (encodings.trim().toLowerCase() !== "chunked")
      throw new RequestHeadError(
        400,
        `unsupported Transfer-Encoding "${encodings}" (only chunked, once)`,
      );
    framing = Framing.Chunked;
  } else if (length > 0) framing = Framing.Length;
  const tokens = connection === "" ? "" : connection.toLowerCase();
  const keepAlive = version === "1.1" ? !hasToken(tokens, "close") : hasToken(tokens, "keep-alive");
  return {
    method,
    target,
    version,
    headers,
    framing,
    length: framing === Framing.Length ? length : 0,
    keepAlive,
    expectsContinue: version === "1.1" && expect.toLowerCase() === "100-continue",
    // RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request.
    upgrade: version === "1.1" && upgrade !== "" && hasToken(tokens, "upgrade") ? upgrade : "",
  };
}

/** Whether a lower-case comma-separated list holds `token`. */
function hasToken(list: string, token: string): boolean {
  if (list === "") return false;
  if (list === token) return true;
  for (const t of list.split(",")) if (t.trim() === token) return true;
  return false;
}
