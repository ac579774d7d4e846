// Each propagation format read and written: round trips, Linkerd's byte layout, and
// malformed values ignored (never an error, never a half-read context).

import { describe, expect, it } from "vitest";
import {
  formatB3Multi,
  formatB3Single,
  parseB3Multi,
  parseB3Single,
} from "../../gateway/tracing/b3.js";
import { newId, type SpanContext } from "../../gateway/tracing/context.js";
import { formatL5dTrace, parseL5dTrace } from "../../gateway/tracing/l5d.js";
import { extractTrace, injectTrace, parseSampleRate } from "../../gateway/tracing/propagation.js";
import { formatTraceparent, parseTraceparent } from "../../gateway/tracing/w3c.js";

const ctx = (o: Partial<SpanContext> = {}): SpanContext => ({
  traceId: "463ac35c9f6413ad",
  spanId: "a2fb4a1d1a96d312",
  parentId: "0020000000000001",
  sampled: true,
  debug: false,
  tracestate: undefined,
  ...o,
});

const pairs = (list: readonly string[]) => {
  const m = new Map<string, string>();
  for (let i = 0; i < list.length; i += 2) m.set(list[i]!, list[i + 1]!);
  return m;
};

describe("l5d-ctx-trace", () => {
  it("is Finagle's 32 bytes: spanId, parentId, traceId, flags (SamplingKnown|Sampled)", () => {
    const v = formatL5dTrace(ctx());
    const b = Buffer.from(v, "base64");
    expect(b.length).toBe(32);
    expect(b.toString("hex", 0, 8)).toBe("a2fb4a1d1a96d312");
    expect(b.toString("hex", 8, 16)).toBe("0020000000000001");
    expect(b.toString("hex", 16, 24)).toBe("463ac35c9f6413ad");
    expect(b.readBigInt64BE(24)).toBe(6n);
    expect(parseL5dTrace(v)).toEqual({
      traceId: "463ac35c9f6413ad",
      spanId: "a2fb4a1d1a96d312",
      sampled: true,
      debug: false,
    });
  });

  it("reads a Linkerd-made value: unsampled, sampling unknown, debug", () => {
    const b = Buffer.alloc(32);
    b.write("0000000000000002", 0, "hex");
    b.write("0000000000000001", 8, "hex");
    b.write("00000000000000ff", 16, "hex");
    b.writeBigInt64BE(2n, 24);
    expect(parseL5dTrace(b.toString("base64"))?.sampled).toBe(false);
    b.writeBigInt64BE(0n, 24);
    expect(parseL5dTrace(b.toString("base64"))?.sampled).toBeUndefined();
    b.writeBigInt64BE(1n, 24);
    expect(parseL5dTrace(b.toString("base64"))).toMatchObject({ sampled: true, debug: true });
  });

  it("carries a 128-bit trace id in 40 bytes (high half last)", () => {
    const id = "0af7651916cd43dd8448eb211c80319c";
    const v = formatL5dTrace(ctx({ traceId: id }));
    expect(Buffer.from(v, "base64").length).toBe(40);
    expect(parseL5dTrace(v)?.traceId).toBe(id);
  });

  it("ignores malformed values", () => {
    for (const bad of [
      "",
      "not base64!",
      Buffer.alloc(31).toString("base64"),
      Buffer.alloc(32).toString("base64"),
    ])
      expect(parseL5dTrace(bad)).toBeUndefined();
  });
});

