// Tracing end to end: an edge lintel (clearContext) in front of a node-proxy lintel in
// front of a backend, both exporting to a test Zipkin collector on loopback: one trace,
// edge server → edge client → proxy server → proxy client; an OTLP collector; the export
// queue dropping and counting when the collector is down while requests still succeed;
// trusted servers continuing (or declining) an incoming trace; WebSocket and CONNECT
// tunnels as client spans.

import { createServer, type IncomingMessage } from "node:http";
import { type AddressInfo, connect, createServer as createTcpServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import {
  call,
  cleanup,
  closeOnCleanup,
  eventually,
  freePort,
  fsEdgeConfig,
  type Lintel,
  metricsJson,
  onCleanup,
  startLintel,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

interface Collector {
  readonly port: number;
  /** Every POST's path and parsed JSON body. */
  readonly posts: { path: string; body: unknown }[];
}

/** A collector on 127.0.0.1:0 that keeps every POSTed JSON body and answers 202. */
async function startCollector(): Promise<Collector> {
  const posts: { path: string; body: unknown }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      posts.push({ path: req.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString()) });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  closeOnCleanup(server);
  const a = server.address();
  return { port: typeof a === "object" && a ? a.port : 0, posts };
}

interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind: "SERVER" | "CLIENT";
  timestamp: number;
  duration: number;
  localEndpoint: { serviceName: string; ipv4?: string; port?: number };
  remoteEndpoint?: { ipv4?: string; port?: number };
  tags: Record<string, string>;
}

const zipkinSpans = (c: Collector): ZipkinSpan[] =>
  c.posts.filter((p) => p.path === "/api/v2/spans").flatMap((p) => p.body as ZipkinSpan[]);

const zipkin = (port: number, extra = "") =>
  `telemetry:\n- {kind: io.l5d.zipkin, host: 127.0.0.1, port: ${port}, sampleRate: 1.0, flushIntervalMs: 20${extra}}`;

/** The node proxy: its router `incoming` delivers /svc/users to the backend (io.l5d.fs). */
async function proxyLintel(telemetry: string, backend: number): Promise<Lintel> {
  const yaml = fsEdgeConfig({ workers: 0, engine: "net", plugins: telemetry }).replace(
    "label: edge",
    "label: incoming",
  );
  return startLintel(yaml, { "disco/users": `127.0.0.1 ${backend}\n` });
}

/** The edge: a clearContext server sending every service to the proxy's port. */
async function edgeLintel(telemetry: string, proxyPort: number): Promise<Lintel> {
  return startLintel(
    fsEdgeConfig({
      workers: 0,
      engine: "net",
      plugins: telemetry,
      dtab: `/svc => /$/inet/127.0.0.1/${proxyPort}`,
      server: ", clearContext: true",
    }),
  );
}

