// Asks DNS servers for a name's A and AAAA records with c-ares (node:dns Resolver), which,
// unlike getaddrinfo, reports each record's TTL. The family policy decides which record
// types are asked and which addresses are used; short names are tried with the search
// domains. (/etc/hosts, which c-ares does not read either, is hosts-file.ts's job.)

import { Resolver } from "node:dns/promises";
import type { DnsConfig } from "../config/egress-schemas.js";
import { type DnsAnswer, type DnsLookup, DnsLookupError } from "./dns-cache.js";
import { namesToAsk } from "./search-domains.js";

export type Family = DnsConfig["family"];

export interface DnsQueryOptions {
  /** `ip` or `ip:port` each; the system's (/etc/resolv.conf) when unset. */
  readonly servers?: readonly string[];
  readonly timeoutMs: number;
  readonly tries: number;
  readonly family: Family;
  /** Appended to short names, as resolv.conf's `search` (see search-domains.ts). */
  readonly searchDomains: readonly string[];
}

export interface DnsQuery {
  readonly lookup: DnsLookup;
  /** Cancels the look-ups in flight (they reject with ECANCELLED). */
  close(): void;
}

export function dnsQuery(opts: DnsQueryOptions): DnsQuery {
  const resolver = new Resolver({ timeout: opts.timeoutMs, tries: opts.tries });
  if (opts.servers) resolver.setServers([...opts.servers]);

  /** The records of one type, or undefined when the name has none ("no data"). */
  const ask = async (host: string, type: "A" | "AAAA"): Promise<DnsAnswer | undefined> => {
    let records: { address: string; ttl: number }[];
    try {
      records =
        type === "A"
          ? await resolver.resolve4(host, { ttl: true })
          : await resolver.resolve6(host, { ttl: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENODATA") return undefined;
      throw lookupError(code, resolver.getServers(), e as Error);
    }
    if (records.length === 0) return undefined;
    return {
      ips: records.map((r) => r.address),
      ttlSecs: Math.min(...records.map((r) => r.ttl)),
    };
  };

  /** The first name of the search order that has addresses; a failure ends the search. */
  const lookup: DnsLookup = async (host) => {
    let negative: unknown = new DnsLookupError("ENODATA", `${host} has no ${wanted(opts.family)}`);
    for (const name of namesToAsk(host, opts.searchDomains)) {
      try {
        const answer = await byFamily(opts.family, (type) => ask(name, type));
        if (answer) return answer;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOTFOUND") throw e;
        negative = e;
      }
    }
    throw negative;
  };

  return { lookup, close: () => resolver.cancel() };
}

/**
 * Applies the family policy: v4 or v6 asks one type; v4-preferred asks AAAA only when
 * there are no A records (v6-preferred the reverse); all asks both and uses both.
 * A name that does not exist (NXDOMAIN) or a failure ends the look-up at once.
 */
async function byFamily(
  family: Family,
  ask: (type: "A" | "AAAA") => Promise<DnsAnswer | undefined>,
): Promise<DnsAnswer | undefined> {
  switch (family) {
    case "v4":
      return ask("A");
    case "v6":
      return ask("AAAA");
    case "v4-preferred":
      return (await ask("A")) ?? (await ask("AAAA"));
    case "v6-preferred":
      return (await ask("AAAA")) ?? (await ask("A"));
    case "all": {
      const [a, aaaa] = await Promise.all([ask("A"), ask("AAAA")]);
      if (!a || !aaaa) return a ?? aaaa;
      return { ips: [...a.ips, ...aaaa.ips], ttlSecs: Math.min(a.ttlSecs, aaaa.ttlSecs) };
    }
  }
}

/** The addresses of `ips` the family policy uses (for answers that do not come from DNS). */
export function pickFamily(ips: readonly string[], family: Family): string[] {
  const v4 = ips.filter((ip) => !ip.includes(":"));
  const v6 = ips.filter((ip) => ip.includes(":"));
  switch (family) {
    case "v4":
      return v4;
    case "v6":
      return v6;
    case "v4-preferred":
      return v4.length > 0 ? v4 : v6;
    case "v6-preferred":
      return v6.length > 0 ? v6 : v4;
    case "all":
      return [...ips];
  }
}

function wanted(family: Family): string {
  if (family === "v4") return "A records";
  if (family === "v6") return "AAAA records";
  return "A or AAAA records";
}

/** A c-ares error with what it means for the operator, naming the servers asked. */
function lookupError(code: string | undefined, servers: string[], e: Error): Error {
  const which = `DNS server${servers.length === 1 ? "" : "s"} ${servers.join(", ")}`;
  switch (code) {
    case "ENOTFOUND":
      return e; // NXDOMAIN: negative, not a failure
    case "ETIMEOUT":
      return new DnsLookupError(code, `${which} did not answer`);
    case "ESERVFAIL":
      return new DnsLookupError(code, `${which} answered SERVFAIL`);
    case "EREFUSED":
      return new DnsLookupError(code, `${which} refused the query`);
    case "ECONNREFUSED":
      return new DnsLookupError(code, `could not reach ${which}`);
    case "EBADRESP":
    case "EFORMERR":
      return new DnsLookupError(code, `${which} sent a malformed answer`);
    case "ECANCELLED":
    case "EDESTRUCTION":
      return new DnsLookupError(code, "the look-up was cancelled");
    default:
      return new DnsLookupError(code ?? "EUNKNOWN", e.message);
  }
}
