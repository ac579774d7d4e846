// The net engine's request parsing against llhttp, the parser of Node's own HTTP server.
// A seeded generator writes a few thousand connections' worth of requests, valid and not:
// methods known and unknown, the four target forms and bytes outside them, request lines
// with odd whitespace and versions, header names that are tokens or not, values with any
// byte, obs-fold, Content-Length and Transfer-Encoding alone, repeated, combined and
// malformed, chunked bodies with extensions, trailers and bad line ends, Connection,
// Expect and Upgrade, CONNECT, pipelined requests, and connections cut short.
//
// lintel's side is a real Http1Connection (gateway/server/net/connection.ts) on an
// in-memory socket, fed in seeded random pieces (sometimes one byte at a time); llhttp's
// side is `http.createServer` on loopback, each connection written once and half-closed.
// Both must read the same requests (method, target, version, header list, body bytes,
// keep-alive, 100-continue; for CONNECT and Upgrade, the bytes handed to the tunnel) and
// then both refuse or both stop cleanly. Where lintel deliberately differs, the rule is in
// DIFFERENCES below with its RFC section, and the test asserts what lintel does; anything
// else fails with the seed, the case and its bytes.

import { createServer, type IncomingMessage, METHODS, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { TunnelRequest } from "../../gateway/server/listener.js";
import { type ConnectionHost, Http1Connection } from "../../gateway/server/net/connection.js";
import type { RequestHead } from "../../gateway/server/net/request-head.js";
import { seeded } from "../support/seeded.js";

// Every head the connection parsed, in order: what the parser made of each request.
const { heads } = vi.hoisted(() => ({ heads: [] as RequestHead[] }));
vi.mock("../../gateway/server/net/request-head.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../gateway/server/net/request-head.js")>();
  return {
    ...real,
    parseRequestHead(bytes: Uint8Array, text: string): RequestHead {
      const head = real.parseRequestHead(bytes, text);
      heads.push(head);
      return head;
    },
  };
});

type Rng = () => number;
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Rng, p: number) => r() < p;

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const isToken = (s: string) => s.length > 0 && [...s].every((c) => TCHARS.includes(c));
/** Characters that are not tchar (RFC 9110 §5.6.2), latin1. */
const NON_TCHARS = [" ", "\t", "(", ")", "@", ",", ";", "<", "=", ">", "?", "[", "]", "{", "}"];
NON_TCHARS.push('"', "/", "\\", "\x00", "\x01", "\x1f", "\x7f", "\x80", "\xe9", "\xff");
/** Field names the generator uses freely (none that frames a body or steers the connection). */
const NAMES = [
  "Accept",
  "User-Agent",
  "content-type",
  "X-Request-Id",
  "Cookie",
  "Authorization",
  "x_under",
  "x.dot",
  "!#$%&'*+-.^_`|~",
  "Via",
];

/**
 * Where lintel's reading of a request differs from llhttp's on purpose. "refuses": lintel
 * refuses a request llhttp may read (stricter, within the RFC). "reads the canonical form":
 * lintel reads the request as llhttp reads its canonical form (the same request without
 * what llhttp refuses or reads otherwise), with the method, target or header list as sent.
 */
