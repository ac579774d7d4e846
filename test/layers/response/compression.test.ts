// Unit tests of the `compression` layer and the ResponseCompression it configures: the
// encoding chosen by Accept-Encoding (q-values, `*`, identity, the server's order on a
// tie), content-type patterns, what is never compressed (ranges, small bodies, encoded
// bodies), the head as rewritten, brotli through the response writer (flushed per batch,
// counted in metrics), and the layer's config.

import { brotliDecompressSync, constants, gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  CompressionLayer,
  compressionLayer,
} from "../../../gateway/layers/response/compression.js";
import { ForwardHandler } from "../../../gateway/routing/forward.js";
import {
  CompressionStats,
  ContentTypes,
  chooseEncoding,
  contentTypeProblem,
  type Encoding,
  ResponseCompression,
  WHOLE_BODY_MAX_BYTES,
} from "../../../gateway/routing/response-compression.js";
import { Registry } from "../../../gateway/telemetry/registry.js";
import { arriving, decodeLayers, FakeControl, FakeExchange, layerContext, until } from "./fakes.js";

describe("chooseEncoding", () => {
  const choose = (ae: string | string[] | undefined, offered: Encoding[] = ["br", "gzip"]) =>
    chooseEncoding(
      ae === undefined ? [] : [ae].flat().flatMap((v) => ["accept-encoding", v]),
      offered,
    );

  it("takes the server's first encoding when the client's q-values tie", () => {
    expect(choose("gzip, deflate, br")).toBe("br");
    expect(choose("gzip, deflate, br", ["gzip", "br"])).toBe("gzip");
    expect(choose("br;q=0.5, gzip;q=0.5")).toBe("br");
  });

  it("takes the client's highest q above 0", () => {
    expect(choose("gzip;q=1.0, br;q=0.5")).toBe("gzip");
    expect(choose("br;q=0, gzip")).toBe("gzip");
    expect(choose("BR;Q=0.9, GZIP;Q=0.8")).toBe("br");
    expect(choose("x-gzip")).toBe("gzip");
    expect(choose("gzip")).toBe("gzip");
    expect(choose("br", ["gzip"])).toBeUndefined();
  });

  it("reads * for the encodings not named, and refuses what q=0 refuses", () => {
    expect(choose("*")).toBe("br");
    expect(choose("*, br;q=0")).toBe("gzip");
    expect(choose("*;q=0.5, gzip;q=0.8")).toBe("gzip");
    expect(choose("*;q=0")).toBeUndefined();
    expect(choose("br;q=0, gzip;q=0")).toBeUndefined();
    expect(choose("*, br;q=0, gzip;q=0.000")).toBeUndefined();
  });

  it("sends the body as it is with no header, nothing it makes, or identity preferred", () => {
    expect(choose(undefined)).toBeUndefined();
    expect(choose("")).toBeUndefined();
    expect(choose("identity")).toBeUndefined();
    expect(choose("deflate, compress")).toBeUndefined();
    expect(choose("identity;q=1, gzip;q=0.5")).toBeUndefined();
    expect(choose("identity;q=0.5, gzip")).toBe("gzip");
  });

  it("reads every Accept-Encoding field", () => {
    expect(choose(["gzip;q=0.5", "br"])).toBe("br");
    expect(choose(["br;q=0", "gzip"])).toBe("gzip");
  });
});

describe("ContentTypes", () => {
  it("matches exact types, type/*, suffixes and */*, ignoring parameters and case", () => {
    const t = new ContentTypes(["text/*", "application/json", "application/*+json", "*/*+xml"]);
    for (const yes of [
      "text/html",
      "Text/CSS; charset=utf-8",
      "application/json",
      "application/problem+json",
      "image/svg+xml",
      "application/atom+xml",
    ])
      expect(t.matches(yes), yes).toBe(true);
    for (const no of [
      "application/javascript",
      "application/jsonx",
      "image/png",
      "application/+json",
      "textual/html",
      "",
      undefined,
    ])
      expect(t.matches(no), String(no)).toBe(false);
    expect(new ContentTypes(["*/*"]).matches(undefined)).toBe(true);
    expect(new ContentTypes(["*/*"]).matches("image/png")).toBe(true);
  });

  it("refuses what is not a pattern", () => {
    for (const ok of ["text/html", "TEXT/*", "application/*+json", "*/*+xml", "*/*"])
      expect(contentTypeProblem(ok), ok).toBeUndefined();
    for (const bad of ["json", "*/json", "text/", "text/*+", "a b/c", "*/*+*", "te*t/html"])
      expect(contentTypeProblem(bad), bad).toMatch(/expected a content type/);
    expect(() => new ContentTypes(["json"])).toThrow(/expected a content type/);
  });
});

