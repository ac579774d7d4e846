// lintel's upstream response parser against llhttp, the parser of Node's own HTTP client.
// A seeded generator writes a few thousand responses, valid and not: header names that
// are tokens or not, values with any byte, obs-fold, repeated and invalid Content-Length,
// chunked with and without Content-Length, other transfer codings, trailers, interim
// answers, status lines of many shapes, bodies cut short. Each goes to lintel's parser
// (fed in random pieces, then the connection closes) and, through a raw TCP server that
// writes the same bytes and closes, to `http.request` (llhttp, strict: Node's default).
// Both must accept or both refuse, and when both accept they must read the same status,
// header names and values, body and trailers. Where lintel deliberately differs, the rule
// is in DIFFERENCES below with its RFC section, and the test asserts what lintel does.

import { request } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResponseParser } from "../../gateway/client/http1/response-parser.js";
import { seeded } from "../support/seeded.js";

type Rng = () => number;
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Rng, p: number) => r() < p;

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/** Characters that are not tchar (RFC 9110 §5.6.2), latin1. */
const NON_TCHARS = [
  " ",
  "\t",
  "(",
  ")",
  "@",
  ",",
  ";",
  "<",
  "=",
  ">",
  "?",
  "[",
  "]",
  "{",
  "}",
  '"',
  "/",
  "\\",
  "\x00",
  "\x01",
  "\x1f",
  "\x7f",
  "\x80",
  "\xe9",
  "\xff",
];
const NAMES = [
  "content-type",
  "X-Request-Id",
  "Cache-Control",
  "set-cookie",
  "Server",
  "date",
  "ETag",
  "x_under",
  "x.dot",
  "!#$%&'*+-.^_`|~",
  "Vary",
];

/** One generated response, and what it was built with (for the rules below). */
interface Case {
  readonly id: number;
  readonly method: "GET" | "HEAD";
  readonly bytes: string;
  /**
   * The same response without the shapes lintel reads more leniently than llhttp (a
   * repeated Content-Length, Content-Length next to Transfer-Encoding, whitespace before a
   * chunk extension): what lintel must read `bytes` as.
   */
  readonly canonical: string;
  /** Set by the generator when the case uses a shape a rule in DIFFERENCES is about. */
  readonly shapes: Set<Shape>;
}

/** Text as sent, and as in the canonical response. */
interface Part {
  readonly text: string;
  canonical: string;
  /** One of repeated equal Content-Length lines: the canonical form keeps the first. */
  readonly repeat?: true;
}
const same = (text: string): Part => ({ text, canonical: text });

type Shape =
  | "status-below-100"
  | "version-not-1.x"
  | "chunk-size-over-12-digits"
  | "repeated-equal-content-length"
  | "transfer-encoding-with-content-length"
  | "bws-before-chunk-ext";

function tokenName(r: Rng): string {
  if (chance(r, 0.6)) return pick(r, NAMES);
  let s = "";
  for (let n = int(r, 1, 12); n > 0; n--) s += pick(r, [...TCHARS]);
  return s;
}

/** A header name: mostly a token; else with a non-token character, empty, or with a space before the colon. */
function headerName(r: Rng): string {
  const name = tokenName(r);
  if (chance(r, 0.85)) return name;
  const k = int(r, 0, 9);
  if (k === 0) return "";
  if (k === 1) return `${name} `;
  const at = int(r, 0, name.length);
  return name.slice(0, at) + pick(r, NON_TCHARS) + name.slice(at);
}

/** A field value: mostly printable; else with bytes from the whole range, obs-text and controls included. */
function headerValue(r: Rng): string {
  let s = "";
  for (let n = int(r, 0, 24); n > 0; n--) s += String.fromCharCode(int(r, 0x20, 0x7e));
  if (chance(r, 0.25)) {
    for (let n = int(r, 1, 3); n > 0; n--) {
      const at = int(r, 0, s.length);
      const c = chance(r, 0.3)
        ? pick(r, [0x09, 0x00, 0x01, 0x0b, 0x0d, 0x0a, 0x1f, 0x7f])
        : int(r, 0, 255);
      s = s.slice(0, at) + String.fromCharCode(c) + s.slice(at);
    }
  }
  if (chance(r, 0.1)) s += pick(r, [" ", "\t", " \t "]);
  return s;
}