const DIFFERENCES = {
  // RFC 9112 §3: request-line = method SP request-target SP HTTP-version; a recipient
  // MAY split on other whitespace, but what one reader splits another may not (llhttp
  // takes a run of spaces before and after the target).
  "request-line-extra-space": "refuses",
  // RFC 9112 §2.3, RFC 9110 §15.6.6: lintel serves HTTP/1.0 and 1.1 and answers 505 to
  // another version, 400 to another protocol name (llhttp reads HTTP/0.9 and HTTP/2.0
  // request lines, and RTSP/1.0 as HTTP/1.0).
  "version-not-1.x": "refuses",
  // RFC 9112 §3.2.4: the asterisk-form is only used for a server-wide OPTIONS request
  // (llhttp takes "*" and "*x" with any method).
  "asterisk-form-not-options": "refuses",
  // RFC 9112 §2.2: a recipient MAY read a bare LF as a line end and ignore empty lines
  // before the request line; lintel reads CRLF only, so that no two readers disagree on
  // where a line ends (llhttp skips a bare LF before a request).
  "bare-lf-before-request": "refuses",
  // RFC 9110 §8.6: a recipient must anticipate large numerals and prevent overflow and
  // precision loss; lintel reads up to 15 digits, leading zeros included (llhttp takes any
  // number of digits below 2^64).
  "content-length-over-15-digits": "refuses",
  // RFC 9112 §6.1, §6.3: lintel decodes no transfer coding but chunked, applied once and
  // last; any other list, an empty one included, leaves the body's end unknown to it
  // (llhttp decodes "gzip, chunked" as chunked and reads an empty value as no coding).
  "transfer-encoding-not-chunked-alone": "refuses",
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding must be treated as if its
  // framing were faulty (llhttp decodes it as chunked).
  "transfer-encoding-in-http-1.0": "refuses",
  // RFC 9112 §7.1: a recipient must guard against overflow in chunk sizes; lintel reads at
  // most 12 hex digits, leading zeros included (llhttp takes any number of zeros).
  "chunk-size-over-12-digits": "refuses",
  // RFC 9110 §9.1: a method is a case-sensitive token and the set is extensible; lintel's
  // parser takes any token and leaves the method to the router (llhttp knows a fixed list:
  // it refuses "get" and "FOO").
  "method-unknown-to-llhttp": "reads the canonical form",
  // RFC 9112 §3.2.2: the authority of an absolute-form target replaces Host, and lintel
  // takes it as it takes a Host field value: any visible ASCII, for the router to match
  // (llhttp refuses some characters there, such as "<", "|", "`" and "\\").
  "absolute-form-authority-chars": "reads the canonical form",
  // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] );
  // whitespace may come before the ";" (llhttp refuses it).
  "bws-before-chunk-ext": "reads the canonical form",
  // RFC 9112 §7.1.1: a recipient MUST ignore chunk extensions it does not understand;
  // lintel understands none, decodes the body without them and forwards none, so it checks
  // only that the size line ends with CRLF within 4096 bytes (llhttp refuses an extension
  // that is not token[=token/quoted-string], with an empty name or a control byte).
  "chunk-ext-not-in-grammar": "reads the canonical form",
  // RFC 9110 §6.5.1: a trailer field may not frame the message; lintel reads and drops
  // request trailers, so Content-Length or Transfer-Encoding there frames nothing (llhttp
  // refuses them in trailers).
  "framing-field-in-trailers": "reads the canonical form",
  // RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0 request; lintel serves it as
  // a plain request (llhttp hands the connection over).
  "upgrade-in-http-1.0": "reads the canonical form",
  // RFC 9110 §7.8: a server MAY ignore Upgrade and go on in its protocol; RFC 9113 §3.1:
  // the "h2c" upgrade is deprecated. lintel serves such a request in HTTP/1.1 (connection.ts)
  // where llhttp hands the connection over.
  "h2c-upgrade-not-taken": "reads the canonical form",
} as const;
type Shape = keyof typeof DIFFERENCES;

/** A request as read: a plain one, or one that took the connection over. */
interface Msg {
  readonly kind: "request" | "connect" | "upgrade";
  readonly method: string;
  readonly target: string;
  readonly version: string;
  /** Flat [name, value, …], names lower-cased. */
  readonly headers: readonly string[];
  /** The body, or for a tunnel every byte after the head. */
  readonly body: string;
  readonly keepAlive?: boolean;
  readonly expectsContinue?: boolean;
}

/** What a parser made of a connection: the requests it read, then how it stopped. */
interface Outcome {
  readonly msgs: readonly Msg[];
  readonly end: "clean" | "refused" | "tunnel";
  /** Why it stopped, for the failure report. */
  readonly why?: string;
}

/** A generated request: its bytes as sent, and as llhttp must read them for lintel. */
interface GenRequest {
  text: string;
  canonical: string;
  readonly shapes: Set<Shape>;
  /** From llhttp's reading of the canonical form to what lintel must read. */
  fix?: (m: Msg) => Msg;
}

interface Case {
  readonly id: number;
  readonly bytes: string;
  readonly canonical: string;
  readonly shapes: ReadonlySet<Shape>;
  /** The index of the first request with a shape lintel refuses, or -1. */
  readonly strictAt: number;
  readonly fixes: readonly (((m: Msg) => Msg) | undefined)[];
}

// --- the generator ---

function tokenName(r: Rng): string {
  if (chance(r, 0.6)) return pick(r, NAMES);
  let s = "";
  for (let n = int(r, 1, 12); n > 0; n--) s += pick(r, [...TCHARS]);
  return s;
}

/** A field name: mostly a token; else with a non-token character, empty, or a space before the colon. */
function headerName(r: Rng): string {
  const name = tokenName(r);
  if (chance(r, 0.95)) return name;
  const k = int(r, 0, 9);
  if (k === 0) return "";
  if (k === 1) return `${name} `;
  const at = int(r, 0, name.length);
  return name.slice(0, at) + pick(r, NON_TCHARS) + name.slice(at);
}

