// The net engine's request body decoder (gateway/server/net/body-decoder.ts): bodies by
// Content-Length and chunked (extensions, trailers), fed whole, cut at every byte, one
// byte at a time and in seeded random pieces. Whatever the cuts, the decoder must read the
// same body, end at the same byte (what it returns starts the next pipelined request) and
// refuse the same malformed bodies with the same status.

import { describe, expect, it } from "vitest";
import { BodyDecoder } from "../../gateway/server/net/body-decoder.js";
import { Framing, RequestHeadError } from "../../gateway/server/net/request-head.js";
import { seeded } from "../support/seeded.js";

/** What a decoder made of a body fed in pieces. */
type Read =
  | { readonly ok: true; readonly body: string; readonly rest: string; readonly chunks: number }
  | { readonly ok: false; readonly status: number; readonly message: string };

const MAX_TRAILER = 64;

/**
 * Feeds `pieces` as the connection does: until the decoder returns what follows the
 * body; the pieces after that are the next request's too.
 */
function decode(
  framing: Framing,
  length: number,
  pieces: readonly string[],
  maxTrailer = MAX_TRAILER,
): Read {
  let body = "";
  let chunks = 0;
  let ends = 0;
  const d = new BodyDecoder(
    framing,
    length,
    {
      onBody(chunk) {
        expect(chunk.length).toBeGreaterThan(0);
        expect(ends).toBe(0);
        body += chunk.toString("latin1");
        chunks++;
        // A view valid only during the call: spoil it to catch a decoder that keeps it.
        chunk.fill(0x23);
      },
      onBodyEnd() {
        ends++;
      },
    },
    maxTrailer,
  );
  let rest: string | undefined;
  try {
    for (const p of pieces) {
      if (rest !== undefined) {
        rest += p;
        continue;
      }
      const input = Buffer.from(p, "latin1");
      const after = d.feed(input);
      if (after !== undefined) rest = after.toString("latin1");
    }
  } catch (e) {
    if (!(e instanceof RequestHeadError)) throw e;
    expect(ends).toBe(0);
    return { ok: false, status: e.status, message: e.message };
  }
  if (rest === undefined) return { ok: false, status: 0, message: "incomplete" };
  expect(ends).toBe(1);
  expect(d.done).toBe(true);
  return { ok: true, body, rest, chunks };
}

/** Every way to cut `text` in two, one byte at a time, and seeded random pieces. */
function cuts(text: string, seed = 1, random = 60): string[][] {
  const out: string[][] = [[text], text.split("")];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  const r = seeded(seed);
  for (let n = 0; n < random; n++) {
    const at = [0, text.length];
    for (let k = Math.floor(r() * 6); k > 0; k--) at.push(Math.floor(r() * (text.length + 1)));
    at.sort((a, b) => a - b);
    const pieces: string[] = [];
    for (let i = 1; i < at.length; i++) pieces.push(text.slice(at[i - 1], at[i]));
    out.push(pieces);
  }
  return out;
}

/** The outcome without how many onBody calls it took (which depends on the cuts). */
function outcome(r: Read) {
  return r.ok ? { ok: true, body: r.body, rest: r.rest } : { ok: false, status: r.status };
}

/** Decodes `text` under every cut and asserts they all agree; returns the outcome. */
function everyCut(framing: Framing, length: number, text: string, maxTrailer = MAX_TRAILER) {
  const first = decode(framing, length, [text], maxTrailer);
  for (const pieces of cuts(text)) {
    const r = decode(framing, length, pieces, maxTrailer);
    expect(outcome(r), JSON.stringify(pieces)).toEqual(outcome(first));
  }
  return first;
}

const chunked = (text: string, maxTrailer = MAX_TRAILER) =>
  everyCut(Framing.Chunked, 0, text, maxTrailer);

const NEXT = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

describe("BodyDecoder: Content-Length", () => {
  it("reads exactly the length, and returns what follows for the next request", () => {
    const r = everyCut(Framing.Length, 11, `hello world${NEXT}`);
    expect(r).toMatchObject({ ok: true, body: "hello world", rest: NEXT });
  });

  it("returns an empty rest when the body ends with the input", () => {
    const r = decode(Framing.Length, 3, ["abc"]);
    expect(r).toMatchObject({ ok: true, body: "abc", rest: "" });
  });

  it("waits for the rest of the body across feeds", () => {
    expect(decode(Framing.Length, 5, ["ab", "cd"])).toMatchObject({ ok: false, status: 0 });
    expect(decode(Framing.Length, 5, ["ab", "cd", "e"])).toMatchObject({ ok: true, body: "abcde" });
  });

  it("passes body bytes through as they are, CR, LF and all", () => {
    const body = "\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n\x00\xff";
    const r = everyCut(Framing.Length, body.length, body + NEXT);
    expect(r).toMatchObject({ ok: true, body, rest: NEXT });
  });

  it("hands out views of the input, without copying, when the body takes all of it", () => {
    const input = Buffer.from("abcdef");
    const seen: Buffer[] = [];
    const d = new BodyDecoder(
      Framing.Length,
      10,
      { onBody: (c) => seen.push(c), onBodyEnd() {} },
      0,
    );
    expect(d.feed(input)).toBeUndefined();
    expect(seen[0]).toBe(input);
    expect(d.feed(Buffer.from("ghijXY"))?.toString()).toBe("XY");
    expect(d.done).toBe(true);
  });
});

