// CIDR sets: IPv4 by arithmetic (mapped IPv6 too), IPv6 through BlockList, and what is
// not an address never matching.

import { isIP } from "node:net";
import { describe, expect, it } from "vitest";
import { CidrSet } from "../../gateway/http/cidr.js";

describe("a CIDR set", () => {
  it("matches IPv4 ranges, single addresses and /0, also IPv4-mapped IPv6", () => {
    const s = new CidrSet(["10.0.0.0/8", "192.168.1.7", "172.16.0.0/12"]);
    expect(s.has("10.255.1.2")).toBe(true);
    expect(s.has("11.0.0.1")).toBe(false);
    expect(s.has("192.168.1.7")).toBe(true);
    expect(s.has("192.168.1.8")).toBe(false);
    expect(s.has("172.31.255.255")).toBe(true);
    expect(s.has("172.32.0.0")).toBe(false);
    expect(s.has("::ffff:10.1.2.3")).toBe(true);
    // Mapped IPv4 written in hex is IPv6 text: BlockList still knows it as 10.1.2.3.
    expect(s.has("::ffff:a01:203")).toBe(true);
    expect(s.has("::ffff:b01:203")).toBe(false);
    expect(new CidrSet(["0.0.0.0/0"]).has("203.0.113.9")).toBe(true);
  });

  it("matches IPv6 ranges, and never what is not an address", () => {
    const s = new CidrSet(["2001:db8::/32", "10.0.0.0/8"]);
    expect(s.has("2001:db8::1")).toBe(true);
    expect(s.has("2001:db9::1")).toBe(false);
    expect(s.has("2001:db8::1")).toBe(true);
    for (const bad of ["", "10.0.0", "10.0.0.0.1", "010.0.0.1", "10.0.0.256", "x", "10..0.1"])
      expect(s.has(bad)).toBe(false);
  });

  it("agrees with node's parser on what an IPv4 address is (seeded sample)", () => {
    const s = new CidrSet(["0.0.0.0/0"]);
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed;
    };
    const chars = "0123456789.";
    for (let n = 0; n < 5000; n++) {
      let text = "";
      const len = 1 + (next() % 16);
      for (let i = 0; i < len; i++) text += chars[next() % chars.length];
      expect(s.has(text), text).toBe(isIP(text) === 4);
    }
  });
});
