// The tracer's decisions: which incoming context it trusts, how it samples (the caller's
// flag, then l5d-sample, then the rate, with an injected random source), which formats go
// upstream, and the spans it hands to its sinks.

import { describe, expect, it } from "vitest";
import type { TraceFormat } from "../../gateway/tracing/context.js";
import type { FinishedSpan } from "../../gateway/tracing/span.js";
import { type SpanSink, Tracer } from "../../gateway/tracing/tracer.js";
import { formatTraceparent } from "../../gateway/tracing/w3c.js";

function sink(sampleRate: number, propagation: TraceFormat[] = ["l5d", "b3", "w3c"]) {
  const spans: FinishedSpan[] = [];
  const s: SpanSink = { sampleRate, propagation, record: (x) => spans.push(x) };
  return { s, spans };
}

/** A random source that returns `values` in turn (then 0.5). */
const seq =
  (...values: number[]) =>
  () =>
    values.shift() ?? 0.5;

const names = (h: string[]) => h.filter((_, i) => i % 2 === 0).sort();

describe("Tracer", () => {
  it("samples new traces at the highest sink rate, by the injected random source", () => {
    const a = sink(0.1);
    const b = sink(0.3);
    const t = new Tracer([a.s, b.s], seq(0.2, 0, 0, 0, 0, 0.35));
    expect(t.sampleRate).toBe(0.3);
    expect(t.serverTrace([], true, true, "r").sampled).toBe(true);
    expect(t.serverTrace([], true, true, "r").sampled).toBe(false);
  });

  it("trusts the caller's flag and l5d-sample only on trusted servers", () => {
    const t = new Tracer([sink(0).s], () => 0.5);
    const parent = formatTraceparent({
      traceId: "463ac35c9f6413ad",
      spanId: "a2fb4a1d1a96d312",
      parentId: undefined,
      sampled: true,
      debug: false,
      tracestate: undefined,
    });
    const trusted = t.serverTrace(["traceparent", parent], true, true, "r");
    expect(trusted.sampled).toBe(true);
    expect(trusted.context.traceId).toBe("0000000000000000463ac35c9f6413ad");
    expect(trusted.context.parentId).toBe("a2fb4a1d1a96d312");
    const cleared = t.serverTrace(["traceparent", parent, "l5d-sample", "1"], false, true, "r");
    expect(cleared.sampled).toBe(false);
    expect(cleared.context.parentId).toBeUndefined();
    expect(cleared.context.traceId).not.toContain("463ac35c9f6413ad");
    expect(t.serverTrace(["l5d-sample", "1"], true, true, "r").sampled).toBe(true);
    expect(t.serverTrace(["l5d-sample", "0.4"], true, true, "r").sampled).toBe(false);
  });

  it("each attempt is a child span whose context replaces the trace headers", () => {
    const { s, spans } = sink(1);
    const t = new Tracer([s], Math.random);
    const trace = t.serverTrace([], true, true, "edge");
    trace.target("/svc/users", "/#/io.l5d.fs/users");
    const headers = ["host", "users", "b3", "0"];
    const span = trace.attempt(headers, "10.0.0.1:80", "GET", "/x?y");
    expect(names(headers)).toEqual([
      "host",
      "l5d-ctx-trace",
      "traceparent",
      "x-b3-parentspanid",
      "x-b3-sampled",
      "x-b3-spanid",
      "x-b3-traceid",
    ]);
    span!.head(503);
    span!.end(undefined);
    span!.end(undefined);
    trace.end({
      method: "GET",
      url: "/x?y",
      status: 503,
      error: "",
      service: "/svc/users",
      client: "/#/io.l5d.fs/users",
      localAddress: "127.0.0.1:4140",
      remoteAddress: "127.0.0.2:5555",
    });
    expect(spans.map((x) => x.kind)).toEqual(["CLIENT", "SERVER"]);
    const [client, server] = spans as [FinishedSpan, FinishedSpan];
    expect(client.parentId).toBe(server.id);
    expect(client.tags).toMatchObject({
      "http.status_code": "503",
      error: "503",
      "l5d.endpoint": "10.0.0.1:80",
    });
    expect(server.tags["http.path"]).toBe("/x");
    expect(server.error).toBe(true);
  });

  it("an egress router sends no l5d-ctx-trace; an unsampled trace records nothing", () => {
    const { s, spans } = sink(0);
    const t = new Tracer([s], () => 0.5);
    const trace = t.serverTrace([], true, false, "egress");
    const headers: string[] = [];
    expect(trace.attempt(headers, "1.2.3.4:443", "GET", "/")).toBeUndefined();
    expect(names(headers)).not.toContain("l5d-ctx-trace");
    expect(headers[headers.indexOf("x-b3-sampled") + 1]).toBe("0");
    trace.end({
      method: "GET",
      url: "/",
      status: 200,
      error: "",
      service: undefined,
      client: undefined,
      localAddress: "",
      remoteAddress: undefined,
    });
    expect(spans).toHaveLength(0);
  });
});
