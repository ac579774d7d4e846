// The net engine's request head parser (gateway/server/net/request-head.ts) branch by
// branch: the request line (method, the four target forms, single spaces, versions), the
// field lines, the body's framing (Content-Length, Transfer-Encoding) and what the head
// says about the connection (keep-alive, Expect, Upgrade). Every refusal is asserted with
// its status: 400 for what can be read more than one way, 505 for another HTTP version.

import { describe, expect, it } from "vitest";
import {
  Framing,
  parseRequestHead,
  type RequestHead,
  RequestHeadError,
} from "../../gateway/server/net/request-head.js";

/**
 * Parses `head` (the request line and field lines, without the blank line) the way the
 * connection does: `bytes` runs on past the head through its CRLFCRLF and a body, `text`
 * is the head alone.
 */
function parse(head: string): RequestHead {
  const bytes = Buffer.from(`${head}\r\n\r\nBODY`, "latin1");
  return parseRequestHead(bytes, head);
}

/** Also parses with `bytes` ending exactly where the head does (no blank line after it). */
function parseExact(head: string): RequestHead {
  return parseRequestHead(Buffer.from(head, "latin1"), head);
}

/** The error `head` is refused with. */
function refusal(head: string): RequestHeadError {
  let thrown: unknown;
  for (const p of [parse, parseExact]) {
    try {
      p(head);
    } catch (e) {
      thrown = e;
      continue;
    }
    throw new Error(`accepted ${JSON.stringify(head)}`);
  }
  expect(thrown).toBeInstanceOf(RequestHeadError);
  return thrown as RequestHeadError;
}

const status = (head: string) => refusal(head).status;

/** A request line and headers as one head. */
const req = (line: string, ...fields: string[]) => [line, ...fields].join("\r\n");
const get = (...fields: string[]) => req("GET / HTTP/1.1", ...fields);
const get10 = (...fields: string[]) => req("GET / HTTP/1.0", ...fields);

