// Unit tests: CIDR sets, X-Forwarded-* / Forwarded computation, and the PROXY v1 and v2
// parsers.

import { describe, expect, it } from "vitest";
import { CidrSet, parseCidr } from "../../gateway/http/cidr.js";
import {
  type ForwardedPolicy,
  forwardedHeaders,
  type HopInfo,
} from "../../gateway/http/forwarded.js";
import {
  encodeProxyV1,
  encodeProxyV2,
  parseProxyHeader,
  parseProxyV1,
  parseProxyV2,
} from "../../gateway/server/proxy-protocol.js";

describe("CidrSet", () => {
  it("matches IPv4 and IPv6 ranges, bare addresses, and IPv4-mapped IPv6 peers", () => {
    const s = new CidrSet(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]);
    expect(s.has("10.1.2.3")).toBe(true);
    expect(s.has("::ffff:10.1.2.3")).toBe(true);
    expect(s.has("192.0.2.7")).toBe(true);
    expect(s.has("192.0.2.8")).toBe(false);
    expect(s.has("2001:db8::1")).toBe(true);
    expect(s.has("2001:db9::1")).toBe(false);
    expect(s.has("")).toBe(false);
    expect(new CidrSet([]).has("10.0.0.1")).toBe(false);
  });

  it("refuses what is not a CIDR", () => {
    expect(() => parseCidr("10.0.0.0/33")).toThrow(/prefix length must be 0 to 32/);
    expect(() => parseCidr("example.com")).toThrow(/not an IP address or CIDR/);
    expect(() => parseCidr("10.0.0.0/x")).toThrow(/prefix length/);
  });
});

const hop = (over: Partial<HopInfo> = {}): HopInfo => ({
  peer: "203.0.113.9",
  peerPort: 40000,
  local: "192.0.2.1",
  localPort: 443,
  secure: true,
  host: "shop.example",
  ...over,
});

const policy = (over: Partial<ForwardedPolicy> = {}): ForwardedPolicy => ({
  xForwarded: true,
  forwarded: undefined,
  trustedProxies: new CidrSet(["10.0.0.0/8"]),
  routerLabel: "edge",
  ...over,
});

describe("forwardedHeaders", () => {
  it("overwrites what an untrusted peer sent", () => {
    const received = [
      "x-forwarded-for",
      "1.2.3.4",
      "x-forwarded-proto",
      "http",
      "x-forwarded-host",
      "evil",
    ];
    const r = forwardedHeaders(received, hop(), policy());
    expect(r.headers).toEqual([
      "x-forwarded-for",
      "203.0.113.9",
      "x-forwarded-proto",
      "https",
      "x-forwarded-host",
      "shop.example",
    ]);
    expect(r.client).toBe("203.0.113.9");
  });

  it("keeps and extends what a trusted proxy sent, and finds the client right to left", () => {
    const received = [
      "x-forwarded-for",
      "198.51.100.4, 10.0.0.5",
      "x-forwarded-proto",
      "https",
      "x-forwarded-host",
      "shop.example",
    ];
    const r = forwardedHeaders(received, hop({ peer: "10.0.0.9", secure: false }), policy());
    expect(r.headers).toEqual([
      "x-forwarded-for",
      "198.51.100.4, 10.0.0.5, 10.0.0.9",
      "x-forwarded-proto",
      "https",
      "x-forwarded-host",
      "shop.example",
    ]);
    expect(r.client).toBe("198.51.100.4");
  });

  it("does not let a client hide behind a forged address placed left of an untrusted one", () => {
    const received = ["x-forwarded-for", "10.9.9.9, 198.51.100.4"];
    const r = forwardedHeaders(received, hop({ peer: "10.0.0.9" }), policy());
    expect(r.client).toBe("198.51.100.4");
  });

  it("writes RFC 7239 Forwarded with the configured labelers, quoting IPv6 and ports", () => {
    const p = policy({
      xForwarded: false,
      forwarded: { by: { kind: "ip:port" }, for: { kind: "ip" } },
    });
    const r = forwardedHeaders(["forwarded", "for=1.2.3.4"], hop({ peer: "2001:db8::7" }), p);
    expect(r.headers).toEqual([
      "forwarded",
      'for="[2001:db8::7]";by="192.0.2.1:443";proto=https;host=shop.example',
    ]);
    const router = forwardedHeaders(
      [],
      hop(),
      policy({
        xForwarded: false,
        forwarded: { by: { kind: "router" }, for: { kind: "static", label: "_hidden" } },
      }),
    );
    expect(router.headers).toEqual([
      "forwarded",
      "for=_hidden;by=_edge;proto=https;host=shop.example",
    ]);
  });
});

