// The PROXY protocol, so the client's address survives a TCP proxy in front of lintel:
// version 2 (the binary header HAProxy's send-proxy-v2 writes before the client's bytes)
// and version 1 (the text line of send-proxy), as HAProxy's proxy-protocol.txt defines
// them. A server accepts the versions its config names; with both, the first byte tells.

import { isIPv4, isIPv6 } from "node:net";
import type { CidrSet } from "../http/cidr.js";

const SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** Signature, version/command, family, length. */
const FIXED_BYTES = 16;
/** The address block plus TLVs are bounded by the 16-bit length; refuse oversized ones. */
const MAX_HEADER_BYTES = FIXED_BYTES + 536;

export interface ProxyInfo {
  /** The client HAProxy accepted (undefined for a LOCAL header, e.g. its health checks). */
  readonly source?: { readonly address: string; readonly port: number };
}

export type ProxyParse =
  | { readonly status: "more" }
  | { readonly status: "error"; readonly reason: string }
  | { readonly status: "ok"; readonly info: ProxyInfo; readonly rest: Buffer };

function ipv6(b: Buffer, at: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(at + i).toString(16));
  return canonicalIpv6(parts.join(":"));
}

/** The URL parser prints IPv6 in its canonical, compressed form (v1 and v2 alike). */
function canonicalIpv6(address: string): string {
  return new URL(`http://[${address}]`).hostname.slice(1, -1);
}

/** The PROXY protocol versions a server accepts (`proxyProtocol` in its config). */
export type ProxyVersion = "v1" | "v2" | "any";

/** A server's PROXY protocol: the versions it reads, and the only peers that may send one. */
export interface ProxyProtocol {
  readonly version: ProxyVersion;
  readonly from: CidrSet;
}

/** Reads the PROXY header `accepted` allows from the start of `data`. */
export function parseProxyHeader(data: Buffer, accepted: ProxyVersion): ProxyParse {
  // With both, one byte decides: v2's signature starts with CR, v1's line with "P".
  const v2 = accepted === "any" ? data[0] === SIGNATURE[0] : accepted === "v2";
  return v2 ? parseProxyV2(data) : parseProxyV1(data);
}

const V1_PREFIX = Buffer.from("PROXY ");
/** The longest v1 line, CRLF included (proxy-protocol.txt §2.1). */
const V1_MAX_BYTES = 107;

/** Reads a PROXY v1 line ("PROXY TCP4 <src> <dst> <sport> <dport>\r\n") from `data`. */
export function parseProxyV1(data: Buffer): ProxyParse {
  const prefixLen = Math.min(data.length, V1_PREFIX.length);
  if (data.subarray(0, prefixLen).compare(V1_PREFIX, 0, prefixLen) !== 0) {
    return {
      status: "error",
      reason: "the connection does not start with a PROXY protocol v1 line",
    };
  }
  const cr = data.indexOf(13, V1_PREFIX.length);
  if (cr === -1 || cr + 1 >= data.length) {
    return data.length >= V1_MAX_BYTES
      ? { status: "error", reason: "the PROXY line is longer than 107 bytes" }
      : { status: "more" };
  }
  if (data[cr + 1] !== 10 || cr + 2 > V1_MAX_BYTES)
    return { status: "error", reason: "the PROXY line does not end with CRLF within 107 bytes" };
  const rest = data.subarray(cr + 2);
  const fields = data.toString("latin1", V1_PREFIX.length, cr).split(" ");
  // UNKNOWN: the proxy does not know the addresses (a health check); the rest is ignored.
  if (fields[0] === "UNKNOWN") return { status: "ok", info: {}, rest };
  if (fields.length !== 5)
    return { status: "error", reason: "a PROXY v1 line has five fields after PROXY" };
  const [family, src, dst, sport, dport] = fields as [string, string, string, string, string];
  const isAddress = family === "TCP4" ? isIPv4 : family === "TCP6" ? isIPv6 : undefined;
  if (isAddress === undefined)
    return {
      status: "error",
      reason: `PROXY v1 protocol ${JSON.stringify(family)} is not TCP4, TCP6 or UNKNOWN`,
    };
  if (!isAddress(src) || !isAddress(dst))
    return { status: "error", reason: `a PROXY v1 address is not a ${family} address` };
  const port = v1Port(sport);
  if (port === undefined || v1Port(dport) === undefined)
    return { status: "error", reason: "a PROXY v1 port is not a number from 0 to 65535" };
  const address = family === "TCP4" ? src : canonicalIpv6(src);
  return { status: "ok", info: { source: { address, port } }, rest };
}