describe("parseRequestHead: the request line", () => {
  it("reads method, target and version, with no field lines", () => {
    const h = parse("GET /index.html?q=1 HTTP/1.1");
    expect(h).toEqual({
      method: "GET",
      target: "/index.html?q=1",
      version: "1.1",
      headers: [],
      framing: Framing.None,
      length: 0,
      keepAlive: true,
      expectsContinue: false,
      upgrade: "",
    });
    expect(parseExact("GET /index.html?q=1 HTTP/1.1")).toEqual(h);
  });

  it("takes any token as a method, case-sensitive (RFC 9110 §9.1)", () => {
    for (const m of ["GET", "POST", "M-SEARCH", "get", "FOO", "X_Y", "!#$%&'*+-.^_`|~09azAZ"]) {
      expect(parse(`${m} / HTTP/1.1`).method).toBe(m);
    }
  });

  it("refuses a method that is not a token, or none", () => {
    for (const m of ["", "G@T", "GE(T", "G\x00T", "G\x7fT", "G\xe9T", "GE,T", 'G"T', "G/T"]) {
      expect(status(`${m} / HTTP/1.1`), JSON.stringify(m)).toBe(400);
    }
  });

  it("reads origin-form and absolute-form targets with any visible ASCII (RFC 9112 §3.2)", () => {
    for (const t of [
      "/",
      "//double",
      "/a/b/c?x=1&y=%20#frag",
      '/"<>\\^`{|}',
      "/~!$&'()*+,;=:@",
      "http://example.com",
      "http://example.com:8080/a?b",
      "HTTPS://EXAMPLE.COM/",
      "http://user:pw@host/x",
      "http://[::1]:80/",
      "ftp://host/file",
      "h2c://host/",
    ]) {
      expect(parse(`GET ${t} HTTP/1.1`).target).toBe(t);
    }
  });

  it("reads the authority-form for CONNECT (the router checks host:port)", () => {
    const h = parse("CONNECT example.com:443 HTTP/1.1");
    expect(h.method).toBe("CONNECT");
    expect(h.target).toBe("example.com:443");
    expect(parse("CONNECT [::1]:443 HTTP/1.1").target).toBe("[::1]:443");
    // CONNECT's target is not a path: what it names is connect-target.ts's to check.
    expect(parse("CONNECT /odd HTTP/1.1").target).toBe("/odd");
  });

  it("reads the asterisk-form for OPTIONS (RFC 9112 §3.2.4)", () => {
    expect(parse("OPTIONS * HTTP/1.1").target).toBe("*");
  });

  it("refuses a target in no form the method allows (RFC 9112 §3.2)", () => {
    for (const line of [
      // authority-form is only for CONNECT (§3.2.3)
      "GET example.com:80 HTTP/1.1",
      "POST localhost:8080 HTTP/1.1",
      // a relative reference is no request-target at all
      "GET a/b HTTP/1.1",
      "GET ?q HTTP/1.1",
      "GET http:relative HTTP/1.1",
      "GET http:/one-slash HTTP/1.1",
      "GET 1http://digit-first/ HTTP/1.1",
      // asterisk-form is only for OPTIONS (§3.2.4), and only a lone "*"
      "GET * HTTP/1.1",
      "POST * HTTP/1.1",
      "OPTIONS *x HTTP/1.1",
      "OPTIONS */ HTTP/1.1",
    ]) {
      expect(status(line), line).toBe(400);
    }
  });

  it("refuses target bytes that are not visible ASCII, and an empty target", () => {
    for (const c of ["\x00", "\x01", "\t", "\x7f", "\x80", "\xe9", "\xff", "\r", "\n"]) {
      expect(status(`GET /a${c}b HTTP/1.1`), JSON.stringify(c)).toBe(400);
    }
    expect(status("GET  HTTP/1.1")).toBe(400);
  });

  it("refuses anything but single spaces between the three parts (RFC 9112 §3)", () => {
    for (const line of [
      "GET  / HTTP/1.1",
      "GET /  HTTP/1.1",
      "GET\t/ HTTP/1.1",
      "GET /\tHTTP/1.1",
      "GET / HTTP/1.1 ",
      " GET / HTTP/1.1",
      "GET / HTTP/1.1\t",
      "GET /",
      "GET / ",
      "GET",
      "",
      "GET / HTTP/1.1 extra",
    ]) {
      expect(status(line), JSON.stringify(line)).toBe(400);
    }
  });

  it("reads HTTP/1.1 and HTTP/1.0", () => {
    expect(parse("GET / HTTP/1.1").version).toBe("1.1");
    expect(parse("GET / HTTP/1.0").version).toBe("1.0");
  });

  it("answers 505 to a well-formed version other than 1.0 and 1.1", () => {
    for (const v of ["0.9", "1.2", "1.9", "2.0", "3.0", "9.9", "0.0"]) {
      const e = refusal(`GET / HTTP/${v}`);
      expect(e.status, v).toBe(505);
      expect(e.message).toContain(`HTTP/${v}`);
    }
  });

  it("answers 400 to a malformed version", () => {
    for (const v of [
      "http/1.1",
      "HTTP/1",
      "HTTP/11",
      "HTTP/1.10",
      "HTTP/1.x",
      "HTTP/x.1",
      "HTTP/1,1",
      "HTTP 1.1",
      "HTTP/1.1/",
      "HTTP/ 1.1",
      "HTTPS/1.1",
      "HTTP/10.1",
      "",
    ]) {
      expect(status(`GET / ${v}`), v).toBe(400);
    }
  });

  it("refuses a bare LF or CR in the request line", () => {
    expect(status("GET / HTTP/1.1\nHost: a")).toBe(400);
    expect(status("GET / HTTP/1.1\rHost: a")).toBe(400);
    expect(status("GET /\n HTTP/1.1")).toBe(400);
  });

  it("shows the start of a bad request line in the message, cut at 80 characters", () => {
    const e = refusal(`GET /${"x".repeat(200)} HTTP/7`);
    expect(e.message).toMatch(/^invalid request line "GET \/x+"$/);
    expect(e.message.length).toBeLessThan(110);
  });
});