describe("BodyDecoder: chunked", () => {
  it("reads chunks and the last chunk, and returns what follows", () => {
    const r = chunked(`5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n${NEXT}`);
    expect(r).toMatchObject({ ok: true, body: "hello world", rest: NEXT });
  });

  it("reads an empty body (the last chunk alone)", () => {
    expect(chunked("0\r\n\r\n")).toMatchObject({ ok: true, body: "", rest: "" });
    expect(chunked(`000\r\n\r\n${NEXT}`)).toMatchObject({ ok: true, body: "", rest: NEXT });
  });

  it("reads sizes in either case, with leading zeros, up to 12 hex digits", () => {
    const data = "x".repeat(0xab);
    expect(chunked(`aB\r\n${data}\r\n0\r\n\r\n`)).toMatchObject({ ok: true, body: data });
    expect(chunked(`0000000000Ab\r\n${data}\r\n0\r\n\r\n`)).toMatchObject({ ok: true, body: data });
    expect(chunked("000000000000\r\n\r\n")).toMatchObject({ ok: true, body: "" });
  });

  it("ignores chunk extensions, with whitespace before the ';' (RFC 9112 §7.1.1)", () => {
    for (const ext of [";a", ";a=b", ';a="x; y\\"z"', ";a=b;c", " ;a=b", "\t;a", " \t ;a"]) {
      const r = chunked(`3${ext}\r\nabc\r\n0${ext}\r\n\r\n${NEXT}`);
      expect(r, ext).toMatchObject({ ok: true, body: "abc", rest: NEXT });
    }
  });

  it("passes chunk data through as it is", () => {
    const data = "0\r\n\r\n\n\r\x00\xff";
    const r = chunked(`${data.length.toString(16)}\r\n${data}\r\n0\r\n\r\n${NEXT}`);
    expect(r).toMatchObject({ ok: true, body: data, rest: NEXT });
  });

  it("reads and drops trailers, and returns what follows them", () => {
    const r = chunked(`3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other:\tv \r\n\r\n${NEXT}`);
    expect(r).toMatchObject({ ok: true, body: "abc", rest: NEXT });
  });

  it("hands out each chunk's data as views, never past the chunk", () => {
    const r = decode(Framing.Chunked, 0, ["3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"]);
    expect(r).toMatchObject({ ok: true, body: "abcde", chunks: 2 });
  });

  it("refuses sizes that are not 1 to 12 hex digits", () => {
    for (const size of [
      "",
      "g",
      "-3",
      "+3",
      "0x3",
      " 3",
      "3 ",
      "3\t",
      "3 3",
      "0000000000003",
      "1000000000000",
      "\xb3",
      ";a",
    ]) {
      const r = chunked(`${size}\r\nabc\r\n0\r\n\r\n`);
      expect(r, JSON.stringify(size)).toMatchObject({ ok: false, status: 400 });
      if (!r.ok) expect(r.message).toMatch(/invalid chunk size/);
    }
  });

  it("refuses a bare LF or a bare CR in a size line", () => {
    for (const text of [
      "3\nabc\r\n0\r\n\r\n",
      "\nabc",
      "3;a\nb\r\nabc\r\n0\r\n\r\n",
      "3\r\nabc\r\n0\n\r\n",
      "3\r\nabc\r\n0;x\n\r\n",
    ]) {
      const r = chunked(text);
      expect(r, JSON.stringify(text)).toMatchObject({ ok: false, status: 400 });
      if (!r.ok) expect(r.message).toMatch(/bare LF/);
    }
    for (const text of ["3\r\r\nabc\r\n0\r\n\r\n", "3;a\rb\r\nabc\r\n0\r\n\r\n"]) {
      const r = chunked(text);
      expect(r, JSON.stringify(text)).toMatchObject({ ok: false, status: 400 });
      if (!r.ok) expect(r.message).toMatch(/bare CR/);
    }
  });

  it("refuses chunk data not followed by CRLF", () => {
    for (const text of [
      "3\r\nabcX\r\n0\r\n\r\n",
      "3\r\nabc\n0\r\n\r\n",
      "3\r\nabc\r0\r\n\r\n",
      "3\r\nabc\rX0\r\n\r\n",
      "3\r\nabc\n\r0\r\n\r\n",
      "3\r\nabc0\r\n\r\n",
      "3\r\nab\r\n0\r\n\r\n",
    ]) {
      const r = chunked(text);
      expect(r, JSON.stringify(text)).toMatchObject({ ok: false, status: 400 });
      if (!r.ok) expect(r.message).toMatch(/missing CRLF after chunk data/);
    }
  });

  it("refuses a size line over 4096 bytes, however it arrives", () => {
    const line = (n: number) => `3;${"e".repeat(n - 2)}`;
    for (const [n, ok] of [
      [4096, true],
      [4097, false],
      [6000, false],
    ] as const) {
      const text = `${line(n)}\r\nabc\r\n0\r\n\r\n`;
      // Whole, cut around the limit and the line end, and one byte at a time.
      const ways = [[text], text.split("")];
      for (const at of [4094, 4095, 4096, 4097, 4098, n, n + 1, n + 2]) {
        ways.push([text.slice(0, at), text.slice(at)]);
      }
      for (const pieces of ways) {
        const r = decode(Framing.Chunked, 0, pieces);
        const where = `${n} bytes cut ${pieces.length === 2 ? pieces[0]!.length : pieces.length}`;
        if (ok) expect(r, where).toMatchObject({ ok: true, body: "abc" });
        else expect(r, where).toMatchObject({ ok: false, status: 400 });
      }
    }
  });

  it("refuses malformed trailers as header lines are refused", () => {
    for (const trailer of [
      "X-A : b",
      " X-A: b",
      "X-A: b\r\n c",
      "X@A: b",
      ": b",
      "no colon",
      "X-A: b\x00",
      "X-A: b\x7f",
      "X-A: b\rc",
      "X-A: b\nY: c",
    ]) {
      const r = chunked(`3\r\nabc\r\n0\r\n${trailer}\r\n\r\n${NEXT}`);
      expect(r, JSON.stringify(trailer)).toMatchObject({ ok: false, status: 400 });
      if (!r.ok) expect(r.message).toMatch(/^trailer: /);
    }
  });

  it("answers 431 to trailers over the limit, however they arrive", () => {
    // The limit counts the trailer field lines, without the blank line that ends them.
    const trailers = (n: number) => `X: ${"t".repeat(n - 3)}`;
    for (const n of [MAX_TRAILER - 1, MAX_TRAILER, MAX_TRAILER + 1, MAX_TRAILER + 3, 200]) {
      const text = `3\r\nabc\r\n0\r\n${trailers(n)}\r\n\r\n${NEXT}`;
      const r = chunked(text);
      if (n <= MAX_TRAILER) expect(r, `${n}`).toMatchObject({ ok: true, body: "abc", rest: NEXT });
      else expect(r, `${n}`).toMatchObject({ ok: false, status: 431 });
    }
  });

  it("answers 431 to an endless trailer section, before it ends", () => {
    const r = decode(Framing.Chunked, 0, ["3\r\nabc\r\n0\r\n", "X: y\r\n".repeat(20)]);
    expect(r).toMatchObject({ ok: false, status: 431 });
  });

  it("waits for the rest of a chunked body across feeds", () => {
    for (const text of [
      "3\r\nab",
      "3\r\nabc",
      "3\r\nabc\r",
      "3\r\nabc\r\n0\r\n",
      "0\r\nX: y\r\n",
    ]) {
      expect(decode(Framing.Chunked, 0, [text]), text).toMatchObject({ ok: false, status: 0 });
    }
  });

  it("returns the input as it is when fed after the end", () => {
    const d = new BodyDecoder(Framing.Chunked, 0, { onBody() {}, onBodyEnd() {} }, 64);
    expect(d.feed(Buffer.from("0\r\n\r\n"))?.length).toBe(0);
    expect(d.feed(Buffer.from("more"))?.toString()).toBe("more");
  });

  it("reads seeded random chunked bodies like a reference decoder, however cut", () => {
    const r = seeded(99);
    for (let n = 0; n < 300; n++) {
      let text = "";
      let body = "";
      for (let k = Math.floor(r() * 4); k > 0; k--) {
        let data = "";
        for (let m = 1 + Math.floor(r() * 30); m > 0; m--)
          data += String.fromCharCode(Math.floor(r() * 256));
        let size = data.length.toString(16);
        if (r() < 0.3) size = size.toUpperCase();
        if (r() < 0.2) size = `00${size}`;
        const ext = r() < 0.2 ? [";a=b", " ;x", ';q="v"'][Math.floor(r() * 3)]! : "";
        text += `${size}${ext}\r\n${data}\r\n`;
        body += data;
      }
      text += r() < 0.3 ? "0\r\nX-T: 1\r\n\r\n" : "0\r\n\r\n";
      const after = r() < 0.5 ? NEXT : "";
      const at = [0, text.length + after.length];
      for (let k = Math.floor(r() * 5); k > 0; k--) at.push(Math.floor(r() * at[1]!));
      at.sort((a, b) => a - b);
      const whole = text + after;
      const pieces: string[] = [];
      for (let i = 1; i < at.length; i++) pieces.push(whole.slice(at[i - 1], at[i]));
      expect(decode(Framing.Chunked, 0, pieces), JSON.stringify(pieces)).toMatchObject({
        ok: true,
        body,
        rest: after,
      });
    }
  });
});