describe("tracing across an edge and a node proxy", () => {
  it("exports one trace: edge server → edge client → proxy server → proxy client", async () => {
    const collector = await startCollector();
    const backend = await startUpstream("users");
    const proxy = await proxyLintel(zipkin(collector.port), backend.port);
    // The edge sends every format; the proxy answers in kind.
    const edge = await edgeLintel(
      zipkin(collector.port, ", propagation: [l5d, b3, w3c]"),
      proxy.port("incoming"),
    );

    // An internet client's trace context (unsampled) is not trusted at a clearContext edge.
    const foreign = "0af7651916cd43dd8448eb211c80319c";
    const r = await call(edge.port("edge"), {
      path: "/users/tom?x=1",
      headers: {
        host: "users",
        traceparent: `00-${foreign}-b7ad6b7169203331-00`,
        "x-b3-traceid": "463ac35c9f6413ad",
        "x-b3-spanid": "463ac35c9f6413ad",
        "x-b3-sampled": "0",
      },
    });
    expect(r.status).toBe(200);
    await eventually(() => zipkinSpans(collector).length >= 4, 5000, "four spans");
    const spans = zipkinSpans(collector);
    expect(spans).toHaveLength(4);

    const by = (service: string, kind: string) => {
      const s = spans.find((x) => x.localEndpoint.serviceName === service && x.kind === kind);
      expect(s, `${service} ${kind}`).toBeDefined();
      return s!;
    };
    const edgeServer = by("edge", "SERVER");
    const edgeClient = by("edge", "CLIENT");
    const proxyServer = by("incoming", "SERVER");
    const proxyClient = by("incoming", "CLIENT");

    // One trace, new at the edge (not the client's), each span the child of the one before.
    const traceId = edgeServer.traceId;
    expect(traceId).toMatch(/^[0-9a-f]{16}$/);
    expect(traceId).not.toBe("463ac35c9f6413ad");
    for (const s of spans) expect(s.traceId).toBe(traceId);
    expect(edgeServer.parentId).toBeUndefined();
    expect(edgeClient.parentId).toBe(edgeServer.id);
    expect(proxyServer.parentId).toBe(edgeClient.id);
    expect(proxyClient.parentId).toBe(proxyServer.id);
    expect(new Set(spans.map((s) => s.id)).size).toBe(4);

    // The backend got the last client span's context, in the formats the proxy received.
    const seen = backend.seen[0]!.headers;
    expect(seen["x-b3-traceid"]).toBe(traceId);
    expect(seen["x-b3-spanid"]).toBe(proxyClient.id);
    expect(seen["x-b3-parentspanid"]).toBe(proxyServer.id);
    expect(seen["x-b3-sampled"]).toBe("1");
    expect(seen.traceparent).toBe(`00-0000000000000000${traceId}-${proxyClient.id}-01`);
    const l5d = Buffer.from(seen["l5d-ctx-trace"] as string, "base64");
    expect(l5d.toString("hex", 0, 8)).toBe(proxyClient.id);
    expect(l5d.toString("hex", 16, 24)).toBe(traceId);

    // Tags, endpoints and times.
    expect(edgeServer.tags).toMatchObject({
      "http.method": "GET",
      "http.path": "/users/tom",
      "http.status_code": "200",
      "l5d.service": "/svc/users",
    });
    expect(edgeServer.tags.error).toBeUndefined();
    expect(edgeServer.localEndpoint).toMatchObject({ ipv4: "127.0.0.1", port: edge.port("edge") });
    expect(edgeClient.remoteEndpoint).toEqual({ ipv4: "127.0.0.1", port: proxy.port("incoming") });
    expect(edgeClient.tags["l5d.client"]).toBe(`/$/inet/127.0.0.1/${proxy.port("incoming")}`);
    expect(proxyClient.remoteEndpoint).toEqual({ ipv4: "127.0.0.1", port: backend.port });
    expect(proxyClient.tags).toMatchObject({
      "http.status_code": "200",
      "l5d.client": "/#/io.l5d.fs/users",
      "l5d.endpoint": `127.0.0.1:${backend.port}`,
    });
    expect(proxyServer.name).toBe("get");
    // The edge's server span holds its client span, which holds the proxy's spans.
    const end = (s: ZipkinSpan) => s.timestamp + s.duration;
    expect(edgeClient.timestamp).toBeGreaterThanOrEqual(edgeServer.timestamp);
    expect(end(edgeClient)).toBeLessThanOrEqual(end(edgeServer));
    expect(proxyServer.timestamp).toBeGreaterThanOrEqual(edgeClient.timestamp);
    expect(end(proxyClient)).toBeLessThanOrEqual(end(proxyServer));
  });

  it("a failed upstream call is an error on both spans", async () => {
    const collector = await startCollector();
    const dead = await freePort();
    const edge = await edgeLintel(zipkin(collector.port), dead);
    const r = await call(edge.port("edge"), { headers: { host: "users" } });
    expect(r.status).toBe(502);
    await eventually(() => zipkinSpans(collector).length >= 2, 5000, "two spans");
    const [client, server] = ["CLIENT", "SERVER"].map((k) =>
      zipkinSpans(collector).find((s) => s.kind === k),
    );
    expect(server!.tags).toMatchObject({ "http.status_code": "502", error: "LINTEL_CONNECT" });
    expect(client!.tags.error).toBe("LINTEL_CONNECT");
    expect(client!.parentId).toBe(server!.id);
  });
});