/** A v1 port: decimal digits, no sign or leading zero, at most 65535. */
function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** Reads a PROXY v2 header from the start of `data`. */
export function parseProxyV2(data: Buffer): ProxyParse {
  const sigLen = Math.min(data.length, SIGNATURE.length);
  if (data.subarray(0, sigLen).compare(SIGNATURE, 0, sigLen) !== 0) {
    return {
      status: "error",
      reason: "the connection does not start with a PROXY protocol v2 header",
    };
  }
  if (data.length < FIXED_BYTES) return { status: "more" };
  const verCmd = data[12]!;
  if (verCmd >> 4 !== 2)
    return { status: "error", reason: `PROXY protocol version ${verCmd >> 4} is not supported` };
  const command = verCmd & 0x0f;
  const family = data[13]!;
  const len = data.readUInt16BE(14);
  if (FIXED_BYTES + len > MAX_HEADER_BYTES)
    return { status: "error", reason: "the PROXY header is too long" };
  if (data.length < FIXED_BYTES + len) return { status: "more" };
  const rest = data.subarray(FIXED_BYTES + len);
  if (command === 0x0) return { status: "ok", info: {}, rest };
  if (command !== 0x1) return { status: "error", reason: `unknown PROXY command ${command}` };
  const at = FIXED_BYTES;
  switch (family) {
    case 0x11: // TCP over IPv4
      if (len < 12) return { status: "error", reason: "short IPv4 address block" };
      return {
        status: "ok",
        info: {
          source: {
            address: `${data[at]}.${data[at + 1]}.${data[at + 2]}.${data[at + 3]}`,
            port: data.readUInt16BE(at + 8),
          },
        },
        rest,
      };
    case 0x21: // TCP over IPv6
      if (len < 36) return { status: "error", reason: "short IPv6 address block" };
      return {
        status: "ok",
        info: { source: { address: ipv6(data, at), port: data.readUInt16BE(at + 32) } },
        rest,
      };
    case 0x00: // UNSPEC: the sender does not know the addresses
      return { status: "ok", info: {}, rest };
    default:
      return {
        status: "error",
        reason: `PROXY address family 0x${family.toString(16)} is not supported`,
      };
  }
}

/** A PROXY v1 line, as HAProxy's send-proxy writes it (for tests and tools). */
export function encodeProxyV1(
  src: { address: string; port: number },
  dst: { address: string; port: number },
): Buffer {
  const family = src.address.includes(":") ? "TCP6" : "TCP4";
  return Buffer.from(
    `PROXY ${family} ${src.address} ${dst.address} ${src.port} ${dst.port}\r\n`,
    "latin1",
  );
}

/** A PROXY v2 header, as HAProxy writes it (for tests and tools). */
export function encodeProxyV2(
  src: { address: string; port: number },
  dst: { address: string; port: number },
): Buffer {
  const v4 = !src.address.includes(":");
  const body = Buffer.alloc(v4 ? 12 : 36);
  const put = (addr: string, off: number) => {
    const parts = v4 ? addr.split(".").map(Number) : expandIpv6(addr);
    for (let i = 0; i < parts.length; i++) {
      if (v4) body.writeUInt8(parts[i]!, off + i);
      else body.writeUInt16BE(parts[i]!, off + i * 2);
    }
  };
  put(src.address, 0);
  put(dst.address, v4 ? 4 : 16);
  body.writeUInt16BE(src.port, v4 ? 8 : 32);
  body.writeUInt16BE(dst.port, v4 ? 10 : 34);
  const head = Buffer.alloc(4);
  head[0] = 0x21;
  head[1] = v4 ? 0x11 : 0x21;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIGNATURE, head, body]);
}

function expandIpv6(addr: string): number[] {
  const [left, right] = addr.split("::") as [string, string | undefined];
  const l = left ? left.split(":") : [];
  const r = right ? right.split(":") : [];
  const zeros = new Array(8 - l.length - r.length).fill("0");
  return [...l, ...(right !== undefined ? zeros : []), ...r].map((h) => Number.parseInt(h, 16));
}