describe("parseRequestHead: field lines", () => {
  it("lower-cases names, trims values, keeps order and repeats", () => {
    const h = parse(
      get("Host: example.com", "X-A:  one \t", "x-a:two", "Empty:", "Tab:\tv\tw\t", "OBS: caf\xe9"),
    );
    expect(h.headers).toEqual([
      "host",
      "example.com",
      "x-a",
      "one",
      "x-a",
      "two",
      "empty",
      "",
      "tab",
      "v\tw",
      "obs",
      "caf\xe9",
    ]);
  });

  it("takes any token as a field name", () => {
    expect(parse(get("!#$%&'*+-.^_`|~09azAZ: v")).headers).toEqual(["!#$%&'*+-.^_`|~09azaz", "v"]);
  });

  it("refuses field lines outside the grammar (RFC 9110 §5, RFC 9112 §5)", () => {
    for (const [line, why] of [
      ["X-A : b", /space before colon/],
      ["X-A\t: b", /space before colon/],
      ["X A: b", /invalid character 0x20/],
      ["X@A: b", /invalid character 0x40/],
      ["X\xe9: b", /invalid character 0xe9/],
      [": b", /invalid header line/],
      ["no colon", /invalid header line/],
      [" X-A: b", /invalid header line/],
      ["X-A: b\x00c", /NUL/],
      ["X-A: b\x01c", /control character 0x01/],
      ["X-A: b\x7fc", /control character 0x7f/],
      ["X-A: b\x1fc", /control character 0x1f/],
      ["X-A: b\rc", /bare CR or LF/],
      ["X-A: b\nc", /bare CR or LF/],
    ] as const) {
      const e = refusal(get("Host: a", line));
      expect(e.status, line).toBe(400);
      expect(e.message, line).toMatch(why);
    }
  });

  it("refuses obs-fold (RFC 9112 §5.2)", () => {
    expect(status(get("X-A: b", " c"))).toBe(400);
    expect(status(get("X-A: b", "\tc"))).toBe(400);
  });

  it("refuses a field line ended by a bare CR before the blank line", () => {
    // "X: y\r" then CRLFCRLF: the CR is the value's last byte, not part of a line end.
    const text = "GET / HTTP/1.1\r\nX: y\r";
    const bytes = Buffer.from(`${text}\r\n\r\n`, "latin1");
    expect(() => parseRequestHead(bytes, text)).toThrow(RequestHeadError);
  });
});

describe("parseRequestHead: Content-Length (RFC 9112 §6.3)", () => {
  it("frames the body by a decimal length", () => {
    const h = parse(get("Content-Length: 42"));
    expect(h.framing).toBe(Framing.Length);
    expect(h.length).toBe(42);
    expect(parse(get("content-length:   007  ")).length).toBe(7);
    expect(parse(get("Content-Length: 999999999999999")).length).toBe(999999999999999);
  });

  it("reads a zero length as no body", () => {
    const h = parse(get("Content-Length: 0"));
    expect(h.framing).toBe(Framing.None);
    expect(h.length).toBe(0);
    expect(h.headers).toEqual(["content-length", "0"]);
  });

  it("refuses a repeat, equal or not", () => {
    for (const second of ["5", "6", "05"]) {
      const e = refusal(get("Content-Length: 5", "Host: a", `Content-Length: ${second}`));
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/more than one Content-Length/);
    }
  });

  it("refuses a list, a sign, junk, an empty value and 16 digits or more", () => {
    for (const v of [
      "5, 5",
      "5,5",
      "5 5",
      "+5",
      "-5",
      "0x5",
      "5a",
      "5.0",
      "1e3",
      "",
      "\xb5",
      "0000000000000005",
      "1234567890123456",
      "18446744073709551616",
    ]) {
      const e = refusal(get(`Content-Length: ${v}`));
      expect(e.status, v).toBe(400);
      expect(e.message).toMatch(/invalid Content-Length/);
    }
  });
});

describe("parseRequestHead: Transfer-Encoding (RFC 9112 §6.1)", () => {
  it("frames the body as chunked for chunked alone, in any case", () => {
    for (const v of ["chunked", "Chunked", "CHUNKED", "  chunked\t"]) {
      const h = parse(get(`Transfer-Encoding: ${v}`));
      expect(h.framing, v).toBe(Framing.Chunked);
      expect(h.length).toBe(0);
    }
  });

  it("refuses other codings, chunked twice or not last, and an empty value", () => {
    for (const fields of [
      ["Transfer-Encoding: gzip"],
      ["Transfer-Encoding: identity"],
      ["Transfer-Encoding: gzip, chunked"],
      ["Transfer-Encoding: chunked, gzip"],
      ["Transfer-Encoding: chunked, chunked"],
      ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
      ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
      ["Transfer-Encoding: chunked;q=1"],
      ["Transfer-Encoding:"],
      ["Transfer-Encoding: chunked", "Transfer-Encoding:"],
    ]) {
      const e = refusal(get(...fields));
      expect(e.status, fields.join(" | ")).toBe(400);
      expect(e.message).toMatch(/unsupported Transfer-Encoding/);
    }
  });

  it("refuses Transfer-Encoding in an HTTP/1.0 request", () => {
    const e = refusal(get10("Transfer-Encoding: chunked"));
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/HTTP\/1\.0/);
  });

  it("refuses Transfer-Encoding with Content-Length, in either order", () => {
    for (const fields of [
      ["Transfer-Encoding: chunked", "Content-Length: 5"],
      ["Content-Length: 5", "Transfer-Encoding: chunked"],
      ["Content-Length: 0", "Transfer-Encoding: chunked"],
    ]) {
      const e = refusal(get(...fields));
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/both Content-Length and Transfer-Encoding/);
    }
  });

  it("reads no body without either field", () => {
    const h = parse(req("POST / HTTP/1.1", "Host: a"));
    expect(h.framing).toBe(Framing.None);
    expect(h.length).toBe(0);
  });

  it("reads fields whose names only look like the framing ones as others", () => {
    const h = parse(get("Content-Lengths: x", "X-Transfer-Encoding: gzip", "Content-Type: a"));
    expect(h.framing).toBe(Framing.None);
  });
});