function headerLine(r: Rng, name: string, value: string): string {
  return `${name}:${pick(r, ["", " ", " ", "  ", "\t", " \t"])}${value}\r\n`;
}

function randomBytes(r: Rng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(int(r, 0, 255));
  return s;
}

function statusLine(r: Rng, shapes: Set<Shape>): { line: string; status: number } {
  if (chance(r, 0.12)) {
    const odd: [string, number, Shape?][] = [
      ["HTTP/2.0 200 OK", 200, "version-not-1.x"],
      ["HTTP/3.0 200 OK", 200, "version-not-1.x"],
      ["HTTP/0.9 200 OK", 200, "version-not-1.x"],
      ["HTTP/1.2 200 OK", 200],
      ["HTTP/2 200 OK", 200],
      ["http/1.1 200 OK", 200],
      ["HTTP/1.1  200 OK", 200],
      ["HTTP/1.1 20 OK", 20],
      ["HTTP/1.1 2000 OK", 2000],
      ["HTTP/1.1 2x0 OK", 0],
      ["HTTP/1.1 099 Low", 99, "status-below-100"],
      ["HTTP/1.1 000 Zero", 0, "status-below-100"],
      ["HTTP/1.1 200OK", 200],
      [" HTTP/1.1 200 OK", 200],
      ["HTTP/1.1\t200 OK", 200],
      ["ICY 200 OK", 200],
      ["HTTP/1.1 200 OK\nX-Hidden: 1", 200],
      ["HTTP/1.1 200 O\rK", 200],
      ["HTTP/1.1", 0],
      ["", 0],
    ];
    const [line, status, shape] = pick(r, odd);
    if (shape) shapes.add(shape);
    return { line, status };
  }
  let status = pick(r, [200, 200, 200, 201, 204, 206, 301, 302, 304, 404, 500, 503, 0]);
  if (status === 0) status = int(r, 200, 999);
  const reasons = [" OK", "", " ", " Not Found", " A reason with  spaces\t"];
  let reason = pick(r, reasons);
  if (chance(r, 0.1)) reason = ` ${randomBytes(r, int(r, 1, 6)).replace(/[\r\n]/g, "x")}`;
  return { line: `HTTP/1.${chance(r, 0.85) ? 1 : 0} ${status}${reason}`, status };
}

function chunkSize(r: Rng, n: number, shapes: Set<Shape>): Part {
  let hex = n.toString(16);
  if (chance(r, 0.3)) hex = hex.toUpperCase();
  if (chance(r, 0.1)) {
    const zeros = int(r, 1, 13);
    if (zeros + hex.length > 12) shapes.add("chunk-size-over-12-digits");
    hex = "0".repeat(zeros) + hex;
  }
  if (chance(r, 0.15)) {
    const ext = pick(r, [";a=b", ";a", ';name="quoted value"', ";a=b;c=d", " ;a=b", "\t;x"]);
    if (ext[0] !== ";") {
      shapes.add("bws-before-chunk-ext");
      return { text: hex + ext, canonical: hex + ext.trimStart() };
    }
    hex += ext;
  }
  return same(hex);
}

function chunkedBody(r: Rng, shapes: Set<Shape>): Part {
  let text = "";
  let canonical = "";
  const add = (p: Part) => {
    text += p.text;
    canonical += p.canonical;
  };
  for (let n = int(r, 0, 3); n > 0; n--) {
    const data = randomBytes(r, int(r, 1, 20));
    add(chunkSize(r, data.length, shapes));
    add(same(`\r\n${data}\r\n`));
  }
  add(chunkSize(r, 0, shapes));
  add(same("\r\n"));
  if (chance(r, 0.25))
    for (let n = int(r, 1, 2); n > 0; n--) add(same(headerLine(r, headerName(r), headerValue(r))));
  add(same("\r\n"));
  return { text, canonical };
}