describe("a trusted server continues the caller's trace", () => {
  it("an incoming sampled flag wins over the rate, both ways", async () => {
    const collector = await startCollector();
    const backend = await startUpstream("users");
    const proxy = await proxyLintel(zipkin(collector.port).replace("1.0", "0"), backend.port);
    const port = proxy.port("incoming");

    // Sampled by the caller at a rate of 0: recorded, a child of the caller's span.
    const sampled = await call(port, {
      headers: { host: "users", b3: "463ac35c9f6413ad-a2fb4a1d1a96d312-1" },
    });
    expect(sampled.status).toBe(200);
    await eventually(() => zipkinSpans(collector).length >= 2, 5000, "two spans");
    const server = zipkinSpans(collector).find((s) => s.kind === "SERVER")!;
    expect(server.traceId).toBe("463ac35c9f6413ad");
    expect(server.parentId).toBe("a2fb4a1d1a96d312");
    // Answered in kind: only the b3 single header went on.
    const h = backend.seen[0]!.headers;
    expect(h.b3).toMatch(/^463ac35c9f6413ad-[0-9a-f]{16}-1-[0-9a-f]{16}$/);
    expect(h.traceparent).toBeUndefined();
    expect(h["l5d-ctx-trace"]).toBeUndefined();

    // l5d-sample asks for every request of this one.
    await call(port, { headers: { host: "users", "l5d-sample": "1.0" } });
    await eventually(() => zipkinSpans(collector).length >= 4, 5000, "four spans");
    // A request with no context gets io.l5d.zipkin's default formats: l5d-ctx-trace and B3.
    const fresh = backend.seen[1]!.headers;
    expect(fresh["l5d-ctx-trace"]).toBeDefined();
    expect(fresh["x-b3-sampled"]).toBe("1");
    expect(fresh.traceparent).toBeUndefined();
  });

  it("an unsampled caller's trace is carried on but not recorded", async () => {
    const collector = await startCollector();
    const backend = await startUpstream("users");
    const proxy = await proxyLintel(zipkin(collector.port), backend.port);
    const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    const r = await call(proxy.port("incoming"), {
      headers: { host: "users", traceparent: parent, tracestate: "congo=t61rcWkgMzE" },
    });
    expect(r.status).toBe(200);
    const h = backend.seen[0]!.headers;
    expect(h.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
    expect(h.traceparent).not.toBe(parent);
    expect(h.tracestate).toBe("congo=t61rcWkgMzE");
    // A sampled request after it is exported; the unsampled one never is.
    await call(proxy.port("incoming"), { headers: { host: "users" } });
    await eventually(() => zipkinSpans(collector).length >= 2, 5000, "two spans");
    await new Promise((r) => setTimeout(r, 100));
    expect(zipkinSpans(collector)).toHaveLength(2);
    for (const s of zipkinSpans(collector)) expect(s.traceId).not.toContain("0af7651916cd43dd");
  });
});

describe("the otlp telemeter", () => {
  it("posts OTLP JSON to /v1/traces with the configured service name", async () => {
    const collector = await startCollector();
    const backend = await startUpstream("users");
    const l = await proxyLintel(
      `telemetry:\n- {kind: otlp, url: "http://127.0.0.1:${collector.port}/v1/traces", sampleRate: 1, serviceName: lintel-edge, flushIntervalMs: 20}`,
      backend.port,
    );
    const r = await call(l.port("incoming"), { path: "/a?b", headers: { host: "users" } });
    expect(r.status).toBe(200);
    // otlp's default propagation: W3C only.
    const sent = backend.seen[0]!.headers;
    expect(sent.traceparent).toMatch(/^00-0{16}[0-9a-f]{16}-[0-9a-f]{16}-01$/);
    expect(sent["l5d-ctx-trace"]).toBeUndefined();
    expect(sent["x-b3-traceid"]).toBeUndefined();
    await eventually(() => collector.posts.length > 0, 5000, "an OTLP post");
    const post = collector.posts[0]!;
    expect(post.path).toBe("/v1/traces");
    // biome-ignore lint/suspicious/noExplicitAny: the collector's parsed JSON
    const body = post.body as any;
    expect(body.resourceSpans[0].resource.attributes).toEqual([
      { key: "service.name", value: { stringValue: "lintel-edge" } },
    ]);
    // biome-ignore lint/suspicious/noExplicitAny: the collector's parsed JSON
    const spans = body.resourceSpans.flatMap((r: any) => r.scopeSpans[0].spans) as any[];
    expect(spans).toHaveLength(2);
    const server = spans.find((s) => s.kind === 2);
    const client = spans.find((s) => s.kind === 3);
    expect(server.traceId).toMatch(/^0{16}[0-9a-f]{16}$/);
    expect(client.traceId).toBe(server.traceId);
    expect(client.parentSpanId).toBe(server.spanId);
    expect(server.parentSpanId).toBeUndefined();
    expect(BigInt(server.endTimeUnixNano)).toBeGreaterThan(BigInt(server.startTimeUnixNano));
    expect(server.attributes).toContainEqual({ key: "http.path", value: { stringValue: "/a" } });
    expect(server.attributes).toContainEqual({
      key: "http.status_code",
      value: { intValue: "200" },
    });
  });
});

describe("export never holds requests up", () => {
  it("drops and counts spans when the collector is down; requests still succeed", async () => {
    const down = await freePort();
    const backend = await startUpstream("users");
    const l = await proxyLintel(zipkin(down, ", maxQueueSpans: 4, batchSpans: 100"), backend.port);
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => call(l.port("incoming"), { headers: { host: "users" } })),
    );
    for (const r of replies) expect(r.status).toBe(200);
    // 20 spans: those over the queue's 4 dropped at once, the 4 queued when their POST fails.
    // biome-ignore lint/suspicious/noExplicitAny: the admin page's JSON
    let page: any;
    await eventually(
      async () => {
        page = JSON.parse((await call(l.adminPort, { path: "/admin/zipkin.json" })).text);
        return page.dropped === 20 && page.failures >= 1;
      },
      5000,
      "20 dropped spans",
    );
    expect(page.sent).toBe(0);
    expect(page.collector).toBe(`http://127.0.0.1:${down}/api/v2/spans`);
    // The same counts are metrics, for Prometheus and /admin/metrics.json.
    const m = await metricsJson(l);
    expect(m["telemetry/tracing/zipkin/spans_dropped"]).toBe(20);
    expect(m["telemetry/tracing/zipkin/spans_sent"] ?? 0).toBe(0);
    expect(m["telemetry/tracing/zipkin/export_failures"]).toBeGreaterThanOrEqual(1);
    // Failures are logged, but not once per batch.
    const warned = l.logs.filter((line) => line.includes("span export failed"));
    expect(warned).toHaveLength(1);
  });
});

