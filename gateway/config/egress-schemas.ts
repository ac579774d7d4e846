// lintel's blocks for leaving the cluster: `dns` (how host names are resolved, with
// TTLs) at the top level, and a router's `egress` policy (which destinations it may
// reach, and what it tells them).

import { isIP } from "node:net";
import {
  boolean,
  cidr,
  def,
  type Infer,
  integer,
  list,
  object,
  oneOf,
  opt,
  refine,
  type Schema,
  show,
} from "./schema.js";

/** A DNS server: `ip` or `ip:port` (`[v6]:port` for IPv6 with a port). */
function dnsServer(): Schema<string> {
  const expected = "a DNS server address (ip or ip:port)";
  return {
    expected,
    decode(v, path, cx) {
      if (typeof v === "string") {
        const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v);
        const withPort = /^([^:]+):(\d{1,5})$/.exec(v);
        const [ip, portText] = bracketed
          ? [bracketed[1]!, bracketed[2]]
          : withPort
            ? [withPort[1]!, withPort[2]]
            : [v, undefined];
        const portOk =
          portText === undefined || (Number(portText) >= 1 && Number(portText) <= 65535);
        if (isIP(ip) !== 0 && portOk) return v;
      }
      return cx.report(path, `expected ${expected}, got ${show(v)}`);
    },
  };
}

/** A host name, or `*.` and a domain: every name under it (not the domain itself). */
export function hostPattern(): Schema<string> {
  const expected = "a host name or *.domain";
  const label = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
  const re = new RegExp(`^(\\*\\.)?${label}(\\.${label})*$`);
  return {
    expected,
    decode(v, path, cx) {
      if (typeof v === "string" && re.test(v.toLowerCase())) return v.toLowerCase();
      return cx.report(path, `expected ${expected}, got ${show(v)}`);
    },
  };
}

export const dnsBlock = refine(
  object({
    /** The resolvers to ask; the system's (/etc/resolv.conf) when unset. */
    servers: opt(list(dnsServer(), { minItems: 1, expected: "a list of DNS servers" })),
    /** How long one query waits for an answer. */
    timeoutMs: def(integer({ min: 1 }), 2000),
    /** How many times a query is sent before the look-up fails. */
    tries: def(integer({ min: 1 }), 2),
    /** Answers are kept at least this long, whatever their TTL says. */
    minTtlSecs: def(integer({ min: 0 }), 5),
    /** Answers are kept at most this long. */
    maxTtlSecs: def(integer({ min: 1 }), 300),
    /** How long "no such name" is kept. */
    negativeTtlSecs: def(integer({ min: 0 }), 30),
    /** When the resolvers fail, the last good answer keeps serving this long. */
    staleIfErrorSecs: def(integer({ min: 0 }), 300),
    /** Which addresses to use: IPv4 when there are any (else IPv6), the reverse, both, or one family only. */
    family: def(oneOf(["v4-preferred", "v6-preferred", "all", "v4", "v6"]), "v4-preferred"),
    /** Names cached at most (100,000 when unset); past it the least recently used unwatched name is dropped. */
    maxNames: opt(integer({ min: 1 })),
    /** Look-ups in flight at most (64 when unset); more wait in a queue. */
    maxLookupsInFlight: opt(integer({ min: 1 })),
  }),
  (d) =>
    d.minTtlSecs > d.maxTtlSecs
      ? `minTtlSecs (${d.minTtlSecs}) is larger than maxTtlSecs (${d.maxTtlSecs})`
      : undefined,
);

/** The cache bounds may be left out where a DnsConfig is written by hand (unset = default). */
type DnsCacheBounds = "maxNames" | "maxLookupsInFlight";
export type DnsConfig = Omit<Infer<typeof dnsBlock>, DnsCacheBounds> &
  Partial<Pick<Infer<typeof dnsBlock>, DnsCacheBounds>>;

export const egressBlock = object({
  /** The only host names requests may go to; any name when unset. */
  allowHosts: opt(list(hostPattern(), { minItems: 1, expected: "a list of host names" })),
  /** Internal addresses (loopback, private, link-local, ...) this router may reach anyway. */
  allowCidrs: def(list(cidr()), []),
  /** Send l5d-* headers (dst-*, ctx-*, reqid) to the destination; off, they stay inside. */
  forwardL5dHeaders: def(boolean(), false),
});

export type EgressConfig = Infer<typeof egressBlock>;

/** A server's `connect`: CONNECT tunnels (https_proxy clients) to these ports. */
export const connectBlock = object({
  ports: def(
    list(integer({ min: 1, max: 65535 }), { minItems: 1, expected: "a list of ports" }),
    [443],
  ),
});