describe("PROXY protocol v2", () => {
  it("reads the client address of an IPv4 and an IPv6 header, and returns the bytes after it", () => {
    const v4 = encodeProxyV2(
      { address: "203.0.113.7", port: 12345 },
      { address: "192.0.2.1", port: 443 },
    );
    const r = parseProxyV2(Buffer.concat([v4, Buffer.from("GET /")]));
    expect(r).toMatchObject({
      status: "ok",
      info: { source: { address: "203.0.113.7", port: 12345 } },
    });
    expect(r.status === "ok" && r.rest.toString()).toBe("GET /");
    const v6 = encodeProxyV2(
      { address: "2001:db8::7", port: 1 },
      { address: "2001:db8::1", port: 443 },
    );
    expect(parseProxyV2(v6)).toMatchObject({
      status: "ok",
      info: { source: { address: "2001:db8::7", port: 1 } },
    });
  });

  it("asks for more bytes while the header is incomplete, at any split point", () => {
    const h = encodeProxyV2({ address: "203.0.113.7", port: 1 }, { address: "192.0.2.1", port: 2 });
    for (let i = 1; i < h.length; i++) expect(parseProxyV2(h.subarray(0, i)).status).toBe("more");
  });

  it("refuses a connection that does not start with the signature (including PROXY v1 text)", () => {
    expect(parseProxyV2(Buffer.from("GET / HTTP/1.1\r\n"))).toMatchObject({ status: "error" });
    expect(parseProxyV2(Buffer.from("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"))).toMatchObject({
      status: "error",
    });
  });

  it("treats a LOCAL command (HAProxy's own health checks) as having no client", () => {
    const h = encodeProxyV2({ address: "203.0.113.7", port: 1 }, { address: "192.0.2.1", port: 2 });
    h[12] = 0x20;
    expect(parseProxyV2(h)).toMatchObject({ status: "ok", info: {} });
  });

  it("refuses an unknown version or family", () => {
    const h = encodeProxyV2({ address: "203.0.113.7", port: 1 }, { address: "192.0.2.1", port: 2 });
    const badVersion = Buffer.from(h);
    badVersion[12] = 0x31;
    expect(parseProxyV2(badVersion)).toMatchObject({ status: "error", reason: /version 3/ });
    const badFamily = Buffer.from(h);
    badFamily[13] = 0x31;
    expect(parseProxyV2(badFamily)).toMatchObject({ status: "error", reason: /family/ });
  });
});

describe("PROXY protocol v1", () => {
  it("reads the client address of a TCP4 and a TCP6 line, and returns the bytes after it", () => {
    const v4 = encodeProxyV1(
      { address: "203.0.113.7", port: 12345 },
      { address: "192.0.2.1", port: 443 },
    );
    expect(v4.toString()).toBe("PROXY TCP4 203.0.113.7 192.0.2.1 12345 443\r\n");
    const r = parseProxyV1(Buffer.concat([v4, Buffer.from("GET /")]));
    expect(r).toMatchObject({
      status: "ok",
      info: { source: { address: "203.0.113.7", port: 12345 } },
    });
    expect(r.status === "ok" && r.rest.toString()).toBe("GET /");
    // Written out in full, read back in the canonical form v2 gives too.
    const v6 = Buffer.from("PROXY TCP6 2001:db8:0:0:0:0:0:7 2001:db8::1 1 443\r\n");
    expect(parseProxyV1(v6)).toMatchObject({
      status: "ok",
      info: { source: { address: "2001:db8::7", port: 1 } },
    });
  });

  it("asks for more bytes while the line is incomplete, at any split point", () => {
    const h = encodeProxyV1({ address: "203.0.113.7", port: 1 }, { address: "192.0.2.1", port: 2 });
    for (let i = 1; i < h.length; i++) expect(parseProxyV1(h.subarray(0, i)).status).toBe("more");
    expect(parseProxyV1(h).status).toBe("ok");
  });

  it("treats UNKNOWN (a proxy's health check) as having no client", () => {
    expect(parseProxyV1(Buffer.from("PROXY UNKNOWN\r\nGET /"))).toMatchObject({
      status: "ok",
      info: {},
    });
    expect(
      parseProxyV1(Buffer.from("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n")),
    ).toMatchObject({ status: "ok", info: {} });
  });

  it("refuses what is not a well-formed line, naming the fault", () => {
    const bad: [string, RegExp][] = [
      ["GET / HTTP/1.1\r\n", /does not start with a PROXY protocol v1 line/],
      ["PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", /not TCP4, TCP6 or UNKNOWN/],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", /five fields/],
      ["PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", /five fields/],
      ["PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", /not a TCP4 address/],
      ["PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", /not a TCP4 address/],
      ["PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n", /not a TCP6 address/],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", /port/],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", /port/],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", /port/],
      ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", /CRLF/],
      [`PROXY UNKNOWN ${"x".repeat(100)}\r\n`, /107 bytes/],
      [`PROXY UNKNOWN ${"x".repeat(100)}`, /107 bytes/],
    ];
    for (const [line, reason] of bad)
      expect({ line, r: parseProxyV1(Buffer.from(line)) }).toMatchObject({
        line,
        r: { status: "error", reason },
      });
  });

  it("takes only the versions a server accepts; with both, the first byte tells", () => {
    const src = { address: "203.0.113.7", port: 7 };
    const dst = { address: "192.0.2.1", port: 443 };
    const v1 = encodeProxyV1(src, dst);
    const v2 = encodeProxyV2(src, dst);
    const ok = { status: "ok", info: { source: src } };
    expect(parseProxyHeader(v1, "v1")).toMatchObject(ok);
    expect(parseProxyHeader(v2, "v2")).toMatchObject(ok);
    expect(parseProxyHeader(v1, "any")).toMatchObject(ok);
    expect(parseProxyHeader(v2, "any")).toMatchObject(ok);
    expect(parseProxyHeader(v1, "v2")).toMatchObject({ status: "error" });
    expect(parseProxyHeader(v2, "v1")).toMatchObject({ status: "error" });
    expect(parseProxyHeader(Buffer.alloc(0), "any")).toMatchObject({ status: "more" });
    expect(parseProxyHeader(Buffer.from("GET / HTTP/1.1\r\n"), "any")).toMatchObject({
      status: "error",
    });
  });
});
