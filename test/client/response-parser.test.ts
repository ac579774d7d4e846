// The upstream response parser, fed the way sockets deliver bytes: whole, split at every
// possible point, and one byte at a time.

import { describe, expect, it } from "vitest";
import { ResponseParseError, ResponseParser } from "../../gateway/client/http1/response-parser.js";

interface Seen {
  status?: number;
  headers?: string[];
  body: string;
  trailers?: string[];
  ended: boolean;
}

function parse(
  chunks: (string | Buffer)[],
  method = "GET",
  opts: { pauseEvery?: number } = {},
): { seen: Seen; parser: ResponseParser } {
  const p = new ResponseParser();
  const seen: Seen = { body: "", ended: false };
  let calls = 0;
  p.expect(method, {
    onHead(status, headers) {
      seen.status = status;
      seen.headers = headers;
    },
    onBody(chunk) {
      seen.body += chunk.toString("latin1");
      calls++;
      return opts.pauseEvery === undefined || calls % opts.pauseEvery !== 0;
    },
    onEnd(trailers) {
      seen.trailers = trailers;
      seen.ended = true;
    },
  });
  for (const c of chunks) {
    let rest: Buffer | undefined = Buffer.isBuffer(c) ? c : Buffer.from(c, "latin1");
    while (rest !== undefined) rest = p.feed(rest);
  }
  return { seen, parser: p };
}

