import { describe, expect, it } from "vitest";
import { ProxyError } from "../../gateway/http/errors.js";
import { EgressPolicy, requestHost } from "../../gateway/routing/egress-policy.js";

const policy = (allowHosts?: string[], allowCidrs: string[] = []) =>
  new EgressPolicy({ allowHosts, allowCidrs, forwardL5dHeaders: false });

function refusal(f: () => void): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(ProxyError);
    expect((e as ProxyError).status).toBe(403);
    return (e as ProxyError).message;
  }
}

describe("EgressPolicy.checkAddress", () => {
  it.each([
    "127.0.0.1",
    "127.255.0.9",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    // IPv4-mapped IPv6, in both spellings: the embedded address counts.
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
  ])("refuses %s", (ip) => {
    expect(refusal(() => policy().checkAddress(ip, "x.example.com"))).toMatch(/is not allowed/);
  });

  it.each(["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])(
    "allows the public address %s",
    (ip) => {
      expect(refusal(() => policy().checkAddress(ip, undefined))).toBeUndefined();
    },
  );

  it("allows what allowCidrs lists, and only that", () => {
    const p = policy(undefined, ["10.1.0.0/16", "fd00::/8"]);
    expect(refusal(() => p.checkAddress("10.1.2.3", undefined))).toBeUndefined();
    expect(refusal(() => p.checkAddress("fd00::5", undefined))).toBeUndefined();
    expect(refusal(() => p.checkAddress("10.2.0.1", undefined))).toMatch(/private/);
  });

  it("names the host and the address, and says how to allow it", () => {
    expect(refusal(() => policy().checkAddress("10.0.0.7", "internal.example.com"))).toBe(
      "egress to internal.example.com (10.0.0.7) is not allowed: private (RFC 1918) address; add it to egress.allowCidrs to allow it",
    );
  });

  it("refuses a destination that is not an address yet", () => {
    expect(refusal(() => policy().checkAddress("api.example.com", undefined))).toMatch(
      /must be resolved to addresses first/,
    );
  });
});

describe("EgressPolicy.checkHost", () => {
  it("allows any name without a list", () => {
    expect(refusal(() => policy().checkHost("anything.example"))).toBeUndefined();
    expect(refusal(() => policy().checkHost(undefined))).toBeUndefined();
  });

  it("matches exact names and *.domain (any depth, not the domain itself), ignoring case and a final dot", () => {
    const p = policy(["api.example.com", "*.stripe.com"]);
    for (const ok of [
      "api.example.com",
      "API.Example.COM",
      "api.example.com.",
      "a.stripe.com",
      "a.b.stripe.com",
    ]) {
      expect(
        refusal(() => p.checkHost(ok)),
        ok,
      ).toBeUndefined();
    }
    for (const bad of ["stripe.com", "xstripe.com", "example.com", "api.example.com.evil.net"]) {
      expect(
        refusal(() => p.checkHost(bad)),
        bad,
      ).toMatch(/not in egress.allowHosts/);
    }
    expect(refusal(() => p.checkHost(undefined))).toMatch(/names none/);
  });
});

describe("requestHost", () => {
  it.each([
    ["api.example.com", "api.example.com"],
    ["api.example.com:8443", "api.example.com"],
    ["[2001:db8::1]:443", "2001:db8::1"],
    ["[2001:db8::1]", "2001:db8::1"],
    [undefined, undefined],
  ])("%s → %s", (header, host) => {
    expect(requestHost(header)).toBe(host);
  });
});