/** A layer-style ResponseCompression: br then gzip, textual types, 1 KiB. */
function layerCompression(
  over: Partial<ConstructorParameters<typeof ResponseCompression>[0] & object> = {},
) {
  return new ResponseCompression({
    encodings: ["br", "gzip"],
    contentTypes: ["text/*", "application/json"],
    minBytes: 1024,
    gzipLevel: 6,
    brotliQuality: 4,
    ...over,
  });
}

const BOTH = ["host", "svc", "accept-encoding", "gzip, br"];
const JSON_HEAD = ["content-type", "application/json", "etag", '"v1"', "accept-ranges", "bytes"];
const noOwner = { compressorDrained() {}, compressedSent() {}, compressedEnded() {} };

describe("ResponseCompression with options", () => {
  it("rewrites the head for the encoding chosen", () => {
    const c = layerCompression();
    const head = [...JSON_HEAD];
    const body = c.begin(new FakeExchange("GET", BOTH), 200, head, 5000, noOwner);
    expect(body).toBeDefined();
    body?.destroy();
    expect(head).toEqual([
      "content-type",
      "application/json",
      "etag",
      'W/"v1"',
      "vary",
      "accept-encoding",
      "content-encoding",
      "br",
    ]);
  });

  it("never compresses for a Range request, but says the response varies", () => {
    const c = layerCompression();
    const head = [...JSON_HEAD];
    const ex = new FakeExchange("GET", [...BOTH, "range", "bytes=0-99"]);
    expect(c.applies(ex, 200, head, 5000)).toBe(false);
    expect(c.begin(ex, 200, head, 5000, noOwner)).toBeUndefined();
    expect(head).toEqual([...JSON_HEAD, "vary", "accept-encoding"]);
    // A 206 (or any Content-Range) is not even eligible: its head stays as it is.
    const partial = [...JSON_HEAD, "content-range", "bytes 0-99/5000"];
    expect(c.begin(new FakeExchange("GET", BOTH), 206, partial, 100, noOwner)).toBeUndefined();
    expect(partial).toEqual([...JSON_HEAD, "content-range", "bytes 0-99/5000"]);
  });

  it("adds Vary to an eligible response the client did not accept, not to an ineligible one", () => {
    const c = layerCompression();
    const plain = [...JSON_HEAD];
    expect(c.begin(new FakeExchange("GET", ["host", "svc"]), 200, plain, 5000, noOwner)).toBe(
      undefined,
    );
    expect(plain).toEqual([...JSON_HEAD, "vary", "accept-encoding"]);
    const png = ["content-type", "image/png"];
    expect(c.begin(new FakeExchange("GET", BOTH), 200, png, 5000, noOwner)).toBeUndefined();
    expect(png).toEqual(["content-type", "image/png"]);
  });

  it("compresses bodies from minBytes on, and unknown lengths", () => {
    const c = layerCompression({ minBytes: 100 });
    const ex = new FakeExchange("GET", BOTH);
    expect(c.applies(ex, 200, JSON_HEAD, 99)).toBe(false);
    expect(c.applies(ex, 200, JSON_HEAD, 100)).toBe(true);
    expect(c.applies(ex, 200, JSON_HEAD, undefined)).toBe(true);
    expect(layerCompression({ minBytes: 0 }).applies(ex, 200, JSON_HEAD, 0)).toBe(true);
  });

  it("never compresses HEAD, 204, 304, encoded or no-transform responses, nor unlisted types", () => {
    const c = layerCompression();
    const ex = new FakeExchange("GET", BOTH);
    expect(c.applies(new FakeExchange("HEAD", BOTH), 200, JSON_HEAD, 5000)).toBe(false);
    for (const s of [101, 204, 206, 304]) expect(c.applies(ex, s, JSON_HEAD, 5000)).toBe(false);
    expect(c.applies(ex, 200, [...JSON_HEAD, "content-encoding", "gzip"], 5000)).toBe(false);
    expect(c.applies(ex, 200, [...JSON_HEAD, "cache-control", "no-transform"], 5000)).toBe(false);
    expect(c.applies(ex, 200, ["content-type", "application/xml"], 5000)).toBe(false);
    expect(c.applies(ex, 200, [], 5000)).toBe(false);
    expect(c.applies(ex, 200, ["content-type", "text/css"], 5000)).toBe(true);
  });

  it("refuses options out of range", () => {
    expect(() => layerCompression({ encodings: [] })).toThrow(/no encodings/);
    expect(() => layerCompression({ gzipLevel: 0 })).toThrow(/gzipLevel 0/);
    expect(() => layerCompression({ brotliQuality: 12 })).toThrow(/brotliQuality 12/);
  });
});