describe("parseRequestHead: the connection (RFC 9112 §9.3)", () => {
  it("keeps an HTTP/1.1 connection open unless the request says close", () => {
    expect(parse(get()).keepAlive).toBe(true);
    expect(parse(get("Connection: keep-alive")).keepAlive).toBe(true);
    expect(parse(get("Connection: closed")).keepAlive).toBe(true);
    expect(parse(get("Connection: x-close, close-y")).keepAlive).toBe(true);
    for (const v of ["close", "Close", "CLOSE", "foo, close", "close,foo", "a ,  close  , b"]) {
      expect(parse(get(`Connection: ${v}`)).keepAlive, v).toBe(false);
    }
    expect(parse(get("Connection: foo", "Connection: close")).keepAlive).toBe(false);
  });

  it("closes an HTTP/1.0 connection unless the request says keep-alive", () => {
    expect(parse(get10()).keepAlive).toBe(false);
    expect(parse(get10("Connection: close")).keepAlive).toBe(false);
    expect(parse(get10("Connection: keep-alives")).keepAlive).toBe(false);
    for (const v of ["keep-alive", "Keep-Alive", "foo, keep-alive", "keep-alive,  foo"]) {
      expect(parse(get10(`Connection: ${v}`)).keepAlive, v).toBe(true);
    }
    expect(parse(get10("Connection: foo", "Connection: keep-alive")).keepAlive).toBe(true);
  });

  it("expects 100-continue only on HTTP/1.1 (RFC 9110 §10.1.1)", () => {
    expect(parse(get("Expect: 100-continue")).expectsContinue).toBe(true);
    expect(parse(get("Expect: 100-Continue")).expectsContinue).toBe(true);
    expect(parse(get10("Expect: 100-continue")).expectsContinue).toBe(false);
    expect(parse(get("Expect: 200-ok")).expectsContinue).toBe(false);
    expect(parse(get()).expectsContinue).toBe(false);
  });

  it("asks for an upgrade only with the upgrade token in Connection (RFC 9110 §7.8)", () => {
    expect(parse(get("Upgrade: websocket", "Connection: Upgrade")).upgrade).toBe("websocket");
    expect(parse(get("Connection: keep-alive, upgrade", "Upgrade: h2c")).upgrade).toBe("h2c");
    expect(parse(get("Connection: foo", "Connection: upgrade", "Upgrade: ws")).upgrade).toBe("ws");
    expect(parse(get("Upgrade: websocket")).upgrade).toBe("");
    expect(parse(get("Upgrade: websocket", "Connection: upgraded")).upgrade).toBe("");
    expect(parse(get("Connection: upgrade")).upgrade).toBe("");
    expect(parse(get("Connection: upgrade", "Upgrade:")).upgrade).toBe("");
  });

  it("ignores Upgrade in an HTTP/1.0 request (RFC 9110 §7.8)", () => {
    const h = parse(get10("Upgrade: websocket", "Connection: upgrade, keep-alive"));
    expect(h.upgrade).toBe("");
    expect(h.keepAlive).toBe(true);
  });

  it("keeps a close and an upgrade apart", () => {
    const h = parse(get("Connection: upgrade, close", "Upgrade: websocket"));
    expect(h.upgrade).toBe("websocket");
    expect(h.keepAlive).toBe(false);
  });
});
