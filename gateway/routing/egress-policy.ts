// A router's `egress` block: the destinations a router that leaves the cluster may
// reach. An egress proxy must not become a way into the inside: addresses in internal
// ranges are refused unless allowed, checked on every request against the address
// actually dialled (so a name that re-resolves to one, DNS rebinding, is caught), and an
// optional host allow-list refuses other names before anything is resolved.

import { isIP } from "node:net";
import type { EgressConfig } from "../config/egress-schemas.js";
import { CidrSet } from "../http/cidr.js";
import { ProxyError } from "../http/errors.js";

/** Ranges an egress router refuses unless `allowCidrs` says otherwise, by what they are. */
const INTERNAL_RANGES: readonly (readonly [string, string])[] = [
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private (RFC 1918)"],
  ["100.64.0.0/10", "shared (CGNAT)"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local (cloud metadata)"],
  ["172.16.0.0/12", "private (RFC 1918)"],
  ["192.0.0.0/24", "IETF protocol assignments"],
  ["192.168.0.0/16", "private (RFC 1918)"],
  ["198.18.0.0/15", "benchmarking"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["64:ff9b:1::/48", "local NAT64"],
  ["fc00::/7", "unique local (ULA)"],
  ["fe80::/10", "link-local"],
  ["ff00::/8", "multicast"],
];

const INTERNAL = INTERNAL_RANGES.map(([cidr, what]) => ({ set: new CidrSet([cidr]), what }));
const ALLOWED = "";
const NOT_AN_ADDRESS = "-";
/** Addresses whose verdict is remembered (destinations are few; the map starts over when full). */
const MAX_VERDICTS = 4096;

export class EgressPolicy {
  private readonly allowedCidrs: CidrSet;
  private readonly exactHosts: ReadonlySet<string> | undefined;
  private readonly domains: readonly string[];
  private readonly verdicts = new Map<string, string>();
  readonly forwardL5dHeaders: boolean;

  constructor(config: EgressConfig) {
    this.allowedCidrs = new CidrSet(config.allowCidrs);
    this.forwardL5dHeaders = config.forwardL5dHeaders;
    if (config.allowHosts) {
      this.exactHosts = new Set(config.allowHosts.filter((h) => !h.startsWith("*.")));
      // `*.example.com` covers every name that ends in `.example.com`.
      this.domains = config.allowHosts.filter((h) => h.startsWith("*.")).map((h) => h.slice(1));
    } else {
      this.exactHosts = undefined;
      this.domains = [];
    }
  }

  /** Refuses a host name the allow-list does not cover (nothing to check without a list). */
  checkHost(host: string | undefined): void {
    if (!this.exactHosts) return;
    if (host === undefined) {
      throw new ProxyError(
        "LINTEL_FORBIDDEN",
        "egress needs a host name to check against egress.allowHosts; the request names none",
      );
    }
    const name = host.toLowerCase().replace(/\.$/, "");
    if (this.exactHosts.has(name)) return;
    for (const d of this.domains) if (name.endsWith(d)) return;
    throw new ProxyError(
      "LINTEL_FORBIDDEN",
      `egress to ${name} is not allowed: the host is not in egress.allowHosts`,
    );
  }

  /** Refuses an internal address unless allowCidrs has it; `host` names it in the message. */
  checkAddress(ip: string, host: string | undefined): void {
    let verdict = this.verdicts.get(ip);
    if (verdict === undefined) {
      verdict = this.classify(ip);
      // Matching an address against the ranges costs more than the request's routing.
      if (this.verdicts.size >= MAX_VERDICTS) this.verdicts.clear();
      this.verdicts.set(ip, verdict);
    }
    if (verdict === ALLOWED) return;
    if (verdict === NOT_AN_ADDRESS) {
      // Connecting would resolve the name again, past this check.
      throw new ProxyError(
        "LINTEL_FORBIDDEN",
        `egress to ${ip} is not allowed: destinations must be resolved to addresses first (use /$/inet or /$/io.buoyant.rinet)`,
      );
    }
    const what = host && host !== ip ? `${host} (${ip})` : ip;
    throw new ProxyError(
      "LINTEL_FORBIDDEN",
      `egress to ${what} is not allowed: ${verdict} address; add it to egress.allowCidrs to allow it`,
    );
  }

  /** ALLOWED, NOT_AN_ADDRESS, or what kind of internal address `ip` is. */
  private classify(ip: string): string {
    if (isIP(ip) === 0) return NOT_AN_ADDRESS;
    if (this.allowedCidrs.has(ip)) return ALLOWED;
    for (const r of INTERNAL) if (r.set.has(ip)) return r.what;
    return ALLOWED;
  }
}

/** The host a request names: its Host header (or absolute-form authority) without the port. */
export function requestHost(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  if (hostHeader.startsWith("[")) {
    const end = hostHeader.indexOf("]");
    return end < 0 ? hostHeader : hostHeader.slice(1, end);
  }
  const colon = hostHeader.lastIndexOf(":");
  return colon < 0 ? hostHeader : hostHeader.slice(0, colon);
}
