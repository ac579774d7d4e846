import { describe, expect, it } from "vitest";
import { parseAddressFile } from "../../gateway/namers/address-file.js";
import { addrBound } from "../../gateway/naming/index.js";
import { addrText } from "./helpers.js";

const addrs = (text: string) => addrText(addrBound(parseAddressFile(text).addresses));
const problems = (text: string) =>
  parseAddressFile(text).problems.map((p) => `${p.line}: ${p.message}`);

describe("parseAddressFile", () => {
  it("reads `host port` lines with weight 1 and no metadata", () => {
    const r = parseAddressFile("192.0.2.1 8080\n192.0.2.2 9090\n");
    expect(r.problems).toEqual([]);
    expect(r.addresses.map((a) => [a.host, a.port, a.weight, a.meta])).toEqual([
      ["192.0.2.1", 8080, 1, {}],
      ["192.0.2.2", 9090, 1, {}],
    ]);
  });

  it("reads `host port * weight` lines, fractional weights included", () => {
    expect(addrs("192.0.2.1 8080 * 2\n192.0.2.2 8080 * 0.5\n192.0.2.3 8080 * .25\n")).toBe(
      "192.0.2.1:8080*2,192.0.2.2:8080*0.5,192.0.2.3:8080*0.25",
    );
  });

  it("accepts weight 0", () => {
    expect(addrs("192.0.2.1 80 * 0")).toBe("192.0.2.1:80*0");
  });

  it("skips comments, blank lines and surrounding whitespace", () => {
    const text = [
      "# the web tier",
      "",
      "   ",
      "  192.0.2.1   8080   ",
      "192.0.2.2\t8081 # canary",
      "\t# indented comment",
      "192.0.2.3 8082 * 3#no space before the comment",
    ].join("\n");
    const r = parseAddressFile(text);
    expect(r.problems).toEqual([]);
    expect(addrs(text)).toBe("192.0.2.1:8080*1,192.0.2.2:8081*1,192.0.2.3:8082*3");
  });

  it("accepts CRLF line endings", () => {
    const r = parseAddressFile("192.0.2.1 80\r\n192.0.2.2 81 * 2\r\n");
    expect(r.problems).toEqual([]);
    expect(addrs("192.0.2.1 80\r\n192.0.2.2 81 * 2\r\n")).toBe("192.0.2.1:80*1,192.0.2.2:81*2");
  });

  it("accepts IPv6 addresses and host names", () => {
    const r = parseAddressFile("::1 8080\n2001:db8::7 443 * 2\nfe80::1%eth0 80\nweb-1.internal 80");
    expect(r.problems).toEqual([]);
    expect(r.addresses.map((a) => `${a.host} ${a.port} ${a.weight}`)).toEqual([
      "::1 8080 1",
      "2001:db8::7 443 2",
      "fe80::1%eth0 80 1",
      "web-1.internal 80 1",
    ]);
  });

  it("accepts the port range ends 1 and 65535", () => {
    expect(addrs("192.0.2.1 1\n192.0.2.1 65535")).toBe("192.0.2.1:1*1,192.0.2.1:65535*1");
  });

  it("reports a line with the wrong number of fields", () => {
    expect(problems("192.0.2.1\n192.0.2.1 80 *\n192.0.2.1 80 * 2 extra")).toEqual([
      '1: expected `host port` or `host port * weight`: "192.0.2.1"',
      '2: expected `host port` or `host port * weight`: "192.0.2.1 80 *"',
      '3: expected `host port` or `host port * weight`: "192.0.2.1 80 * 2 extra"',
    ]);
  });

  it("reports a bad host", () => {
    expect(problems("192.0.2.1/24 80\nhttp://x 80")).toEqual([
      '1: not a host name or IP address: "192.0.2.1/24 80"',
      '2: not a host name or IP address: "http://x 80"',
    ]);
  });

  it("reports a bad port: not a number, 0, too large, negative", () => {
    expect(problems("h 80a\nh 0\nh 65536\nh -1\nh 123456")).toEqual([
      '1: not a port number (1-65535): "h 80a"',
      '2: not a port number (1-65535): "h 0"',
      '3: not a port number (1-65535): "h 65536"',
      '4: not a port number (1-65535): "h -1"',
      '5: not a port number (1-65535): "h 123456"',
    ]);
  });

  it("reports a bad weight: wrong separator, negative, not a number, exponent", () => {
    const msg = "expected `* weight` with a non-negative number after the port";
    expect(problems("h 80 x 2\nh 80 * -1\nh 80 * two\nh 80 * 1e3\nh 80 * 1.")).toEqual([
      `1: ${msg}: "h 80 x 2"`,
      `2: ${msg}: "h 80 * -1"`,
      `3: ${msg}: "h 80 * two"`,
      `4: ${msg}: "h 80 * 1e3"`,
      `5: ${msg}: "h 80 * 1."`,
    ]);
  });

  it("counts comment and blank lines in the reported line numbers", () => {
    expect(problems("# header\n\n192.0.2.1 80\n  # note\nbad")).toEqual([
      '5: expected `host port` or `host port * weight`: "bad"',
    ]);
  });

  it("keeps the good lines when some lines are bad", () => {
    const text = "192.0.2.1 80\nnonsense line here\n192.0.2.2 0\n192.0.2.3 81 * 2\n";
    const r = parseAddressFile(text);
    expect(r.problems.map((p) => p.line)).toEqual([2, 3]);
    expect(addrText(addrBound(r.addresses))).toBe("192.0.2.1:80*1,192.0.2.3:81*2");
  });

  it("gives nothing and no problems for an empty or comment-only file", () => {
    expect(parseAddressFile("")).toEqual({ addresses: [], problems: [] });
    expect(parseAddressFile("# nothing here\n\n")).toEqual({ addresses: [], problems: [] });
  });

  it("keeps duplicate lines as given", () => {
    expect(parseAddressFile("192.0.2.1 80\n192.0.2.1 80").addresses).toHaveLength(2);
  });
});