/** A field value: mostly printable; else with bytes from the whole range, controls included. */
function headerValue(r: Rng): string {
  let s = "";
  for (let n = int(r, 0, 24); n > 0; n--) s += String.fromCharCode(int(r, 0x20, 0x7e));
  if (chance(r, 0.08)) {
    for (let n = int(r, 1, 3); n > 0; n--) {
      const at = int(r, 0, s.length);
      const c = chance(r, 0.4)
        ? pick(r, [0x09, 0x00, 0x01, 0x0b, 0x0d, 0x0a, 0x1f, 0x7f, 0x80, 0xe9, 0xff])
        : int(r, 0, 255);
      s = s.slice(0, at) + String.fromCharCode(c) + s.slice(at);
    }
  }
  if (chance(r, 0.1)) s += pick(r, [" ", "\t", " \t "]);
  return s;
}

const line = (r: Rng, name: string, value: string) =>
  `${name}:${pick(r, ["", " ", " ", " ", "  ", "\t", " \t"])}${value}\r\n`;

function randomBytes(r: Rng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(int(r, 0, 255));
  return s;
}

const KNOWN = ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
/** Tokens unknown to llhttp, tokens it knows, and methods that are no token. */
const ODD_METHODS = ["get", "Get", "FOO", "X_Y", "M-SEARCH", "PURGE", "MKCOL", "G@T", "GE(T", ""];

function pathChars(r: Rng): string {
  let s = "";
  const safe = "abcxyz0123456789-._~/%";
  for (let n = int(r, 0, 12); n > 0; n--) s += pick(r, [...safe]);
  if (chance(r, 0.3)) s += `?${pick(r, ["q=1", "a=b&c=d", "x", "", "%20"])}`;
  return s;
}

/** The request target for `method`, and the shapes it has. */
function target(r: Rng, method: string, req: GenRequest): { text: string; canonical: string } {
  if (method === "CONNECT") {
    const t = pick(r, ["example.com:443", "10.0.0.1:8443", "[::1]:443", "example.com", "/x"]);
    return { text: t, canonical: t };
  }
  const k = r();
  if (k < 0.74) {
    const t = `/${pathChars(r)}`;
    return { text: t, canonical: t };
  }
  if (k < 0.8) {
    // Any visible ASCII in an origin-form target.
    let t = "/";
    for (let n = int(r, 1, 10); n > 0; n--) t += String.fromCharCode(int(r, 0x21, 0x7e));
    return { text: t, canonical: t };
  }
  if (k < 0.82) {
    // A byte that is no visible ASCII.
    const t = `/a${String.fromCharCode(pick(r, [0x00, 0x01, 0x09, 0x7f, 0x80, 0xe9, 0xff, 0x0b]))}b`;
    return { text: t, canonical: t };
  }
  if (k < 0.92) {
    const scheme = pick(r, ["http", "http", "https", "HTTP"]);
    let host = pick(r, ["example.com", "a.example:8080", "[::1]:80", "user@host", "10.1.2.3"]);
    let canonicalHost = host;
    if (chance(r, 0.25)) {
      const at = int(r, 0, host.length);
      host = host.slice(0, at) + pick(r, [...'<>"{}|\\^`']) + host.slice(at);
      canonicalHost = "odd.example";
      req.shapes.add("absolute-form-authority-chars");
      req.fix = composeFix(req.fix, (m) => ({
        ...m,
        target: m.target.replace(canonicalHost, host),
      }));
    }
    const rest = pick(r, ["/", `/${pathChars(r)}`, "", "?q=1"]);
    return { text: `${scheme}://${host}${rest}`, canonical: `${scheme}://${canonicalHost}${rest}` };
  }
  if (k < 0.96) {
    const t = pick(r, ["*", "*", "*x", "*/"]);
    if (method !== "OPTIONS" || t !== "*") req.shapes.add("asterisk-form-not-options");
    return { text: t, canonical: t };
  }
  // No form a request may have: authority-form off CONNECT, a relative reference, nothing.
  const t = pick(r, ["example.com:80", "a/b", "?q", "http:x", ""]);
  return { text: t, canonical: t };
}

function composeFix(a: ((m: Msg) => Msg) | undefined, b: (m: Msg) => Msg): (m: Msg) => Msg {
  return a === undefined ? b : (m) => b(a(m));
}