function generate(r: Rng, id: number): Case {
  const shapes = new Set<Shape>();
  const method = chance(r, 0.08) ? "HEAD" : "GET";
  let head = "";
  if (chance(r, 0.05)) {
    head += pick(r, [
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
      `HTTP/1.1 103 Early Hints\r\n${headerLine(r, headerName(r), headerValue(r))}\r\n`,
    ]);
  }
  const { line, status } = statusLine(r, shapes);
  head += `${line}\r\n`;
  const lines: Part[] = [];
  for (let n = int(r, 0, 5); n > 0; n--)
    lines.push(same(headerLine(r, headerName(r), headerValue(r))));
  if (chance(r, 0.04)) lines.push(same(`x-folded: a\r\n${pick(r, [" ", "\t"])}b\r\n`));
  if (chance(r, 0.1))
    lines.push(same(headerLine(r, "Connection", pick(r, ["close", "keep-alive"]))));
  const bodiless = method === "HEAD" || status === 204 || status === 304;
  let body: Part;
  let framed = true;
  const framing = int(r, 0, 9);
  if (framing <= 3) {
    // Content-Length, sometimes repeated (equal or not), sometimes not a number.
    let bytes = randomBytes(r, int(r, 0, 40));
    let value = String(bytes.length);
    if (chance(r, 0.15)) {
      value = pick(r, ["-1", "+5", "0x5", "5a", "", "1, 1", " 5", "5 ", "1 2"]);
      if (value.trim() === "5") bytes = randomBytes(r, 5);
    } else if (chance(r, 0.1)) {
      value = "0".repeat(int(r, 1, 3)) + value;
    }
    body = same(bytes);
    lines.push(same(headerLine(r, pick(r, ["Content-Length", "content-length"]), value)));
    if (chance(r, 0.12)) {
      const again = chance(r, 0.5) ? value : String(bytes.length + 1);
      const text = headerLine(r, "Content-Length", again);
      if (again === value) {
        shapes.add("repeated-equal-content-length");
        lines[lines.length - 1] = { ...lines[lines.length - 1]!, repeat: true };
        lines.push({ text, canonical: text, repeat: true });
      } else lines.push(same(text));
    }
  } else if (framing <= 6) {
    const te = pick(r, ["chunked", "chunked", "chunked", "Chunked", "CHUNKED", "gzip, chunked"]);
    lines.push(same(headerLine(r, "Transfer-Encoding", te)));
    body = chunkedBody(r, shapes);
    if (chance(r, 0.1)) {
      shapes.add("transfer-encoding-with-content-length");
      lines.push({ text: headerLine(r, "Content-Length", String(int(r, 0, 50))), canonical: "" });
    }
  } else if (framing === 7) {
    // A coding other than chunked last: the body runs until the connection closes.
    const te = pick(r, ["gzip", "chunked, gzip", "identity", "deflate"]);
    lines.push(same(headerLine(r, "Transfer-Encoding", te)));
    body = same(randomBytes(r, int(r, 0, 30)));
    framed = false;
    if (chance(r, 0.3)) {
      shapes.add("transfer-encoding-with-content-length");
      lines.push({ text: headerLine(r, "Content-Length", String(int(r, 0, 50))), canonical: "" });
    }
  } else {
    // No framing: the body runs until the connection closes.
    body = same(randomBytes(r, int(r, 0, 30)));
    framed = false;
  }
  // Framing headers anywhere among the others.
  for (let i = lines.length - 1; i > 0; i--) {
    const j = int(r, 0, i);
    [lines[i], lines[j]] = [lines[j]!, lines[i]!];
  }
  lines
    .filter((l) => l.repeat)
    .forEach((l, i) => {
      if (i > 0) l.canonical = "";
    });
  if (bodiless) {
    body = same("");
    shapes.delete("chunk-size-over-12-digits");
  }
  // Sometimes the connection closes before a framed body is complete.
  if (framed && body.text.length > 0 && chance(r, 0.05)) {
    const drop = int(r, 1, body.text.length);
    body = {
      text: body.text.slice(0, -drop),
      canonical: body.canonical.slice(0, Math.max(0, body.canonical.length - drop)),
    };
  }
  return {
    id,
    method,
    bytes: `${head}${lines.map((l) => l.text).join("")}\r\n${body.text}`,
    canonical: `${head}${lines.map((l) => l.canonical).join("")}\r\n${body.canonical}`,
    shapes,
  };
}

