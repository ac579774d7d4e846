// The upstream response parser under a router's response limits (maxResponseKB,
// maxChunkKB): what is refused before the head is handed on, what is cut after it, and
// that responses within the limits read as before however the bytes are split.

import { describe, expect, it } from "vitest";
import {
  ResponseLimitError,
  type ResponseLimits,
  ResponseParser,
} from "../../gateway/client/http1/response-parser.js";

interface Seen {
  status?: number;
  body: string;
  trailers?: string[];
  ended: boolean;
  error?: Error;
}

const limits = (maxResponseKB?: number, maxChunkKB?: number): ResponseLimits => ({
  maxBodyBytes: maxResponseKB === undefined ? Number.POSITIVE_INFINITY : maxResponseKB * 1024,
  maxChunkBytes: maxChunkKB === undefined ? Number.POSITIVE_INFINITY : maxChunkKB * 1024,
});

function parse(chunks: string[], l: ResponseLimits, method = "GET", close = false): Seen {
  const p = new ResponseParser();
  const seen: Seen = { body: "", ended: false };
  p.expect(
    method,
    {
      onHead(status) {
        seen.status = status;
      },
      onBody(chunk) {
        seen.body += chunk.toString("latin1");
        return true;
      },
      onEnd(trailers) {
        seen.trailers = trailers;
        seen.ended = true;
      },
    },
    l,
  );
  try {
    for (const c of chunks) p.feed(Buffer.from(c, "latin1"));
    if (close) p.closed();
  } catch (e) {
    seen.error = e as Error;
  }
  return seen;
}

/** Every way to cut `text` in two, plus one byte at a time. */
function splits(text: string): string[][] {
  const out: string[][] = [[text], text.split("")];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

const lengthResponse = (n: number) =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\n\r\n${"x".repeat(n)}`;
const chunk = (n: number, c = "c") => `${n.toString(16)}\r\n${c.repeat(n)}\r\n`;
const chunked = (...sizes: number[]) =>
  `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${sizes.map((n) => chunk(n)).join("")}0\r\nX-Sum: 1\r\n\r\n`;

describe("maxResponseKB", () => {
  it("refuses a Content-Length over it before the head is handed on", () => {
    const seen = parse([lengthResponse(1025)], limits(1));
    expect(seen.status).toBeUndefined();
    expect(seen.body).toBe("");
    expect(seen.error).toBeInstanceOf(ResponseLimitError);
    expect((seen.error as ResponseLimitError).setting).toBe("maxResponseKB");
    expect(seen.error?.message).toBe(
      "is over maxResponseKB (1 KB): its Content-Length is 1025 bytes",
    );
  });

  it("passes a body of exactly the limit, and bodiless answers whatever their length", () => {
    expect(parse([lengthResponse(1024)], limits(1)).body).toHaveLength(1024);
    const head = parse(["HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n"], limits(1), "HEAD");
    expect(head).toMatchObject({ status: 200, ended: true });
    const notModified = parse(
      ["HTTP/1.1 304 Not Modified\r\nContent-Length: 99999\r\n\r\n"],
      limits(1),
    );
    expect(notModified).toMatchObject({ status: 304, ended: true });
  });

  it("cuts a chunked body at the chunk that would take it past the limit", () => {
    const seen = parse([chunked(600, 424, 1)], limits(1));
    expect(seen.status).toBe(200);
    expect(seen.body).toHaveLength(1024);
    expect(seen.ended).toBe(false);
    expect(seen.error?.message).toBe("is over maxResponseKB (1 KB): its body ran past 1024 bytes");
    expect(parse([chunked(600, 424)], limits(1))).toMatchObject({ ended: true });
  });

  it("cuts a close-delimited body once it runs past the limit", () => {
    const head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    const seen = parse([head, "a".repeat(1000), "b".repeat(100)], limits(1));
    expect(seen.body).toBe("a".repeat(1000));
    expect(seen.error).toBeInstanceOf(ResponseLimitError);
    expect(parse([head, "a".repeat(1024)], limits(1), "GET", true)).toMatchObject({ ended: true });
  });
});

describe("maxChunkKB", () => {
  it("holds a chunked head until the first chunk-size line, then reads as before however split", () => {
    const text = chunked(5, 1024, 3);
    for (const parts of splits(text)) {
      const seen = parse(parts, limits(undefined, 1));
      expect(seen.error).toBeUndefined();
      expect(seen).toMatchObject({ status: 200, ended: true, trailers: ["x-sum", "1"] });
      expect(seen.body).toHaveLength(1032);
    }
    // The head alone is not handed on yet.
    expect(
      parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"], limits(undefined, 1)).status,
    ).toBeUndefined();
    // An empty body: the head goes with the last chunk.
    expect(parse([chunked()], limits(undefined, 1))).toMatchObject({ status: 200, ended: true });
  });

  it("refuses a first chunk over the limit before the head is handed on", () => {
    const seen = parse([chunked(1025)], limits(undefined, 1));
    expect(seen.status).toBeUndefined();
    expect(seen.error).toBeInstanceOf(ResponseLimitError);
    expect((seen.error as ResponseLimitError).setting).toBe("maxChunkKB");
    expect(seen.error?.message).toBe("declares a chunk of 1025 bytes, over maxChunkKB (1 KB)");
  });

  it("cuts the body at a later chunk over the limit", () => {
    const seen = parse([chunked(10, 2048)], limits(undefined, 1));
    expect(seen.status).toBe(200);
    expect(seen.body).toBe("c".repeat(10));
    expect(seen.error?.message).toMatch(/over maxChunkKB/);
  });

  it("without limits, a chunked head is handed on at once", () => {
    expect(parse(["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"], limits()).status).toBe(
      200,
    );
  });
});
