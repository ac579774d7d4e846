// Unit tests: which responses compressionLevel compresses (Accept-Encoding, content types,
// statuses, framing), how the head is rewritten, and the response writer's handling of a
// compressed body against a scripted client (backpressure, a client leaving after the
// upstream ended, an upstream dying mid-body).

import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ForwardHandler } from "../../gateway/routing/forward.js";
import {
  acceptsGzip,
  gzipHead,
  isTextual,
  ResponseCompression,
} from "../../gateway/routing/response-compression.js";
import { responseSettings } from "../../gateway/routing/response-settings.js";
import { FakeControl, FakeExchange } from "../support/fake-exchange.js";

describe("acceptsGzip", () => {
  const ae = (v: string | undefined) => acceptsGzip(v === undefined ? [] : ["accept-encoding", v]);

  it("accepts gzip and x-gzip listed with a q above 0, in any case", () => {
    expect(ae("gzip")).toBe(true);
    expect(ae("deflate, gzip")).toBe(true);
    expect(ae("GZIP;Q=0.5")).toBe(true);
    expect(ae("x-gzip")).toBe(true);
    expect(ae("br;q=1.0, gzip;q=0.001")).toBe(true);
  });

  it("refuses no header, other codings, and q=0", () => {
    expect(ae(undefined)).toBe(false);
    expect(ae("")).toBe(false);
    expect(ae("br, deflate")).toBe(false);
    expect(ae("gzip;q=0")).toBe(false);
    expect(ae("gzip; q=0.000, br")).toBe(false);
    expect(ae("identity")).toBe(false);
  });

  it("reads * as accepting gzip unless gzip itself is refused", () => {
    expect(ae("*")).toBe(true);
    expect(ae("*;q=0.1")).toBe(true);
    expect(ae("*;q=0")).toBe(false);
    expect(ae("*, gzip;q=0")).toBe(false);
  });

  it("reads every Accept-Encoding field", () => {
    expect(acceptsGzip(["accept-encoding", "br", "accept-encoding", "gzip"])).toBe(true);
  });
});

describe("isTextual", () => {
  it("takes text/*, JSON, JavaScript, XML, +json, +xml and SVG, with parameters", () => {
    for (const t of [
      "text/html",
      "text/plain; charset=utf-8",
      "Text/CSS",
      "application/json",
      "application/javascript",
      "application/xml",
      "application/problem+json",
      "application/atom+xml; charset=utf-8",
      "image/svg+xml",
    ])
      expect(isTextual(t), t).toBe(true);
  });

  it("leaves binary types alone", () => {
    for (const t of ["image/png", "application/octet-stream", "application/zip", "video/mp4", ""])
      expect(isTextual(t), t).toBe(false);
  });
});

describe("gzipHead", () => {
  it("adds content-encoding and Vary, weakens a strong ETag and drops Accept-Ranges", () => {
    const h = [
      "content-type",
      "text/html",
      "etag",
      '"abc"',
      "accept-ranges",
      "bytes",
      "via",
      "1.1 lintel",
    ];
    gzipHead(h);
    expect(h).toEqual([
      "content-type",
      "text/html",
      "etag",
      'W/"abc"',
      "via",
      "1.1 lintel",
      "vary",
      "accept-encoding",
      "content-encoding",
      "gzip",
    ]);
  });

  it("appends to an existing Vary once, and leaves Vary: * and a weak ETag as they are", () => {
    const a = ["vary", "origin", "etag", 'W/"x"'];
    gzipHead(a);
    expect(a).toEqual([
      "vary",
      "origin, accept-encoding",
      "etag",
      'W/"x"',
      "content-encoding",
      "gzip",
    ]);
    const b = ["vary", "Accept-Encoding"];
    gzipHead(b);
    expect(b).toEqual(["vary", "Accept-Encoding", "content-encoding", "gzip"]);
    const c = ["vary", "*"];
    gzipHead(c);
    expect(c).toEqual(["vary", "*", "content-encoding", "gzip"]);
  });
});

const POLICY = { clearContext: false, engineWritesDate: false };
const GZIP_CLIENT = ["host", "svc", "accept-encoding", "gzip"];