/** The request line; returns the version it says. */
function requestLine(r: Rng, req: GenRequest): { method: string; version: string } {
  let method = chance(r, 0.04) ? "CONNECT" : pick(r, KNOWN);
  let canonicalMethod = method;
  if (chance(r, 0.05)) {
    method = pick(r, ODD_METHODS);
    canonicalMethod = method;
    if (isToken(method) && !METHODS.includes(method)) {
      req.shapes.add("method-unknown-to-llhttp");
      canonicalMethod = "POST";
      const sent = method;
      req.fix = composeFix(req.fix, (m) => ({ ...m, method: sent }));
    }
  }
  const t = target(r, method, req);
  let sep1 = " ";
  let sep2 = " ";
  if (chance(r, 0.03)) {
    const odd = pick(r, ["  ", "   ", "\t", " \t"]);
    if (chance(r, 0.5)) sep1 = odd;
    else sep2 = odd;
    if (odd.trim() === "") req.shapes.add("request-line-extra-space");
  }
  let version = chance(r, 0.88) ? "HTTP/1.1" : "HTTP/1.0";
  if (chance(r, 0.03)) {
    const odd: [string, Shape?][] = [
      ["HTTP/2.0", "version-not-1.x"],
      ["HTTP/0.9", "version-not-1.x"],
      ["RTSP/1.0", "version-not-1.x"],
      ["ICE/1.0"],
      ["HTTP/1.2"],
      ["HTTP/3.0"],
      ["http/1.1"],
      ["HTTP/1"],
      ["HTTP/1.10"],
      ["HTTP/1.1 "],
      ["HTTP/1.x"],
    ];
    const [v, shape] = pick(r, odd);
    version = v;
    if (shape) req.shapes.add(shape);
  }
  const eol = chance(r, 0.01) ? "\n" : "\r\n";
  req.text += `${method}${sep1}${t.text}${sep2}${version}${eol}`;
  req.canonical += `${canonicalMethod}${sep1}${t.canonical}${sep2}${version}${eol}`;
  return { method, version };
}

function chunkSize(r: Rng, n: number, shapes: Set<Shape>): { text: string; canonical: string } {
  let hex = n.toString(16);
  if (chance(r, 0.3)) hex = hex.toUpperCase();
  if (chance(r, 0.08)) {
    const zeros = int(r, 1, 13);
    if (zeros + hex.length > 12) shapes.add("chunk-size-over-12-digits");
    hex = "0".repeat(zeros) + hex;
  }
  if (chance(r, 0.03)) {
    const bad = pick(r, ["-1", "g", "0x3", " 3", "3 ", ""]);
    return { text: bad, canonical: bad };
  }
  if (chance(r, 0.15)) {
    const k = int(r, 0, 9);
    if (k < 5) {
      const ext = pick(r, [";a=b", ";a", ';name="quoted value"', ";a=b;c=d", ';q="\\"x\\""']);
      return { text: hex + ext, canonical: hex + ext };
    }
    if (k < 7) {
      shapes.add("bws-before-chunk-ext");
      const ext = pick(r, [";a=b", ";a"]);
      return { text: hex + pick(r, [" ", "\t", " \t"]) + ext, canonical: hex + ext };
    }
    shapes.add("chunk-ext-not-in-grammar");
    const ext = pick(r, [
      ";",
      "; a=b",
      ";a = b",
      ";a=\x01",
      ";a=b c",
      ";\xe9",
      ";a=\x7f",
      ";a=\xe9",
    ]);
    return { text: hex + ext, canonical: hex };
  }
  return { text: hex, canonical: hex };
}

/** A chunked body, with the shapes it has added to `shapes`. */
function chunkedBody(r: Rng, shapes: Set<Shape>): { text: string; canonical: string } {
  let text = "";
  let canonical = "";
  const add = (t: string, c = t) => {
    text += t;
    canonical += c;
  };
  for (let n = int(r, 0, 3); n > 0; n--) {
    const data = randomBytes(r, int(r, 1, 20));
    const size = chunkSize(r, data.length, shapes);
    add(size.text, size.canonical);
    add(chance(r, 0.01) ? "\n" : "\r\n");
    add(data);
    add(chance(r, 0.03) ? pick(r, ["\n", "X\r\n", "", "\r", "\rX", "\r\r\n", "\n\r"]) : "\r\n");
  }
  const last = chunkSize(r, 0, shapes);
  add(last.text, last.canonical);
  add("\r\n");
  if (chance(r, 0.25)) {
    for (let n = int(r, 1, 2); n > 0; n--) add(line(r, headerName(r), headerValue(r)));
  }
  if (chance(r, 0.04)) {
    shapes.add("framing-field-in-trailers");
    const [name, value] = pick(r, [
      ["Content-Length", "5"],
      ["Transfer-Encoding", "chunked"],
      ["content-length", "0"],
    ] as const);
    add(`${name}: ${value}\r\n`, `X-Was-Framing: ${value}\r\n`);
  }
  add(chance(r, 0.01) ? "\n" : "\r\n");
  return { text, canonical };
}

/**
 * One request, with a shape set of its own; `tunnel` when it takes the connection over
 * (CONNECT, or an Upgrade lintel takes): what follows its head is no request of its own.
 */
