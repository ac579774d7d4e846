// Address ranges (CIDRs) from config, matched against peer addresses. IPv4 peers that
// arrive as IPv4-mapped IPv6 (`::ffff:10.0.0.1`) match IPv4 ranges. It runs per request
// (access rules, trusted proxies): dotted IPv4 is matched in plain arithmetic on the
// address's 32 bits, anything else (IPv6, mapped IPv4 in hex) by node's BlockList, which
// holds every range, with the answers for recent addresses kept.

import { BlockList, isIP } from "node:net";

/** IPv6 answers kept; the memo starts again when full. */
const V6_MEMO = 4096;

export class CidrSet {
  private readonly list = new BlockList();
  /** IPv4 ranges as [network, mask] pairs, flat. */
  private readonly v4: number[] = [];
  private readonly memo = new Map<string, boolean>();
  readonly size: number;

  constructor(readonly cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, bits] = parseCidr(c);
      const v6 = isIP(addr) === 6;
      this.list.addSubnet(addr, bits, v6 ? "ipv6" : "ipv4");
      if (!v6) {
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        this.v4.push((ipv4Bits(addr) & mask) >>> 0, mask);
      }
    }
    this.size = cidrs.length;
  }

  has(address: string): boolean {
    if (this.size === 0 || address === "") return false;
    const mapped = address.startsWith("::ffff:") ? ipv4Bits(address.slice(7)) : -1;
    const bits = mapped >= 0 ? mapped : ipv4Bits(address);
    if (bits >= 0) {
      const v4 = this.v4;
      for (let i = 0; i < v4.length; i += 2) if ((bits & v4[i + 1]!) >>> 0 === v4[i]) return true;
      return false;
    }
    let known = this.memo.get(address);
    if (known === undefined) {
      known = isIP(address) === 6 && this.list.check(address, "ipv6");
      if (this.memo.size >= V6_MEMO) this.memo.clear();
      this.memo.set(address, known);
    }
    return known;
  }
}

/** A dotted-quad IPv4 address as an unsigned 32-bit number, or -1 when it is not one. */
function ipv4Bits(s: string): number {
  let out = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      out = out * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // No leading zeros (as isIP): "010" is not an IPv4 address.
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return out * 256 + part;
}

/** `10.0.0.0/8` → ["10.0.0.0", 8]; a bare address is a /32 or /128. Throws on anything else. */
export function parseCidr(text: string): [string, number] {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v = isIP(addr);
  if (v === 0) throw new Error(`"${text}" is not an IP address or CIDR range`);
  const max = v === 6 ? 128 : 32;
  if (slash < 0) return [addr, max];
  const bitsText = text.slice(slash + 1);
  const bits = Number(bitsText);
  if (!/^\d{1,3}$/.test(bitsText) || bits > max)
    throw new Error(`"${text}": the prefix length must be 0 to ${max}`);
  return [addr, bits];
}
