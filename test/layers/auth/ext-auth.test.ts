// The extAuth layer against a real auth service on loopback: what the sub-request
// carries, an allowing answer's fields set upstream, a denying answer passed back whole,
// a slow or absent service under both failure modes, and answers cached by key.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { DecodeContext, INVALID } from "../../../gateway/config/schema.js";
import {
  type ExtAuthConfig,
  ExtAuthLayer,
  extAuthBlock,
  extAuthLayer,
} from "../../../gateway/layers/auth/ext-auth.js";
import { counter, Decisions, decide, field, layerContext, request, TestClock } from "./support.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  raw: string[];
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** An auth service on loopback answering with `handler`; records what it was asked. */
async function authService(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, raw: req.rawHeaders });
    req.resume();
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a = server.address();
  return { url: `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/check?v=1`, seen };
}

function config(raw: Record<string, unknown>): ExtAuthConfig {
  const cx = new DecodeContext("/");
  const c = extAuthBlock.decode(raw, "", cx);
  if (c === INVALID) throw new Error(cx.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  return c;
}

/** Allows requests with `authorization: Bearer good`, saying who it is; denies the rest. */
const byToken = (req: IncomingMessage, res: ServerResponse) => {
  if (req.headers.authorization === "Bearer good") {
    res.writeHead(200, { "x-auth-user": "alice", "x-other": "no" }).end("ignored body");
    return;
  }
  res
    .writeHead(401, {
      "www-authenticate": 'Bearer realm="sso"',
      "content-type": "application/json",
      "x-internal": "secret",
    })
    .end('{"error":"login first"}');
};

describe("the extAuth layer", () => {
  it("asks with the original method, URI and chosen fields, and sets the answer's fields", async () => {
    const auth = await authService(byToken);
    const ctx = layerContext();
    const layer = new ExtAuthLayer(
      config({ url: auth.url, upstreamHeaders: ["x-auth-user"] }),
      new TestClock(),
      ctx,
    );
    const req = request(
      [
        "host",
        "shop.test",
        "authorization",
        "Bearer good",
        "cookie",
        "s=1",
        "x-secret",
        "not for the auth service",
        "x-auth-user",
        "mallory",
      ],
      { method: "POST", url: "/cart?item=2" },
    );
    const r = await decide(layer, { ...req, service: "/svc/shop" });
    expect(r).toMatchObject({ kind: "passed", sync: false });
    const asked = auth.seen[0]!;
    expect(asked.method).toBe("POST");
    expect(asked.url).toBe("/check?v=1");
    expect(asked.headers).toMatchObject({
      authorization: "Bearer good",
      cookie: "s=1",
      "x-forwarded-method": "POST",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "shop.test",
      "x-forwarded-uri": "/cart?item=2",
      "x-forwarded-for": "192.0.2.7",
      "x-original-method": "POST",
      "x-original-uri": "/cart?item=2",
      "l5d-dst-service": "/svc/shop",
      "content-length": "0",
    });
    expect(asked.headers["x-secret"]).toBeUndefined();
    expect(asked.headers.host).toBe(new URL(auth.url).host);
    // The auth service's word replaces the client's; nothing else of its answer is taken.
    const h = req.ex.headers;
    expect(h.filter((x) => x === "x-auth-user")).toHaveLength(1);
    expect(field(h, "x-auth-user")).toBe("alice");
    expect(field(h, "x-other")).toBeUndefined();
    expect(counter(ctx, "extAuth", "allowed")).toBe(1);
  });

  it("passes a denial back whole: status, chosen fields and body", async () => {
    const auth = await authService(byToken);
    const ctx = layerContext();
    const layer = new ExtAuthLayer(config({ url: auth.url }), new TestClock(), ctx);
    const r = await decide(layer, request(["authorization", "Bearer bad"]));
    expect(r).toMatchObject({ kind: "answered", status: 401, body: '{"error":"login first"}' });
    if (r.kind !== "answered") return;
    expect(field(r.headers, "www-authenticate")).toBe('Bearer realm="sso"');
    expect(field(r.headers, "content-type")).toBe("application/json");
    expect(field(r.headers, "x-internal")).toBeUndefined();
    expect(field(r.headers, "l5d-err")).toBe(
      encodeURIComponent("extAuth: the auth service denied the request"),
    );
    expect(counter(ctx, "extAuth", "denied")).toBe(1);
  });

  it("refuses with 503 when the service is too slow or down (failureMode deny)", async () => {
    const slow = await authService(() => {});
    const ctx = layerContext();
    const layer = new ExtAuthLayer(config({ url: slow.url, timeoutMs: 150 }), new TestClock(), ctx);
    const t0 = Date.now();
    const r = await decide(layer, request([]));
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(1500);
    expect(r).toMatchObject({ kind: "refused" });
    if (r.kind === "refused") {
      expect(r.err.code).toBe("LINTEL_TIMEOUT");
      expect(r.err.status).toBe(503);
      expect(r.err.message).toBe(
        `extAuth: the auth service at ${slow.url} failed: no answer within 150 ms`,
      );
    }
    const down = new ExtAuthLayer(
      config({ url: "http://127.0.0.1:1/auth", timeoutMs: 1000 }),
      new TestClock(),
      ctx,
    );
    const d = await decide(down, request([]));
    expect(d).toMatchObject({ kind: "refused" });
    if (d.kind === "refused") {
      expect(d.err.code).toBe("LINTEL_UNAVAILABLE");
      expect(d.err.message).toMatch(/failed: ECONNREFUSED$/);
    }
    expect(counter(ctx, "extAuth", "errors")).toBe(2);
    expect(counter(ctx, "extAuth", "timeouts")).toBe(1);
  });

  it("lets requests through when the service fails and failureMode is allow", async () => {
    const slow = await authService(() => {});
    const ctx = layerContext();
    const layer = new ExtAuthLayer(
      config({ url: slow.url, timeoutMs: 100, failureMode: "allow", upstreamHeaders: ["x-user"] }),
      new TestClock(),
      ctx,
    );
    const req = request(["x-user", "mallory"]);
    expect(await decide(layer, req)).toMatchObject({ kind: "passed" });
    // Let through, but never with a field only the auth service may set.
    expect(field(req.ex.headers, "x-user")).toBeUndefined();
    expect(counter(ctx, "extAuth", "failed_open")).toBe(1);
  });

  it("treats a denial body over maxBodyKB as a failure", async () => {
    const big = await authService((_req, res) => res.writeHead(403).end("x".repeat(4096)));
    const layer = new ExtAuthLayer(
      config({ url: big.url, maxBodyKB: 1 }),
      new TestClock(),
      layerContext(),
    );
    const r = await decide(layer, request([]));
    expect(r).toMatchObject({ kind: "refused" });
    if (r.kind === "refused") expect(r.err.message).toMatch(/over 1024 bytes$/);
  });

  it("keeps answers by cacheKey for cacheTtlMs, and shares a question asked at once", async () => {
    const auth = await authService(byToken);
    const clock = new TestClock();
    const ctx = layerContext();
    const layer = new ExtAuthLayer(
      config({
        url: auth.url,
        cacheKey: ["authorization", ":path"],
        cacheTtlMs: 10_000,
        upstreamHeaders: ["x-auth-user"],
      }),
      clock,
      ctx,
    );
    const good = () => request(["authorization", "Bearer good"], { url: "/a" });
    const bad = () => request(["authorization", "Bearer bad"], { url: "/a" });
    // Asked at once: one sub-request for all.
    const d = new Decisions();
    for (let i = 0; i < 5; i++) expect(layer.arrive(good(), d)).toBe("later");
    await d.count(5);
    expect(auth.seen).toHaveLength(1);
    // Then from the cache, at once, with the same fields set.
    const again = good();
    expect(await decide(layer, again)).toMatchObject({ kind: "passed", sync: true });
    expect(field(again.ex.headers, "x-auth-user")).toBe("alice");
    // A denial is kept too.
    expect((await decide(layer, bad())).sync).toBe(false);
    expect(await decide(layer, bad())).toMatchObject({ kind: "answered", status: 401, sync: true });
    // Another path is another key.
    expect(
      (await decide(layer, request(["authorization", "Bearer good"], { url: "/b" }))).sync,
    ).toBe(false);
    expect(auth.seen).toHaveLength(3);
    clock.advance(10_000);
    expect((await decide(layer, good())).sync).toBe(false);
    expect(auth.seen).toHaveLength(4);
    expect(counter(ctx, "extAuth", "cache_hits")).toBe(2);
  });

  it("keeps its connections to the service alive across requests", async () => {
    const auth = await authService(byToken);
    const layer = new ExtAuthLayer(config({ url: auth.url }), new TestClock(), layerContext());
    for (let i = 0; i < 3; i++)
      expect((await decide(layer, request(["authorization", "Bearer good"]))).kind).toBe("passed");
    expect(auth.seen.every((s) => s.headers.connection === "keep-alive")).toBe(true);
  });
});

describe("the extAuth config", () => {
  it("asks for cacheKey and cacheTtlMs together", () => {
    const url = "http://auth.test/check";
    expect(extAuthLayer.validate!(config({ url, cacheTtlMs: 1000 }))).toEqual([
      {
        field: "cacheTtlMs",
        message: "caching needs cacheKey: the fields (e.g. [authorization]) answers are kept by",
      },
    ]);
    expect(extAuthLayer.validate!(config({ url, cacheKey: ["cookie"] }))).toEqual([
      { field: "cacheKey", message: "set cacheTtlMs: how long answers are kept" },
    ]);
  });

  it("refuses fields that frame the request and unknown key parts", () => {
    const cx = new DecodeContext("/");
    extAuthBlock.decode(
      { url: "http://a.test/", requestHeaders: ["Host"], cacheKey: [":query"] },
      "l",
      cx,
    );
    expect(cx.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      "l.requestHeaders[0]: host frames or routes the request: it cannot be copied or set",
      "l.cacheKey[0]: expected a header name or one of :method, :path, :authority",
    ]);
  });
});