function generateRequest(r: Rng, last: boolean): GenRequest & { tunnel: boolean } {
  const req: GenRequest = { text: "", canonical: "", shapes: new Set() };
  if (chance(r, 0.05)) {
    const before = pick(r, ["\r\n", "\r\n\r\n", "\n"]);
    if (before.includes("\n") && !before.includes("\r")) req.shapes.add("bare-lf-before-request");
    req.text += before;
    req.canonical += before;
  }
  const { method, version } = requestLine(r, req);
  const lines: { text: string; canonical: string }[] = [];
  const add = (t: string, c = t) => lines.push({ text: t, canonical: c });
  if (chance(r, 0.9)) add(line(r, pick(r, ["Host", "host", "HOST"]), "example.com"));
  for (let n = int(r, 0, 4); n > 0; n--) add(line(r, headerName(r), headerValue(r)));
  if (chance(r, 0.03)) add(`X-Folded: a\r\n${pick(r, [" ", "\t"])}b\r\n`);
  if (chance(r, 0.01)) add(`X-Bare: a\n`);
  const v10 = version === "HTTP/1.0";
  let connection = "";
  if (chance(r, 0.25)) {
    connection = pick(r, [
      "close",
      "Close",
      "keep-alive",
      "Keep-Alive",
      "foo, close",
      "close,foo",
      "keep-alive, foo",
      "closed",
      "x-keep-alive",
      "TE",
    ]);
    add(line(r, "Connection", connection));
  }
  let tunnel = method === "CONNECT";
  if (chance(r, 0.07)) {
    const protocol = pick(r, ["websocket", "websocket", "h2c", "H2C", "foo/1"]);
    let upgrading = false;
    if (chance(r, 0.75)) {
      add(line(r, "Connection", pick(r, ["Upgrade", "upgrade", "keep-alive, Upgrade"])));
      upgrading = true;
    }
    // An upgrade lintel does not take: llhttp reads the request as lintel does without it.
    let ignored: Shape | undefined;
    if (upgrading && method !== "CONNECT") {
      if (v10) ignored = "upgrade-in-http-1.0";
      else if (protocol.toLowerCase() === "h2c") ignored = "h2c-upgrade-not-taken";
    }
    if (ignored !== undefined) {
      req.shapes.add(ignored);
      add(`Upgrade: ${protocol}\r\n`, `X-Was-Upgrade: ${protocol}\r\n`);
      req.fix = composeFix(req.fix, (m) => ({
        ...m,
        headers: m.headers.map((h) => (h === "x-was-upgrade" ? "upgrade" : h)),
      }));
    } else {
      add(line(r, "Upgrade", protocol));
      if (upgrading && version === "HTTP/1.1") tunnel = true;
    }
  }
  // The body's shapes count only if the body is read as one (not as a tunnel's bytes).
  const bodyShapes = new Set<Shape>();
  let body = { text: "", canonical: "" };
  const framing = r();
  if (framing < 0.45) {
    // No body.
  } else if (framing < 0.75) {
    let bytes = randomBytes(r, int(r, 0, 30));
    let value = String(bytes.length);
    const k = r();
    if (k < 0.1) {
      value = pick(r, ["+5", "-1", "0x5", "5a", "", "1, 1", "5 5", "5,5"]);
      if (value.includes("5")) bytes = randomBytes(r, 5);
    } else if (k < 0.15) value = "0".repeat(int(r, 1, 14 - value.length)) + value;
    else if (k < 0.19) {
      value = "0".repeat(int(r, 16 - value.length, 20 - value.length)) + value;
      req.shapes.add("content-length-over-15-digits");
    }
    add(line(r, pick(r, ["Content-Length", "content-length"]), value));
    if (chance(r, 0.06)) add(line(r, "Content-Length", chance(r, 0.5) ? value : "7"));
    body = { text: bytes, canonical: bytes };
  } else {
    let te = pick(r, ["chunked", "chunked", "Chunked", "CHUNKED"]);
    if (chance(r, 0.12)) {
      te = pick(r, ["gzip, chunked", "", "chunked, gzip", "identity", "chunked, chunked", "gzip"]);
      req.shapes.add("transfer-encoding-not-chunked-alone");
    }
    add(line(r, "Transfer-Encoding", te));
    if (chance(r, 0.03)) add(line(r, "Transfer-Encoding", "chunked"));
    if (chance(r, 0.05)) add(line(r, "Content-Length", String(int(r, 0, 9))));
    if (v10) req.shapes.add("transfer-encoding-in-http-1.0");
    body = chunkedBody(r, bodyShapes);
  }
  if (tunnel) body = { text: body.text, canonical: body.text };
  else for (const s of bodyShapes) req.shapes.add(s);
  if (chance(r, 0.05) && body.text.length > 0 && method !== "CONNECT") {
    add(line(r, "Expect", pick(r, ["100-continue", "100-Continue", "foo"])));
  }
  // Framing fields anywhere among the others.
  for (let i = lines.length - 1; i > 0; i--) {
    const j = int(r, 0, i);
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
  }
  req.text += `${lines.map((l) => l.text).join("")}\r\n${body.text}`;
  req.canonical += `${lines.map((l) => l.canonical).join("")}\r\n${body.canonical}`;
  // Sometimes the connection closes before the last request is complete.
  if (last && chance(r, 0.04)) {
    const drop = int(r, 1, Math.min(20, req.text.length));
    req.text = req.text.slice(0, -drop);
    req.canonical = req.canonical.slice(0, Math.max(0, req.canonical.length - drop));
  }
  return { ...req, tunnel };
}