function writer(ex: FakeExchange, compression: ResponseCompression | undefined) {
  const done: ForwardHandler<undefined>[] = [];
  const h = new ForwardHandler(
    ex,
    POLICY,
    () => {
      throw new Error("no error response expected");
    },
    (x) => done.push(x),
    undefined,
    compression,
  );
  return { h, done };
}

/** Resolves after zlib (on the thread pool) has had time to answer. */
const settle = () => new Promise((r) => setTimeout(r, 30));

/** Waits for zlib (on the thread pool, slower on a busy machine) to get `cond` true, up to 2 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let waited = 0; !cond() && waited < 2000; waited += 10)
    await new Promise((r) => setTimeout(r, 10));
}

describe("ResponseCompression.applies", () => {
  const textOnly = new ResponseCompression(-1);
  const all = new ResponseCompression(6);
  const ex = (method = "GET", headers = GZIP_CLIENT) => new FakeExchange(method, headers);
  const html = ["content-type", "text/html"];

  it("compresses chunked bodies and declared bodies of 1 KiB or more", () => {
    expect(textOnly.applies(ex(), 200, html, undefined)).toBe(true);
    expect(textOnly.applies(ex(), 200, html, 1024)).toBe(true);
    expect(textOnly.applies(ex(), 200, html, 1023)).toBe(false);
    expect(textOnly.applies(ex(), 200, html, 0)).toBe(false);
  });

  it("never for HEAD, 1xx, 204, 206, 304, encoded or no-transform responses", () => {
    expect(all.applies(ex("HEAD"), 200, html, undefined)).toBe(false);
    for (const s of [101, 204, 206, 304]) expect(all.applies(ex(), s, html, undefined)).toBe(false);
    expect(all.applies(ex(), 200, [...html, "content-encoding", "br"], undefined)).toBe(false);
    expect(all.applies(ex(), 200, [...html, "cache-control", "public, No-Transform"], 5000)).toBe(
      false,
    );
    expect(all.applies(ex(), 200, [...html, "cache-control", "no-cache"], 5000)).toBe(true);
    expect(all.applies(ex(), 404, html, 5000)).toBe(true);
  });

  it("under -1 only textual types (a response without a type is left alone); under 1..9 any", () => {
    const png = ["content-type", "image/png"];
    expect(textOnly.applies(ex(), 200, png, 5000)).toBe(false);
    expect(textOnly.applies(ex(), 200, [], 5000)).toBe(false);
    expect(all.applies(ex(), 200, png, 5000)).toBe(true);
    expect(all.applies(ex(), 200, [], 5000)).toBe(true);
  });

  it("only for clients that accept gzip", () => {
    expect(all.applies(ex("GET", ["accept-encoding", "br"]), 200, html, 5000)).toBe(false);
    expect(all.applies(ex("GET", []), 200, html, 5000)).toBe(false);
  });

  it("is off (no object at all) for level 0 or unset, and refuses levels out of range", () => {
    expect(responseSettings({}).compression).toBeUndefined();
    expect(responseSettings({ compressionLevel: 0 }).compression).toBeUndefined();
    expect(responseSettings({ compressionLevel: 9 }).compression).toBeInstanceOf(
      ResponseCompression,
    );
    expect(responseSettings({}).limits).toBeUndefined();
    expect(responseSettings({ maxChunkKB: 4 }).limits).toEqual({
      maxBodyBytes: Number.POSITIVE_INFINITY,
      maxChunkBytes: 4096,
    });
    expect(() => new ResponseCompression(10)).toThrow(/compressionLevel 10/);
  });
});

describe("ForwardHandler with compression", () => {
  it("writes the head without a length, then the gzip stream, and ends after zlib did", async () => {
    const ex = new FakeExchange("GET", GZIP_CLIENT);
    const { h, done } = writer(ex, new ResponseCompression(-1));
    h.onStart(new FakeControl());
    h.onHead(200, ["content-type", "text/plain", "content-length", "3000"]);
    expect(ex.head?.length).toBeUndefined();
    expect(ex.head?.headers).toContain("content-encoding");
    const body = Buffer.alloc(3000, "t");
    expect(h.onData(body.subarray(0, 1000))).toBe(true);
    h.onData(body.subarray(1000));
    h.onEnd(undefined);
    expect(done).toHaveLength(0);
    await until(() => ex.ended);
    expect(ex.ended).toBe(true);
    expect(done).toHaveLength(1);
    expect(gunzipSync(ex.bytes).equals(body)).toBe(true);
    expect(h.outcome).toEqual({ status: 200, bytes: ex.bytes.length, error: "" });
  });

  it("passes a response that does not qualify as it is", () => {
    const ex = new FakeExchange("GET", ["accept-encoding", "br"]);
    const { h, done } = writer(ex, new ResponseCompression(6));
    h.onStart(new FakeControl());
    h.onHead(200, ["content-type", "text/plain", "content-length", "5"]);
    expect(ex.head?.length).toBe(5);
    h.onData(Buffer.from("hello"));
    h.onEnd(undefined);
    expect(ex.bytes.toString()).toBe("hello");
    expect(done).toHaveLength(1);
  });

  it("pauses zlib for a slow client and resumes it when the client drains", async () => {
    const ex = new FakeExchange("GET", GZIP_CLIENT);
    const { h, done } = writer(ex, new ResponseCompression(1));
    h.onStart(new FakeControl());
    h.onHead(200, ["content-type", "text/plain"]);
    ex.writable = false;
    const body = Buffer.alloc(200_000, "s");
    h.onData(body);
    h.onEnd(undefined);
    await settle();
    // One write met backpressure, and nothing more went out until the client drained.
    const before = ex.written.length;
    expect(before).toBe(1);
    expect(ex.ended).toBe(false);
    ex.drain();
    await settle();
    expect(ex.ended).toBe(true);
    expect(done).toHaveLength(1);
    expect(gunzipSync(ex.bytes).equals(body)).toBe(true);
  });

  it("finishes as client_closed when the client leaves after the upstream ended", async () => {
    const ex = new FakeExchange("GET", GZIP_CLIENT);
    const control = new FakeControl();
    const { h, done } = writer(ex, new ResponseCompression(1));
    h.onStart(control);
    h.onHead(200, ["content-type", "text/plain"]);
    ex.writable = false;
    h.onData(Buffer.alloc(100_000, "s"));
    h.onEnd(undefined);
    await settle();
    expect(done).toHaveLength(0);
    ex.leave();
    expect(done).toHaveLength(1);
    expect(h.outcome.error).toBe("client_closed");
    // The upstream had ended: its connection may carry another request, so it is left alone.
    expect(control.aborted).toBeUndefined();
    await settle();
    expect(ex.ended).toBe(false);
  });

  it("aborts the upstream when the client leaves mid-body", () => {
    const ex = new FakeExchange("GET", GZIP_CLIENT);
    let h!: ForwardHandler<undefined>;
    const control = new FakeControl((err) => h.onError(err));
    const w = writer(ex, new ResponseCompression(1));
    h = w.h;
    h.onStart(control);
    h.onHead(200, ["content-type", "text/plain"]);
    h.onData(Buffer.alloc(5000, "s"));
    ex.leave();
    expect(control.aborted?.message).toMatch(/client closed/);
    expect(w.done).toHaveLength(1);
    expect(h.outcome.error).toBe("client_closed");
  });

  it("cuts the client's response when the upstream dies mid-body", () => {
    const ex = new FakeExchange("GET", GZIP_CLIENT);
    const { h, done } = writer(ex, new ResponseCompression(1));
    h.onStart(new FakeControl());
    h.onHead(200, ["content-type", "text/plain"]);
    h.onData(Buffer.alloc(5000, "s"));
    h.onError(new Error("the upstream closed the connection in the middle of the response"));
    expect(ex.destroyed).toBe(true);
    expect(done).toHaveLength(1);
    expect(h.outcome.error).toBe("response_truncated");
  });

  it("resumes the upstream when zlib drains, not after the upstream ended", async () => {
    const ex = new FakeExchange("GET", GZIP_CLIENT);
    const control = new FakeControl();
    const { h } = writer(ex, new ResponseCompression(1));
    h.onStart(control);
    h.onHead(200, ["content-type", "text/plain"]);
    // More than zlib's buffer takes at once: the writer says to pause.
    expect(h.onData(Buffer.alloc(64 * 1024, "s"))).toBe(false);
    await settle();
    expect(control.resumes).toBe(1);
    h.onData(Buffer.alloc(64 * 1024, "s"));
    h.onEnd(undefined);
    await settle();
    expect(control.resumes).toBe(1);
  });
});