describe("tunnels are client spans", () => {
  it("a WebSocket upgrade sends its span's context upstream; both spans last the tunnel", async () => {
    const collector = await startCollector();
    const seen: IncomingMessage[] = [];
    const http = createServer((_req, res) => res.end("not a websocket\n"));
    const wss = new WebSocketServer({ noServer: true });
    http.on("upgrade", (req, socket, head) => {
      seen.push(req);
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (d) => ws.send(d)));
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    closeOnCleanup(http);
    const up = (http.address() as AddressInfo).port;
    // A clearContext edge: the client's own traceparent must not reach the upstream.
    const edge = await startLintel(
      fsEdgeConfig({
        workers: 0,
        engine: "net",
        plugins: zipkin(collector.port, ", propagation: [w3c]"),
        dtab: `/svc => /$/inet/127.0.0.1/${up}`,
        server: ", clearContext: true",
      }),
    );
    const foreign = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const ws = new WebSocket(`ws://127.0.0.1:${edge.port()}/chat`, {
      headers: { host: "chat", traceparent: foreign },
    });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const echoed = new Promise((r) => ws.once("message", r));
    ws.send("hi");
    await echoed;
    ws.close();
    await eventually(async () => zipkinSpans(collector).length >= 2, 5000, "two spans");
    const spans = zipkinSpans(collector);
    const server = spans.find((s) => s.kind === "SERVER")!;
    const client = spans.find((s) => s.kind === "CLIENT")!;
    expect(server.traceId).not.toBe("0af7651916cd43dd8448eb211c80319c");
    expect([client.traceId, client.parentId, client.name]).toEqual([
      server.traceId,
      server.id,
      "get",
    ]);
    expect(client.tags["http.status_code"]).toBe("101");
    expect(client.tags["l5d.service"]).toBe("/svc/chat");
    expect(client.tags["l5d.endpoint"]).toBe(`127.0.0.1:${up}`);
    // The upstream got the client span's context in place of the caller's.
    const sent = seen[0]!.headers.traceparent as string;
    // (W3C trace ids are 128 bits: a 64-bit id goes left-padded.)
    expect(sent.split("-").slice(1, 3)).toEqual([client.traceId.padStart(32, "0"), client.id]);
  });

  it("a CONNECT tunnel is a client span to the endpoint it reached", async () => {
    const collector = await startCollector();
    const echo = createTcpServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    onCleanup(() => new Promise<void>((r) => echo.close(() => r())));
    const port = (echo.address() as AddressInfo).port;
    const l = await startLintel(
      fsEdgeConfig({
        workers: 0,
        engine: "net",
        plugins: zipkin(collector.port),
        dtab: "/svc => /$/io.buoyant.hostportPfx/inet; /inet => /$/inet",
        server: `, connect: {ports: [${port}]}`,
        extra: "  egress: {allowCidrs: [127.0.0.0/8]}",
      }),
    );
    const s = connect(l.port(), "127.0.0.1");
    closeOnCleanup({
      closeAllConnections: () => s.destroy(),
      close: (cb) => cb(),
    });
    const answered = new Promise<string>((r) => s.once("data", (d: Buffer) => r(d.toString())));
    s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`);
    expect((await answered).split("\r\n")[0]).toBe("HTTP/1.1 200 Connection Established");
    s.end();
    await eventually(async () => zipkinSpans(collector).length >= 2, 5000, "two spans");
    const spans = zipkinSpans(collector);
    const server = spans.find((x) => x.kind === "SERVER")!;
    const client = spans.find((x) => x.kind === "CLIENT")!;
    expect([client.traceId, client.parentId, client.name]).toEqual([
      server.traceId,
      server.id,
      "connect",
    ]);
    expect(client.tags["l5d.endpoint"]).toBe(`127.0.0.1:${port}`);
    expect(client.tags["http.status_code"]).toBe("200");
  });
});