function generate(r: Rng, id: number): Case {
  const n = chance(r, 0.7) ? 1 : chance(r, 0.66) ? 2 : 3;
  const reqs: GenRequest[] = [];
  for (let i = 0; i < n; i++) {
    const q = generateRequest(r, i === n - 1);
    reqs.push(q);
    if (q.tunnel) {
      // Bytes for the tunnel, which neither side reads as a request.
      const tail = chance(r, 0.5) ? randomBytes(r, int(r, 0, 30)) : "GET /after HTTP/1.1\r\n\r\n";
      reqs.push({ text: tail, canonical: tail, shapes: new Set() });
      break;
    }
  }
  const shapes = new Set<Shape>();
  let strictAt = -1;
  reqs.forEach((q, i) => {
    for (const s of q.shapes) {
      shapes.add(s);
      if (DIFFERENCES[s] === "refuses" && strictAt < 0) strictAt = i;
    }
  });
  return {
    id,
    bytes: reqs.map((q) => q.text).join(""),
    canonical: reqs.map((q) => q.canonical).join(""),
    shapes,
    strictAt,
    fixes: reqs.map((q) => q.fix),
  };
}

// --- lintel's side: an Http1Connection on an in-memory socket ---

/** A socket as far as the connection uses it: what is pushed is read, what is written kept. */
class MemorySocket extends Duplex {
  written = "";
  constructor() {
    super({
      read() {},
      write: (chunk: Buffer, _encoding, callback) => {
        this.written += chunk.toString("latin1");
        callback();
      },
    });
  }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const EMPTY = Buffer.alloc(0);
/** The status line of an answer lintel writes when it refuses a request. */
const REFUSAL = /(?:^|\n)HTTP\/1\.1 [45]\d\d /;

/** Seeded cuts: mostly 1 to 4 pieces, sometimes one byte at a time. */
function pieces(r: Rng, bytes: string): string[] {
  if (chance(r, 0.05)) return bytes.split("");
  const at = [0, bytes.length];
  for (let n = int(r, 0, 3); n > 0; n--) at.push(int(r, 0, bytes.length));
  at.sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 1; i < at.length; i++)
    if (at[i]! > at[i - 1]!) out.push(bytes.slice(at[i - 1], at[i]));
  return out;
}

async function lintel(c: Case, r: Rng): Promise<Outcome> {
  const socket = new MemorySocket();
  const msgs: Msg[] = [];
  let tunnel: { msg: Msg; data: string } | undefined;
  const host: ConnectionHost = {
    maxHeaderBytes: 16 * 1024,
    handler(ex) {
      const head = heads.at(-1)!;
      const chunks: Buffer[] = [];
      const body = ex.body();
      body.on("data", (d: Buffer) => chunks.push(d));
      body.on("end", () => {
        msgs.push({
          kind: "request",
          method: head.method,
          target: head.target,
          version: head.version,
          headers: head.headers,
          body: Buffer.concat(chunks).toString("latin1"),
          keepAlive: head.keepAlive,
          expectsContinue: head.expectsContinue,
        });
        ex.respond(200, [], EMPTY);
      });
    },
    onConnect: (t) => take(t),
    onUpgrade: (t) => take(t),
    http2: undefined,
    released() {},
  };
  const take = (t: TunnelRequest) => {
    const msg: Msg = {
      kind: t.method === "CONNECT" ? "connect" : "upgrade",
      method: t.method,
      target: t.target,
      version: t.httpVersion,
      headers: t.headers,
      body: "",
    };
    tunnel = { msg, data: t.head.toString("latin1") };
    t.socket.on("data", (d: Buffer) => {
      tunnel!.data += d.toString("latin1");
    });
    t.socket.resume();
  };
  const conn = new Http1Connection(socket as unknown as Socket, host, "", 0, false, undefined);
  for (const p of pieces(r, c.bytes)) {
    socket.push(Buffer.from(p, "latin1"));
    await tick();
  }
  for (let i = 0; i < 3; i++) await tick();
  if (tunnel !== undefined) {
    return { msgs: [...msgs, { ...tunnel.msg, body: tunnel.data }], end: "tunnel" };
  }
  const refused = REFUSAL.exec(socket.written);
  if (refused) {
    // Its status line and the reason lintel gives in the answer's body.
    const answer = socket.written.slice(refused.index).trim();
    const why = `${answer.split("\r\n")[0]}: ${answer.slice(answer.indexOf("\r\n\r\n") + 4)}`;
    return { msgs, end: "refused", why };
  }
  if (socket.destroyed) return { msgs, end: "refused", why: "destroyed" };
  // Bytes of a request that never completed: llhttp refuses them when the connection ends.
  if (!socket.writableEnded && !conn.idle) return { msgs, end: "refused", why: "incomplete" };
  return { msgs, end: "clean" };
}