/** What a parser made of a response: refused, or read. */
type Outcome =
  | { readonly ok: false; readonly why: string }
  | {
      readonly ok: true;
      readonly status: number;
      readonly headers: string[];
      readonly body: string;
      readonly trailers: string[];
    };

/** lintel's parser, fed in 1 to 3 random pieces, then the connection closes. */
function lintel(c: Case, r: Rng): Outcome {
  const p = new ResponseParser();
  let status = 0;
  let headers: string[] = [];
  let body = "";
  let trailers: string[] = [];
  let ended = false;
  p.expect(c.method, {
    onHead(s, h) {
      status = s;
      headers = h;
    },
    onBody(chunk) {
      body += chunk.toString("latin1");
      return true;
    },
    onEnd(t) {
      trailers = t ?? [];
      ended = true;
    },
  });
  const bytes = Buffer.from(c.bytes, "latin1");
  const cuts = [0, bytes.length];
  for (let n = int(r, 0, 2); n > 0; n--) cuts.push(int(r, 0, bytes.length));
  cuts.sort((a, b) => a - b);
  try {
    for (let i = 1; i < cuts.length; i++) {
      let rest: Buffer | undefined = bytes.subarray(cuts[i - 1], cuts[i]);
      while (rest !== undefined && rest.length > 0) rest = p.feed(rest);
    }
    p.closed();
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  if (!ended) return { ok: false, why: "not ended" };
  return { ok: true, status, headers, body, trailers };
}

/** Flat raw headers with lower-case names, as lintel gives them. */
const lowerNames = (raw: string[]) => raw.map((v, i) => (i % 2 === 0 ? v.toLowerCase() : v));

let server: Server;
let port: number;
const cases = new Map<number, Case>();

/** llhttp through `http.request`: the raw server writes the case's bytes and closes. */
function reference(c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    let result: Outcome | undefined;
    let failure: string | undefined;
    const req = request(
      { host: "127.0.0.1", port, path: `/${c.id}`, method: c.method, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("error", (e) => {
          failure ??= e.message;
        });
        res.on("aborted", () => {
          failure ??= "aborted";
        });
        res.on("end", () => {
          result = {
            ok: true,
            status: res.statusCode ?? 0,
            headers: lowerNames(res.rawHeaders),
            body: Buffer.concat(chunks).toString("latin1"),
            trailers: lowerNames(res.rawTrailers),
          };
        });
      },
    );
    req.on("error", (e) => {
      failure ??= e.message;
    });
    // Decided once the connection is gone, so that an error after the end counts.
    req.on("close", () =>
      setImmediate(() =>
        resolve(failure || !result ? { ok: false, why: failure ?? "no end" } : result),
      ),
    );
    req.end();
  });
}

