// Edge behaviour on both engines: X-Forwarded-* and trusted proxies, x-forwarded-client-cert,
// PROXY protocol v2 (plaintext), maxConcurrentRequests and the HTTPS redirect.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { encodeProxyV1, encodeProxyV2 } from "../../gateway/server/proxy-protocol.js";
import {
  call,
  cleanup,
  configErrors,
  ENGINES,
  type EngineName,
  eventually,
  metricsJson,
  raw,
  startLintel,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

function config(engine: EngineName, upstream: number, server = "", router = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/${upstream}
${router}
  servers:
  - ip: 127.0.0.1
    port: 0
    engine: ${engine}
${server
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => `    ${l.trim()}`)
  .join("\n")}
`;
}

describe.each(ENGINES)("edge headers on the %s engine", (engine) => {
  it("overwrites X-Forwarded-* from an untrusted client on a clearContext server", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(config(engine, up.port, "clearContext: true"));
    await call(l.port(), {
      headers: {
        host: "shop.example",
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil",
      },
    });
    const h = up.seen[0]!.headers;
    expect(h["x-forwarded-for"]).toBe("127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("http");
    expect(h["x-forwarded-host"]).toBe("shop.example");
  });

  it("writes the access log as JSON lines when asked", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(
        engine,
        up.port,
        "clearContext: true\ntrustedProxies: [127.0.0.0/8]\n",
        "  httpAccessLog: access.log\n  httpAccessLogFormat: json",
      ),
    );
    await call(l.port(), {
      path: "/cart?id=7",
      headers: { host: "shop.example", "x-forwarded-for": "198.51.100.4", "user-agent": "t/1" },
    });
    let line = "";
    await eventually(
      () => {
        try {
          line = readFileSync(join(l.dir, "access.log"), "utf8");
          return line.endsWith("\n");
        } catch {
          return false;
        }
      },
      3000,
      "the access line",
    );
    const entry = JSON.parse(line);
    expect(entry).toMatchObject({
      remote: "198.51.100.4",
      method: "GET",
      url: "/cart?id=7",
      protocol: "HTTP/1.1",
      status: 200,
      userAgent: "t/1",
      service: "/svc/shop.example",
    });
    expect(Date.parse(entry.time)).toBeGreaterThan(Date.now() - 60_000);
    expect(typeof entry.durationMs).toBe("number");
  });

  it("keeps and extends X-Forwarded-For from a trusted proxy", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(
        engine,
        up.port,
        "clearContext: true\ntrustedProxies: [127.0.0.0/8]\n",
        "  httpAccessLog: access.log",
      ),
    );
    await call(l.port(), {
      headers: {
        host: "shop.example",
        "x-forwarded-for": "198.51.100.4",
        "x-forwarded-proto": "https",
      },
    });
    const h = up.seen[0]!.headers;
    expect(h["x-forwarded-for"]).toBe("198.51.100.4, 127.0.0.1");
    expect(h["x-forwarded-proto"]).toBe("https");
    // The access log names the client found behind the trusted proxy.
    await eventually(
      () => {
        try {
          return readFileSync(join(l.dir, "access.log"), "utf8").startsWith("198.51.100.4 - - [");
        } catch {
          return false;
        }
      },
      3000,
      "the access line",
    );
  });

  it("cannot be made to drop X-Forwarded-For by naming it in Connection", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(config(engine, up.port, "clearContext: true"));
    await call(l.port(), {
      headers: { host: "x", connection: "x-forwarded-for, x-forwarded-proto" },
    });
    expect(up.seen[0]!.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(up.seen[0]!.headers["x-forwarded-proto"]).toBe("http");
  });

  it("drops x-forwarded-client-cert on clearContext servers and keeps it elsewhere", async () => {
    const up = await startUpstream("up");
    const edge = await startLintel(config(engine, up.port, "clearContext: true"));
    await call(edge.port(), { headers: { host: "x", "x-forwarded-client-cert": "Hash=forged" } });
    expect(up.seen[0]!.headers["x-forwarded-client-cert"]).toBeUndefined();
    const inner = await startLintel(config(engine, up.port));
    await call(inner.port(), { headers: { host: "x", "x-forwarded-client-cert": "Hash=abc" } });
    expect(up.seen[1]!.headers["x-forwarded-client-cert"]).toBe("Hash=abc");
    // Without clearContext (a node proxy), lintel adds no X-Forwarded-For, as Linkerd.
    expect(up.seen[1]!.headers["x-forwarded-for"]).toBeUndefined();
  });

  it("writes RFC 7239 Forwarded with addForwardedHeader", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(
        engine,
        up.port,
        "addForwardedHeader: {by: {kind: static, label: _lintel}, for: {kind: ip}}",
      ),
    );
    await call(l.port(), { headers: { host: "shop.example", forwarded: "for=6.6.6.6" } });
    expect(up.seen[0]!.headers.forwarded).toBe(
      "for=127.0.0.1;by=_lintel;proto=http;host=shop.example",
    );
  });

  it("answers 503 with l5d-err beyond maxConcurrentRequests, and serves again once they finish", async () => {
    const up = await startUpstream("slow", (_req, res) => {
      setTimeout(() => res.end("done"), 400);
    });
    const l = await startLintel(config(engine, up.port, "maxConcurrentRequests: 2"));
    const replies = await Promise.all(
      [1, 2, 3, 4].map(() => call(l.port(), { headers: { host: "x" } })),
    );
    const codes = replies.map((r) => r.status).sort();
    expect(codes).toEqual([200, 200, 503, 503]);
    const refused = replies.find((r) => r.status === 503)!;
    expect(decodeURIComponent(refused.headers["l5d-err"] as string)).toContain(
      "limit of 2 concurrent requests",
    );
    expect((await call(l.port(), { headers: { host: "x" } })).status).toBe(200);
  });

  it("redirects every request to HTTPS with httpsRedirect", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(config(engine, up.port, "httpsRedirect: {port: 8443}"));
    const r = await call(l.port(), { path: "/a/b?c=d", headers: { host: "shop.example:8080" } });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe("https://shop.example:8443/a/b?c=d");
    expect(up.seen).toHaveLength(0);
    // Answered by lintel, and counted as the server's requests.
    const m = await metricsJson(l);
    const server = `rt/edge/server/127.0.0.1/${l.port()}`;
    expect([m[`${server}/requests`], m[`${server}/success`], m[`${server}/status/308`]]).toEqual([
      1, 1, 1,
    ]);
    const standard = await startLintel(config(engine, up.port, "httpsRedirect: {status: '301'}"));
    const r2 = await call(standard.port(), { path: "/", headers: { host: "shop.example" } });
    expect([r2.status, r2.headers.location]).toEqual([301, "https://shop.example/"]);
  });
});

describe.each(ENGINES)("PROXY protocol v2 on the %s engine", (engine) => {
  const header = encodeProxyV2(
    { address: "203.0.113.7", port: 5555 },
    { address: "127.0.0.1", port: 80 },
  );

  it("takes the client address from the header of an allowed peer", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(
        engine,
        up.port,
        "clearContext: true\nproxyProtocol: v2\nproxyProtocolFrom: [127.0.0.1]",
      ),
    );
    const r = await raw(
      l.port(),
      Buffer.concat([
        header,
        Buffer.from(
          "GET /x HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n",
        ),
      ]),
      3000,
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 200/);
    expect(up.seen[0]!.headers["x-forwarded-for"]).toBe("203.0.113.7");
  });

  it("refuses a connection without the header", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(engine, up.port, "proxyProtocol: v2\nproxyProtocolFrom: [127.0.0.1]"),
    );
    const r = await raw(l.port(), "GET /x HTTP/1.1\r\nHost: shop\r\n\r\n", 2000);
    expect(r.text).toBe("");
    expect(r.closed).toBe(true);
    expect(up.seen).toHaveLength(0);
  });

  it("refuses a peer that is not in proxyProtocolFrom, even with a header", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(engine, up.port, "proxyProtocol: v2\nproxyProtocolFrom: [10.0.0.0/8]"),
    );
    const r = await raw(
      l.port(),
      Buffer.concat([header, Buffer.from("GET /x HTTP/1.1\r\nHost: shop\r\n\r\n")]),
      2000,
    );
    expect(r.text).toBe("");
    expect(r.closed).toBe(true);
    expect(up.seen).toHaveLength(0);
  });

  it("ignores a PROXY header where the protocol is not configured (the peer's own address counts)", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(config(engine, up.port, "clearContext: true"));
    const r = await raw(
      l.port(),
      Buffer.concat([
        header,
        Buffer.from("GET /x HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"),
      ]),
      2000,
    );
    // node answers the unexpected bytes with 400; uws reads and discards the header.
    if (r.text.startsWith("HTTP/1.1 200"))
      expect(up.seen[0]!.headers["x-forwarded-for"]).toBe("127.0.0.1");
    else expect(up.seen).toHaveLength(0);
  });
});

describe("PROXY protocol v1 on the net engine", () => {
  const src = { address: "203.0.113.7", port: 5555 };
  const dst = { address: "127.0.0.1", port: 80 };
  const request = Buffer.from(
    "GET /x HTTP/1.1\r\nHost: shop\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n",
  );

  it("v1 takes the client address from the line; any takes either version", async () => {
    const up = await startUpstream("up");
    const v1 = await startLintel(
      config(
        "net",
        up.port,
        "clearContext: true\nproxyProtocol: v1\nproxyProtocolFrom: [127.0.0.1]",
      ),
    );
    const any = await startLintel(
      config(
        "net",
        up.port,
        "clearContext: true\nproxyProtocol: any\nproxyProtocolFrom: [127.0.0.1]",
      ),
    );
    const sent: [number, Buffer][] = [
      [v1.port(), encodeProxyV1(src, dst)],
      [any.port(), encodeProxyV1({ ...src, address: "2001:db8::7" }, { ...dst, address: "::1" })],
      [any.port(), encodeProxyV2({ ...src, address: "198.51.100.9" }, dst)],
    ];
    for (const [port, header] of sent) {
      const r = await raw(port, Buffer.concat([header, request]), 3000);
      expect(r.text).toMatch(/^HTTP\/1\.1 200/);
    }
    expect(up.seen.map((s) => s.headers["x-forwarded-for"])).toEqual([
      "203.0.113.7",
      "2001:db8::7",
      "198.51.100.9",
    ]);
  });

  it("v1 closes a connection whose header is v2, malformed, or missing", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config("net", up.port, "proxyProtocol: v1\nproxyProtocolFrom: [127.0.0.1]"),
    );
    for (const first of [
      encodeProxyV2(src, dst),
      Buffer.from("PROXY TCP4 203.0.113.700 127.0.0.1 5555 80\r\n"),
      Buffer.alloc(0),
    ]) {
      const r = await raw(l.port(), Buffer.concat([first, request]), 2000);
      expect(r.text).toBe("");
      expect(r.closed).toBe(true);
    }
    expect(up.seen).toHaveLength(0);
  });

  it.each([
    [
      "v1 on a uws server",
      "engine: uws, proxyProtocol: v1, proxyProtocolFrom: [127.0.0.1]",
      "proxyProtocol: v1 needs engine: net (uws reads only PROXY v2)",
    ],
    [
      "any on a uws server",
      "engine: uws, proxyProtocol: any, proxyProtocolFrom: [127.0.0.1]",
      "proxyProtocol: any needs engine: net",
    ],
    ["a version that does not exist", "proxyProtocol: v3, proxyProtocolFrom: [127.0.0.1]", "v1"],
    ["v1 without proxyProtocolFrom", "proxyProtocol: v1", "proxyProtocol needs proxyProtocolFrom"],
  ])("%s is a config error", async (_, server, message) => {
    const yaml = `routers:\n- protocol: http\n  servers:\n  - {port: 0, ${server}}\n`;
    expect(await configErrors(yaml)).toContain(message);
  });
});