// --- llhttp's side: Node's HTTP server on loopback ---

let server: Server;
let port: number;

/** One connection's record on the server, by the client's port. */
interface ConnRecord {
  readonly requests: { msg: Omit<Msg, "body">; body: string; done: boolean }[];
  error?: string;
  tunnel?: Msg;
  resolve(): void;
}
const byPort = new Map<number, ConnRecord>();
const continued = new WeakSet<IncomingMessage>();

function headersOf(req: IncomingMessage): string[] {
  return req.rawHeaders.map((v, i) => (i % 2 === 0 ? v.toLowerCase() : v));
}

beforeAll(async () => {
  server = createServer({ requireHostHeader: false }, (req, res) => {
    const rec = byPort.get(req.socket.remotePort!);
    if (rec === undefined) return;
    const entry = {
      msg: {
        kind: "request" as const,
        method: req.method ?? "",
        target: req.url ?? "",
        version: req.httpVersion,
        headers: headersOf(req),
        keepAlive: res.shouldKeepAlive,
        expectsContinue: continued.has(req),
      },
      body: "",
      done: false,
    };
    rec.requests.push(entry);
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      entry.body = Buffer.concat(chunks).toString("latin1");
      entry.done = true;
      res.end();
    });
  });
  server.on("checkContinue", (req: IncomingMessage, res) => {
    continued.add(req);
    server.emit("request", req, res);
  });
  server.on("checkExpectation", (req, res) => server.emit("request", req, res));
  server.on("clientError", (e: Error & { code?: string }, s: Socket) => {
    const rec = byPort.get(s.remotePort!);
    if (rec) rec.error ??= `${e.code} ${e.message}`;
    // Later: the requests read before the error end first (their "end" events are queued).
    setImmediate(() => s.destroy());
  });
  const tunnel =
    (kind: "connect" | "upgrade") => (req: IncomingMessage, s: Socket, head: Buffer) => {
      const rec = byPort.get(s.remotePort!);
      if (rec === undefined) {
        s.destroy();
        return;
      }
      let data = head.toString("latin1");
      const msg = {
        kind,
        method: req.method ?? "",
        target: req.url ?? "",
        version: req.httpVersion,
        headers: headersOf(req),
        body: "",
      };
      rec.tunnel = msg;
      s.on("data", (d: Buffer) => {
        data += d.toString("latin1");
      });
      s.on("end", () => {
        msg.body = data;
        s.destroy();
      });
      s.on("error", () => {});
    };
  server.on("connect", tunnel("connect"));
  server.on("upgrade", tunnel("upgrade"));
  server.on("connection", (s: Socket) => {
    const p = s.remotePort!;
    s.on("close", () => setImmediate(() => byPort.get(p)?.resolve()));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** llhttp's reading of `bytes`, written at once on a fresh connection that is then half-closed. */
function reference(bytes: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const client = connect(port, "127.0.0.1");
    client.on("error", () => {});
    client.on("data", () => {});
    let settled = false;
    const settle = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => settle({ msgs: [], end: "refused", why: "timed out" }), 5000);
    client.on("connect", () => {
      const local = client.localPort!;
      const rec: ConnRecord = {
        requests: [],
        resolve: () => {
          byPort.delete(local);
          settle(outcomeOf(rec));
        },
      };
      byPort.set(local, rec);
      client.end(Buffer.from(bytes, "latin1"));
    });
  });
}

function outcomeOf(rec: ConnRecord): Outcome {
  const msgs: Msg[] = [];
  for (const q of rec.requests) if (q.done) msgs.push({ ...q.msg, body: q.body });
  if (rec.tunnel) return { msgs: [...msgs, rec.tunnel], end: "tunnel" };
  const read = rec.requests.length === msgs.length;
  // Bytes after a request that closes the connection are not read (lintel closes too).
  if (rec.error === undefined || (rec.error.startsWith("HPE_CLOSED_CONNECTION") && read)) {
    return read ? { msgs, end: "clean" } : { msgs, end: "refused", why: "body not ended" };
  }
  return { msgs, end: "refused", why: rec.error };
}

