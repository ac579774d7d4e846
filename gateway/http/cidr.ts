// Address ranges (CIDRs) from config, matched against peer addresses. IPv4 peers that
// arrive as IPv4-mapped IPv6 (`::ffff:10.0.0.1`) match IPv4 ranges.

import { BlockList, isIP } from "node:net";

export class CidrSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(readonly cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, bits] = parseCidr(c);
      this.list.addSubnet(addr, bits, isIP(addr) === 6 ? "ipv6" : "ipv4");
    }
    this.size = cidrs.length;
  }

  has(address: string): boolean {
    if (this.size === 0 || address === "") return false;
    const a =
      address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const v = isIP(a);
    return v !== 0 && this.list.check(a, v === 6 ? "ipv6" : "ipv4");
  }
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