function writer(ex: FakeExchange, compression: ResponseCompression) {
  const done: ForwardHandler<undefined>[] = [];
  const h = new ForwardHandler(
    ex,
    { clearContext: false, engineWritesDate: false },
    () => {
      throw new Error("no error response expected");
    },
    (x) => done.push(x),
    undefined,
    compression,
  );
  h.onStart(new FakeControl());
  return { h, done };
}

/** Text that compresses well but not trivially. */
function text(bytes: number): Buffer {
  let s = "";
  for (let i = 0; s.length < bytes; i++) s += `{"id":${i},"name":"item-${(i * 7919) % 10007}"}\n`;
  return Buffer.from(s.slice(0, bytes));
}

describe("the response writer with brotli and gzip", () => {
  it("sends the body brotli-encoded, counted per encoding", async () => {
    const metrics = new Registry();
    const stats = new CompressionStats(metrics, "r");
    const ex = new FakeExchange("GET", ["accept-encoding", "br;q=1, gzip;q=0.9"]);
    const { h, done } = writer(ex, layerCompression({ stats }));
    const body = text(20_000);
    h.onHead(200, ["content-type", "application/json", "content-length", String(body.length)]);
    expect(ex.head?.length).toBeUndefined();
    expect(ex.field("content-encoding")).toBe("br");
    h.onData(body.subarray(0, 7000));
    h.onData(body.subarray(7000));
    h.onEnd(undefined);
    await until(() => ex.ended);
    expect(done).toHaveLength(1);
    expect(brotliDecompressSync(ex.bytes).equals(body)).toBe(true);
    expect(h.outcome).toEqual({ status: 200, bytes: ex.bytes.length, error: "" });
    expect(stats.br.responses.n).toBe(1);
    expect(stats.br.uncompressedBytes.n).toBe(body.length);
    expect(stats.br.compressedBytes.n).toBe(ex.bytes.length);
    expect(stats.gzip.responses.n).toBe(0);
    const scopes = metrics.snapshot().scopes.map((s) => s.flat);
    expect(scopes).toEqual(["rt/r/compression/br", "rt/r/compression/gzip"]);
  });

  for (const [encoding, decode] of [
    [
      "br",
      (b: Buffer) => brotliDecompressSync(b, { finishFlush: constants.BROTLI_OPERATION_FLUSH }),
    ],
    ["gzip", (b: Buffer) => gunzipSync(b, { finishFlush: constants.Z_SYNC_FLUSH })],
  ] as const)
    it(`flushes ${encoding} after each batch of upstream reads, before the body ends`, async () => {
      const ex = new FakeExchange("GET", ["accept-encoding", encoding]);
      const { h } = writer(ex, layerCompression());
      h.onHead(200, ["content-type", "text/event-stream"]);
      const first = Buffer.from("data: one\n\n".repeat(10));
      h.onData(first);
      // Whatever was written so far decodes to all of the first batch.
      await until(() => ex.written.length > 0 && decode(ex.bytes).length === first.length);
      expect(decode(ex.bytes).equals(first)).toBe(true);
      expect(ex.ended).toBe(false);
      const second = Buffer.from("data: two\n\n");
      h.onData(second);
      h.onEnd(undefined);
      await until(() => ex.ended);
      expect(decode(ex.bytes).equals(Buffer.concat([first, second]))).toBe(true);
    });

  it("compresses a known length up to 64 KiB whole: one write once the body is complete", async () => {
    const ex = new FakeExchange("GET", ["accept-encoding", "gzip"]);
    const { h, done } = writer(ex, layerCompression());
    const body = text(WHOLE_BODY_MAX_BYTES);
    h.onHead(200, ["content-type", "text/plain", "content-length", String(body.length)]);
    expect(h.onData(body.subarray(0, 30_000))).toBe(true);
    await new Promise((r) => setTimeout(r, 30));
    expect(ex.written).toHaveLength(0);
    expect(h.onData(body.subarray(30_000))).toBe(true);
    h.onEnd(undefined);
    // Done on a later turn, so the upstream's end is handled first.
    expect(done).toHaveLength(0);
    await until(() => ex.ended);
    expect(ex.written).toHaveLength(1);
    expect(gunzipSync(ex.bytes).equals(body)).toBe(true);
    expect(done).toHaveLength(1);
    expect(h.outcome.bytes).toBe(ex.bytes.length);
  });

  it("streams a known length over 64 KiB: bytes go out before the body is complete", async () => {
    const ex = new FakeExchange("GET", ["accept-encoding", "br"]);
    const { h } = writer(ex, layerCompression());
    const body = text(WHOLE_BODY_MAX_BYTES + 1);
    h.onHead(200, ["content-type", "text/plain", "content-length", String(body.length)]);
    h.onData(body.subarray(0, 40_000));
    await until(() => ex.written.length > 0);
    expect(ex.written.length).toBeGreaterThan(0);
    h.onData(body.subarray(40_000));
    h.onEnd(undefined);
    await until(() => ex.ended);
    expect(brotliDecompressSync(ex.bytes).equals(body)).toBe(true);
  });

  it("cuts the response when a body runs over its Content-Length", () => {
    const ex = new FakeExchange("GET", ["accept-encoding", "gzip"]);
    const { h, done } = writer(ex, layerCompression());
    h.onHead(200, ["content-type", "text/plain", "content-length", "1500"]);
    h.onData(Buffer.alloc(1000, "a"));
    h.onData(Buffer.alloc(1000, "b"));
    expect(ex.destroyed).toBe(true);
    expect(done).toHaveLength(1);
    expect(h.outcome.error).toBe("response_truncated");
  });

  it("pauses brotli for a slow client and resumes it when the client drains", async () => {
    const ex = new FakeExchange("GET", ["accept-encoding", "br"]);
    const { h, done } = writer(ex, layerCompression({ contentTypes: ["*/*"] }));
    h.onHead(200, []);
    ex.writable = false;
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 2654435761) >>> 24;
    h.onData(body);
    h.onEnd(undefined);
    await until(() => ex.written.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(ex.written).toHaveLength(1);
    expect(ex.ended).toBe(false);
    ex.drain();
    await until(() => ex.ended);
    expect(done).toHaveLength(1);
    expect(brotliDecompressSync(ex.bytes).equals(body)).toBe(true);
  });
});