describe("B3", () => {
  it("multi headers round trip", () => {
    const h = pairs(formatB3Multi(ctx()));
    expect(h.get("x-b3-sampled")).toBe("1");
    expect(h.get("x-b3-parentspanid")).toBe("0020000000000001");
    expect(parseB3Multi((n) => h.get(n))).toEqual({
      traceId: "463ac35c9f6413ad",
      spanId: "a2fb4a1d1a96d312",
      sampled: true,
      debug: false,
    });
    const d = pairs(formatB3Multi(ctx({ debug: true })));
    expect(d.get("x-b3-flags")).toBe("1");
    expect(parseB3Multi((n) => d.get(n))?.debug).toBe(true);
  });

  it("multi headers: a decision alone, and malformed ones ignored", () => {
    expect(parseB3Multi((n) => (n === "x-b3-sampled" ? "0" : undefined))).toEqual({
      traceId: undefined,
      spanId: undefined,
      sampled: false,
      debug: false,
    });
    const bad: Record<string, string>[] = [
      { "x-b3-traceid": "463ac35c9f6413ad" },
      { "x-b3-traceid": "xyz", "x-b3-spanid": "a2fb4a1d1a96d312" },
      { "x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "0000000000000000" },
      {
        "x-b3-traceid": "463ac35c9f6413ad",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-sampled": "yes",
      },
    ];
    for (const h of bad) expect(parseB3Multi((n) => h[n])).toBeUndefined();
  });

  it("single header round trip, and its short forms", () => {
    const v = formatB3Single(ctx());
    expect(v).toBe("463ac35c9f6413ad-a2fb4a1d1a96d312-1-0020000000000001");
    expect(parseB3Single(v)).toEqual({
      traceId: "463ac35c9f6413ad",
      spanId: "a2fb4a1d1a96d312",
      sampled: true,
      debug: false,
    });
    expect(parseB3Single("463ac35c9f6413ad-a2fb4a1d1a96d312")?.sampled).toBeUndefined();
    expect(parseB3Single("0")).toMatchObject({ traceId: undefined, sampled: false });
    expect(parseB3Single("d")).toMatchObject({ sampled: true, debug: true });
    for (const bad of [
      "",
      "x",
      "463ac35c9f6413ad",
      "463ac35c9f6413ad-zz",
      "a-b-c-d-e",
      "463ac35c9f6413ad-a2fb4a1d1a96d312-7",
    ])
      expect(parseB3Single(bad)).toBeUndefined();
  });
});

describe("W3C traceparent", () => {
  it("round trips, a 64-bit trace id padded to 128 bits", () => {
    const v = formatTraceparent(ctx());
    expect(v).toBe("00-0000000000000000463ac35c9f6413ad-a2fb4a1d1a96d312-01");
    expect(parseTraceparent(v, "congo=t61rcWkgMzE")).toEqual({
      traceId: "0000000000000000463ac35c9f6413ad",
      spanId: "a2fb4a1d1a96d312",
      sampled: true,
      debug: false,
      tracestate: "congo=t61rcWkgMzE",
    });
    expect(
      parseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", undefined)
        ?.sampled,
    ).toBe(false);
  });

  it("ignores malformed values", () => {
    for (const bad of [
      "",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    ])
      expect(parseTraceparent(bad, undefined)).toBeUndefined();
  });
});

describe("extract and inject", () => {
  it("finds the formats a request carries and prefers one with ids", () => {
    const h = ["host", "x", "b3", "1", "traceparent", formatTraceparent(ctx())];
    const e = extractTrace(h);
    expect(e.formats).toEqual(["b3single", "w3c"]);
    expect(e.trace?.spanId).toBe("a2fb4a1d1a96d312");
    expect(extractTrace(["host", "x"]).formats).toEqual([]);
    expect(extractTrace(["l5d-ctx-trace", "garbage"]).trace).toBeUndefined();
  });

  it("injects the chosen formats, replacing every trace header already there", () => {
    const h = ["host", "x", "x-b3-traceid", "1111111111111111", "b3", "0", "tracestate", "a=b"];
    injectTrace(h, ctx(), ["l5d", "w3c"]);
    const m = pairs(h);
    expect([...m.keys()].sort()).toEqual(["host", "l5d-ctx-trace", "traceparent"]);
    const back = extractTrace(h);
    expect(back.formats).toEqual(["l5d", "w3c"]);
    expect(back.trace?.traceId).toBe("463ac35c9f6413ad");
  });

  it("l5d-sample is a rate from 0 to 1", () => {
    expect(parseSampleRate("0.25")).toBe(0.25);
    expect(parseSampleRate("1")).toBe(1);
    for (const bad of [undefined, "", "2", "-0.1", "abc"])
      expect(parseSampleRate(bad)).toBeUndefined();
  });

  it("new ids are 16 hex digits, never zero", () => {
    expect(newId(() => 0)).toBe("0000000000000001");
    expect(newId(Math.random)).toMatch(/^[0-9a-f]{16}$/);
  });
});