/** Every way to cut `text` in two, plus one byte at a time. */
function splits(text: string): string[][] {
  const out: string[][] = [[text], text.split("")];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

const LENGTH =
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-Two: a\r\nX-Two: b\r\n\r\nhello world";
const CHUNKED =
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n";

describe("ResponseParser", () => {
  it("reads a Content-Length response however the bytes are split", () => {
    for (const chunks of splits(LENGTH)) {
      const { seen, parser } = parse(chunks);
      expect(seen.status).toBe(200);
      expect(seen.headers).toEqual([
        "content-type",
        "text/plain",
        "content-length",
        "11",
        "x-two",
        "a",
        "x-two",
        "b",
      ]);
      expect(seen.body).toBe("hello world");
      expect(seen.ended).toBe(true);
      expect(parser.keepAlive).toBe(true);
      expect(parser.done).toBe(true);
    }
  });

  it("reads chunked bodies, chunk extensions and trailers however the bytes are split", () => {
    for (const chunks of splits(CHUNKED)) {
      const { seen, parser } = parse(chunks);
      expect(seen.body).toBe("hello world");
      expect(seen.trailers).toEqual(["x-sum", "42"]);
      expect(parser.keepAlive).toBe(true);
    }
  });

  it("ends a chunked body without trailers", () => {
    const { seen } = parse([
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ]);
    expect(seen.body).toBe("abc");
    expect(seen.ended).toBe(true);
    expect(seen.trailers).toBeUndefined();
  });

  it("skips interim 1xx answers and reports the final one", () => {
    const { seen } = parse([
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
    ]);
    expect(seen.status).toBe(201);
    expect(seen.body).toBe("ok");
  });

  it("gives HEAD, 204 and 304 answers no body whatever their headers say", () => {
    expect(parse(["HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n"], "HEAD").seen).toMatchObject({
      ended: true,
      body: "",
    });
    expect(parse(["HTTP/1.1 204 No Content\r\n\r\n"]).seen).toMatchObject({
      status: 204,
      ended: true,
    });
    expect(parse(["HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n"]).seen).toMatchObject({
      status: 304,
      ended: true,
    });
  });

  it("reads a body without framing until the connection closes, and never reuses that connection", () => {
    const { seen, parser } = parse(["HTTP/1.1 200 OK\r\n\r\npart one ", "part two"]);
    expect(seen.ended).toBe(false);
    expect(parser.readsUntilClose).toBe(true);
    parser.closed();
    expect(seen.ended).toBe(true);
    expect(seen.body).toBe("part one part two");
    expect(parser.keepAlive).toBe(false);
  });

  it("honours Connection: close and HTTP/1.0 without keep-alive", () => {
    expect(
      parse(["HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n"]).parser.keepAlive,
    ).toBe(false);
    expect(parse(["HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"]).parser.keepAlive).toBe(false);
    expect(
      parse(["HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 0\r\n\r\n"]).parser
        .keepAlive,
    ).toBe(true);
  });

  it("lets Transfer-Encoding override Content-Length and closes such a connection after", () => {
    const { seen, parser } = parse([
      "HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    ]);
    expect(seen.body).toBe("hi");
    expect(parser.keepAlive).toBe(false);
  });

  it("pauses when the body handler asks and continues from where it stopped", () => {
    const text =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n";
    const { seen } = parse([text], "GET", { pauseEvery: 1 });
    expect(seen.body).toBe("abc");
    expect(seen.ended).toBe(true);
  });

  it("hands out body bytes without copying them", () => {
    const p = new ResponseParser();
    const input = Buffer.from("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nxyz");
    let view: Buffer | undefined;
    p.expect("GET", {
      onHead() {},
      onBody(c) {
        view = c;
        return true;
      },
      onEnd() {},
    });
    p.feed(input);
    expect(view?.buffer).toBe(input.buffer);
  });

  const bad: [string, string, RegExp][] = [
    ["a garbage status line", "HELLO\r\n\r\n", /invalid status line/],
    ["HTTP/2 in a status line", "HTTP/2.0 200 OK\r\n\r\n", /invalid status line/],
    ["a four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", /invalid status line/],
    ["a two-digit status", "HTTP/1.1 20\r\n\r\n", /invalid status line/],
    ["a status with a letter", "HTTP/1.1 2x0 OK\r\n\r\n", /invalid status line/],
    ["a status line without the space", "HTTP/1.1200 OK\r\n\r\n", /invalid status line/],
    ["an empty header name", "HTTP/1.1 200 OK\r\n: a\r\n\r\n", /invalid header line/],
    [
      "a bare LF in a header value",
      "HTTP/1.1 200 OK\r\nx: a\nset-cookie: b\r\n\r\n",
      /bare CR or LF/,
    ],
    ["a bare CR in a header value", "HTTP/1.1 200 OK\r\nx: a\rb\r\nz: c\r\n\r\n", /bare CR or LF/],
    ["a bare LF in the last header line", "HTTP/1.1 200 OK\r\nx: a\nb\r\n\r\n", /bare CR or LF/],
    ["a NUL in a header value", "HTTP/1.1 200 OK\r\nx: a\u0000b\r\n\r\n", /NUL/],
    [
      "a header name with a space",
      "HTTP/1.1 200 OK\r\nx y: 1\r\n\r\n",
      /invalid character 0x20 in header name "x y"/,
    ],
    [
      "a header name with a separator",
      "HTTP/1.1 200 OK\r\nx@y: 1\r\n\r\n",
      /invalid character 0x40 in header name/,
    ],
    [
      "a header name with obs-text",
      "HTTP/1.1 200 OK\r\nx\u00e9: 1\r\n\r\n",
      /invalid character 0xe9 in header name/,
    ],
    [
      "a control character in a header value",
      "HTTP/1.1 200 OK\r\nx: a\u0001b\r\n\r\n",
      /control character 0x01 in the value of header "x"/,
    ],
    [
      "DEL in a header value",
      "HTTP/1.1 200 OK\r\nx: a\u007f\r\ncontent-length: 0\r\n\r\n",
      /control character 0x7f/,
    ],
    [
      "an escape in the last header value",
      "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx: \u001b[31m\r\n\r\n",
      /control character 0x1b/,
    ],
    [
      "a trailer name that is not a token",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx y: 1\r\n\r\n",
      /invalid character 0x20 in header name/,
    ],
    [
      "a control character in a trailer value",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: \u0002\r\n\r\n",
      /control character 0x02/,
    ],
    [
      "a bad header in an interim answer",
      "HTTP/1.1 103 Early Hints\r\nx y: 1\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
      /invalid character 0x20 in header name/,
    ],
    ["a status below 100", "HTTP/1.1 099 Low\r\n\r\n", /invalid status line/],
    [
      "a bare LF in the status line",
      "HTTP/1.1 200 OK\nx-hidden: 1\r\ncontent-length: 0\r\n\r\n",
      /invalid status line/,
    ],
    [
      "whitespace after a chunk size",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n",
      /invalid chunk size/,
    ],
    ["a header line without a colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", /invalid header line/],
    ["obsolete line folding", "HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n", /invalid header line/],
    ["a space before the colon", "HTTP/1.1 200 OK\r\nx : a\r\n\r\n", /space before colon/],
    [
      "a negative Content-Length",
      "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
      /invalid Content-Length/,
    ],
    [
      "conflicting Content-Lengths",
      "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
      /conflicting Content-Length/,
    ],
    [
      "a bad chunk size",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
      /invalid chunk size/,
    ],
    [
      "chunk data without its CRLF",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\naXY",
      /missing CRLF/,
    ],
    ["bytes after the response", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nab", /after the end/],
  ];
  for (const [what, text, reason] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => parse([text])).toThrow(ResponseParseError);
      expect(() => parse([text])).toThrow(reason);
    });
  }

  it("reads status lines without a reason and trims spaces and tabs around values", () => {
    for (const line of ["HTTP/1.1 204", "HTTP/1.1 204 ", "HTTP/1.0 204 No Content"]) {
      expect(parse([`${line}\r\n\r\n`]).seen.status).toBe(204);
    }
    const { seen } = parse([
      "HTTP/1.1 200 OK\r\nX-A:\t a b \t\r\nX-Empty:\r\nContent-Length:  2 \r\n\r\nok",
    ]);
    expect(seen.headers).toEqual(["x-a", "a b", "x-empty", "", "content-length", "2"]);
    expect(seen.body).toBe("ok");
  });

  it("accepts HTAB, obs-text and every token character, and a reason phrase with any byte but CR and LF", () => {
    const { seen } = parse([
      "HTTP/1.1 200 \u0001\u00e9\tok\r\n!#$%&'*+-.^_`|~09azAZ: a\tb\u0080\u00ff\r\ncontent-length: 0\r\n\r\n",
    ]);
    expect(seen.status).toBe(200);
    expect(seen.headers).toEqual([
      "!#$%&'*+-.^_`|~09azaz",
      "a\tb\u0080\u00ff",
      "content-length",
      "0",
    ]);
  });

  it("drops Content-Length when Transfer-Encoding is there, whatever the coding", () => {
    const chunked = parse([
      "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nx: y\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    ]);
    expect(chunked.seen.headers).toEqual(["x", "y", "transfer-encoding", "chunked"]);
    expect(chunked.seen.body).toBe("hi");
    // RFC 9112 §6.3: without chunked last, the body runs until the connection closes.
    const gzip = parse([
      "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ncontent-length: 2\r\n\r\nabc",
      "def",
    ]);
    expect(gzip.seen.headers).toEqual(["transfer-encoding", "gzip"]);
    expect(gzip.parser.readsUntilClose).toBe(true);
    gzip.parser.closed();
    expect(gzip.seen.body).toBe("abcdef");
    expect(gzip.parser.keepAlive).toBe(false);
  });

  it("reads repeated Content-Length lines of one value as one", () => {
    const { seen, parser } = parse([
      "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: y\r\nContent-Length: 2\r\n\r\nok",
    ]);
    expect(seen.headers).toEqual(["content-length", "2", "x", "y"]);
    expect(seen.body).toBe("ok");
    expect(parser.keepAlive).toBe(true);
  });

  it("takes whitespace before a chunk extension", () => {
    const { seen } = parse([
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2 \t;a=b\r\nhi\r\n0\r\n\r\n",
    ]);
    expect(seen.body).toBe("hi");
    expect(seen.ended).toBe(true);
  });

  it("refuses a response head larger than 64 KiB", () => {
    const text = `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(70_000)}`;
    expect(() => parse([text.slice(0, 40_000), text.slice(40_000)])).toThrow(/response head over/);
  });

  it("tells a connection closed before any answer from one closed mid-response", () => {
    const none = new ResponseParser();
    none.expect("GET", { onHead() {}, onBody: () => true, onEnd() {} });
    expect(() => none.closed()).toThrow("the upstream closed the connection without answering");
    const half = parse(["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"]).parser;
    expect(() => half.closed()).toThrow("in the middle of the response");
  });
});