describe("the compression layer", () => {
  it("decodes with defaults: br then gzip, textual types, 1 KiB, gzip 6, brotli 4", async () => {
    const d = await decodeLayers("[{kind: compression}]");
    if ("errors" in d) throw new Error(d.errors);
    expect(d.layers[0]!.config).toMatchObject({
      encodings: ["br", "gzip"],
      minBytes: 1024,
      gzipLevel: 6,
      brotliQuality: 4,
    });
    expect((d.layers[0]!.config as { contentTypes: string[] }).contentTypes).toContain("text/*");
  });

  it("sets the same compression on every request it sees", async () => {
    const d = await decodeLayers(
      "[{kind: compression, encodings: [gzip], contentTypes: [Text/Plain], minBytes: 10}]",
    );
    if ("errors" in d) throw new Error(d.errors);
    const layer = compressionLayer.create(d.layers[0]!.config as never, layerContext());
    expect(layer).toBeInstanceOf(CompressionLayer);
    const a = arriving(new FakeExchange("GET", BOTH));
    const b = arriving(new FakeExchange("GET", BOTH));
    expect(layer.arrive(a, undefined as never)).toBe(false);
    layer.arrive(b, undefined as never);
    expect(a.compression).toBeInstanceOf(ResponseCompression);
    expect(a.compression).toBe(b.compression);
    expect(a.compression!.encodings).toEqual(["gzip"]);
    expect(a.compression!.applies(a.ex, 200, ["content-type", "text/plain"], 10)).toBe(true);
    expect(a.compression!.applies(a.ex, 200, ["content-type", "text/html"], 10)).toBe(false);
  });

  it("refuses unknown encodings, repeated ones, bad types and levels out of range", async () => {
    const errors = async (layer: string) => {
      const d = await decodeLayers(`[{kind: compression, ${layer}}]`);
      return "errors" in d ? d.errors : "";
    };
    expect(await errors("encodings: [deflate]")).toMatch(/encodings\[0\].*one of "br", "gzip"/);
    expect(await errors("encodings: [gzip, gzip]")).toMatch(/gzip is listed more than once/);
    expect(await errors("encodings: []")).toMatch(/at least 1/);
    expect(await errors("contentTypes: [json]")).toMatch(/contentTypes\[0\].*a content type/);
    expect(await errors("gzipLevel: 10")).toMatch(/gzipLevel.*from 1 to 9/);
    expect(await errors("brotliQuality: 12")).toMatch(/brotliQuality.*from 0 to 11/);
    expect(await errors("minBytes: -1")).toMatch(/minBytes/);
    expect(await errors("level: 5")).toMatch(/level.*unknown key/);
  });
});