beforeAll(async () => {
  server = createServer((s: Socket) => {
    let got = "";
    s.on("error", () => {});
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      const m = /^(?:GET|HEAD) \/(\d+) /.exec(got);
      if (m && got.includes("\r\n\r\n"))
        s.end(Buffer.from(cases.get(Number(m[1]))!.bytes, "latin1"));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/**
 * Where lintel deliberately differs from llhttp: in a case with one of these shapes,
 * lintel refuses what llhttp may read (stricter), or reads the response as llhttp reads
 * its canonical form (more lenient, within the RFC).
 */
const DIFFERENCES: Readonly<Record<Shape, "refuses" | "reads the canonical form">> = {
  // RFC 9110 §15: status codes run from 100 to 599; one below 100 cannot be written to
  // the client by either engine (Node refuses it), so lintel answers 502.
  "status-below-100": "refuses",
  // RFC 9112 §2.3: lintel asked in HTTP/1.1; an answer of another major version is not an
  // HTTP/1.x message (llhttp reads HTTP/2.0 and HTTP/0.9 status lines).
  "version-not-1.x": "refuses",
  // RFC 9112 §7.1: a recipient must guard against overflow in chunk sizes; lintel reads
  // at most 12 hex digits, leading zeros included (llhttp takes any number of zeros).
  "chunk-size-over-12-digits": "refuses",
  // RFC 9110 §8.6: repeated Content-Length lines of one value may be read as one (llhttp
  // refuses any repeat). Unequal ones are refused by both.
  "repeated-equal-content-length": "reads the canonical form",
  // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length (llhttp refuses the pair),
  // and an intermediary must remove the Content-Length before passing the message on;
  // lintel also does not reuse such a connection.
  "transfer-encoding-with-content-length": "reads the canonical form",
  // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" ... ): whitespace may come before the ";"
  // of a chunk extension (llhttp refuses it).
  "bws-before-chunk-ext": "reads the canonical form",
};

const SEED = 17;
const COUNT = 4000;
const CONCURRENCY = 48;

/** llhttp's outcomes for `list`, CONCURRENCY connections at a time. */
async function references(list: readonly Case[]): Promise<Map<number, Outcome>> {
  for (const c of list) cases.set(c.id, c);
  const out = new Map<number, Outcome>();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < list.length) {
        const c = list[next++]!;
        out.set(c.id, await reference(c));
      }
    }),
  );
  return out;
}

describe("the response parser against llhttp", () => {
  it(`agrees on ${COUNT} generated responses, but for the documented differences`, async () => {
    const gen = seeded(SEED);
    const all = Array.from({ length: COUNT }, (_, id) => generate(gen, id));
    // The canonical forms of cases with a lenient shape, under ids after COUNT.
    const canonical = all
      .filter((c) => c.canonical !== c.bytes)
      .map((c) => ({ ...c, id: COUNT + c.id, bytes: c.canonical }));
    const refs = await references([...all, ...canonical]);
    const feed = seeded(SEED + 1);
    const mismatches: string[] = [];
    let bothRead = 0;
    let bothRefuse = 0;
    const differences = new Map<Shape, number>();
    for (const c of all) {
      const l = lintel(c, feed);
      const strict = [...c.shapes].find((s) => DIFFERENCES[s] === "refuses");
      const ref = refs.get(c.canonical === c.bytes ? c.id : COUNT + c.id)!;
      const show = (why: string) =>
        `#${c.id} ${c.method} ${JSON.stringify(c.bytes)}: ${why}\n  lintel: ${JSON.stringify(l)}\n  llhttp: ${JSON.stringify(ref)}`;
      for (const s of c.shapes) differences.set(s, (differences.get(s) ?? 0) + 1);
      if (strict !== undefined) {
        if (l.ok) mismatches.push(show(`lintel must refuse (${strict})`));
        continue;
      }
      if (l.ok !== ref.ok)
        mismatches.push(show(l.ok ? "only lintel reads it" : "only llhttp reads it"));
      else if (l.ok && JSON.stringify(l) !== JSON.stringify(ref))
        mismatches.push(show("read differently"));
      else if (l.ok) bothRead++;
      else bothRefuse++;
    }
    expect(mismatches.slice(0, 8).join("\n\n")).toBe("");
    // The generator reaches both outcomes and every documented difference.
    expect(bothRead).toBeGreaterThan(COUNT * 0.3);
    expect(bothRefuse).toBeGreaterThan(COUNT * 0.2);
    for (const s of Object.keys(DIFFERENCES) as Shape[])
      expect(differences.get(s) ?? 0, s).toBeGreaterThan(0);
  });
});