const SEED = 23;
const COUNT = 4000;
const CONCURRENCY = 48;

/** llhttp's outcomes for `list`, CONCURRENCY connections at a time. */
async function references(list: readonly { id: number; bytes: string }[]) {
  const out = new Map<number, Outcome>();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < list.length) {
        const c = list[next++]!;
        out.set(c.id, await reference(c.bytes));
      }
    }),
  );
  return out;
}

/** An outcome with its fields in one order, to compare and to show. */
const norm = (msgs: readonly Msg[]) =>
  msgs.map((m) => [
    m.kind,
    m.method,
    m.target,
    m.version,
    m.headers,
    m.body,
    m.keepAlive,
    m.expectsContinue,
  ]);
const show = (o: Outcome) => JSON.stringify({ end: o.end, why: o.why, msgs: norm(o.msgs) });
const sameMsgs = (a: readonly Msg[], b: readonly Msg[]) =>
  JSON.stringify(norm(a)) === JSON.stringify(norm(b));

describe("the net engine's request parsing against llhttp", () => {
  it(`agrees on ${COUNT} generated connections, but for the documented differences`, async () => {
    const gen = seeded(SEED);
    const all = Array.from({ length: COUNT }, (_, id) => generate(gen, id));
    // llhttp reads each case, and the canonical form of those with a lenient shape.
    const refs = await references([
      ...all.map((c) => ({ id: c.id, bytes: c.bytes })),
      ...all
        .filter((c) => c.canonical !== c.bytes)
        .map((c) => ({ id: COUNT + c.id, bytes: c.canonical })),
    ]);
    const feed = seeded(SEED + 1);
    const mismatches: string[] = [];
    const differences = new Map<Shape, number>();
    /** Cases both read requests of (and then both stopped the same way). */
    let bothRead = 0;
    /** Cases both refused before any request. */
    let bothRefuse = 0;
    let requests = 0;
    let pipelined = 0;
    let tunnels = 0;
    for (const c of all) {
      const l = await lintel(c, feed);
      const raw = refs.get(c.canonical === c.bytes ? c.id : COUNT + c.id)!;
      // What lintel must read: llhttp's reading of the canonical form, fixed up.
      const ref: Outcome = {
        ...raw,
        msgs: raw.msgs.map((m, i) => (c.fixes[i] ? c.fixes[i]!(m) : m)),
      };
      for (const s of c.shapes) differences.set(s, (differences.get(s) ?? 0) + 1);
      const report = (why: string) =>
        `seed ${SEED} case #${c.id} [${[...c.shapes].join(", ")}] ${JSON.stringify(c.bytes)}: ${why}\n  lintel: ${show(l)}\n  llhttp: ${show(ref)}${c.canonical !== c.bytes ? `\n  (llhttp read the canonical form ${JSON.stringify(c.canonical)})` : ""}`;
      requests += l.msgs.length;
      if (l.msgs.length > 1) pipelined++;
      if (l.end === "tunnel") tunnels++;
      // A request lintel refuses on purpose, if llhttp got that far (it may have stopped
      // before it: refused an earlier one, closed, or handed the connection over).
      const k = c.strictAt;
      const reached =
        k >= 0 && (ref.msgs.length > k || (ref.msgs.length === k && ref.end === "refused"));
      if (reached) {
        if (l.end !== "refused" || !sameMsgs(l.msgs, ref.msgs.slice(0, k)))
          mismatches.push(report(`lintel must refuse request ${k} and read those before it`));
        continue;
      }
      if (l.end !== ref.end || !sameMsgs(l.msgs, ref.msgs))
        mismatches.push(report("read differently"));
      else if (l.end === "refused" && l.msgs.length === 0) bothRefuse++;
      else bothRead++;
    }
    expect(mismatches.length, mismatches.slice(0, 10).join("\n\n")).toBe(0);
    // The generator reaches both outcomes and every documented difference.
    expect(bothRead).toBeGreaterThan(COUNT * 0.4);
    expect(bothRefuse).toBeGreaterThan(COUNT * 0.15);
    expect(requests).toBeGreaterThan(COUNT * 0.5);
    expect(pipelined).toBeGreaterThan(COUNT * 0.05);
    expect(tunnels).toBeGreaterThan(COUNT * 0.02);
    for (const s of Object.keys(DIFFERENCES) as Shape[])
      expect(differences.get(s) ?? 0, s).toBeGreaterThan(0);
  });
});
