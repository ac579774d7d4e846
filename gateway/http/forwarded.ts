// X-Forwarded-For/-Proto/-Host and RFC 7239 Forwarded, for edge servers. A request from
// an untrusted peer gets them overwritten with what this hop saw; a request from a
// trusted proxy keeps what it says and has this hop appended, and the client is the
// first address, right to left, that is not a trusted proxy. The values are computed
// from the request as received, so naming them in Connection cannot remove them.

import { isIP } from "node:net";
import type { CidrSet } from "./cidr.js";
import { getHeaders } from "./headers.js";

export type ForwardedLabel =
  | { readonly kind: "ip" }
  | { readonly kind: "ip:port" }
  | { readonly kind: "connectionRandom" }
  | { readonly kind: "requestRandom" }
  | { readonly kind: "router" }
  | { readonly kind: "static"; readonly label: string };

export interface ForwardedPolicy {
  /** Set X-Forwarded-For, -Proto and -Host. */
  readonly xForwarded: boolean;
  /** RFC 7239 Forwarded with these labelers (Linkerd's addForwardedHeader). */
  readonly forwarded: { readonly by: ForwardedLabel; readonly for: ForwardedLabel } | undefined;
  readonly trustedProxies: CidrSet;
  readonly routerLabel: string;
}

export interface HopInfo {
  /** The direct peer (or the client a trusted PROXY header names). */
  readonly peer: string;
  readonly peerPort: number;
  /** This server's address as the client reached it. */
  readonly local: string;
  readonly localPort: number;
  readonly secure: boolean;
  readonly host: string | undefined;
}

export interface ForwardedResult {
  /** Headers to add upstream (the received x-forwarded-* and forwarded are not passed on). */
  readonly headers: string[];
  /** The original client, for logs and rate limits. */
  readonly client: string;
}

/** Header names this module owns: dropped from the request, then set again. */
export const FORWARDED_HEADERS: ReadonlySet<string> = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "forwarded",
]);

/**
 * The client behind `peer`: the peer itself unless it is a trusted proxy, else the first
 * address of X-Forwarded-For that is not a trusted proxy, read right to left.
 */
export function clientBehind(
  peer: string,
  headers: readonly string[],
  trustedProxies: CidrSet,
): string {
  if (trustedProxies.size === 0 || !trustedProxies.has(peer)) return peer;
  return firstUntrusted(peer, splitList(getHeaders(headers, "x-forwarded-for")), trustedProxies);
}

/** Right to left over the trusted hops of `forwardedFor`: the first untrusted one. */
function firstUntrusted(peer: string, forwardedFor: readonly string[], trusted: CidrSet): string {
  let client = peer;
  for (let i = forwardedFor.length - 1; i >= 0; i--) {
    client = forwardedFor[i]!;
    if (!trusted.has(client)) break;
  }
  return client;
}

function splitList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) for (const p of v.split(",")) if (p.trim() !== "") out.push(p.trim());
  return out;
}

function randomToken(): string {
  return `_${Math.floor(Math.random() * 0xffffffff)
    .toString(16)
    .padStart(8, "0")}`;
}

/** A Forwarded node (RFC 7239 §6): IPv6 in brackets and quoted, ports quoted. */
function node(label: ForwardedLabel, addr: string, port: number, routerLabel: string): string {
  switch (label.kind) {
    case "ip":
      return isIP(addr) === 6 ? `"[${addr}]"` : addr;
    case "ip:port":
      return isIP(addr) === 6 ? `"[${addr}]:${port}"` : `"${addr}:${port}"`;
    case "router":
      return `_${routerLabel.replace(/[^A-Za-z0-9._-]/g, "_")}`;
    case "static":
      return label.label;
    default:
      return randomToken();
  }
}

function quoteIfNeeded(v: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v) ? v : `"${v.replace(/(["\\])/g, "\\$1")}"`;
}

export function forwardedHeaders(
  received: readonly string[],
  hop: HopInfo,
  policy: ForwardedPolicy,
): ForwardedResult {
  const trusted = policy.trustedProxies.has(hop.peer);
  const proto = hop.secure ? "https" : "http";
  const out: string[] = [];
  const priorFor = trusted ? splitList(getHeaders(received, "x-forwarded-for")) : [];
  const client = trusted ? firstUntrusted(hop.peer, priorFor, policy.trustedProxies) : hop.peer;
  if (policy.xForwarded) {
    out.push("x-forwarded-for", [...priorFor, hop.peer].join(", "));
    const priorProto = trusted ? getHeaders(received, "x-forwarded-proto")[0] : undefined;
    out.push("x-forwarded-proto", priorProto ?? proto);
    const priorHost = trusted ? getHeaders(received, "x-forwarded-host")[0] : undefined;
    const host = priorHost ?? hop.host;
    if (host !== undefined) out.push("x-forwarded-host", host);
  }
  if (policy.forwarded) {
    const prior = trusted ? getHeaders(received, "forwarded") : [];
    const parts = [`for=${node(policy.forwarded.for, hop.peer, hop.peerPort, policy.routerLabel)}`];
    parts.push(`by=${node(policy.forwarded.by, hop.local, hop.localPort, policy.routerLabel)}`);
    parts.push(`proto=${proto}`);
    if (hop.host !== undefined) parts.push(`host=${quoteIfNeeded(hop.host)}`);
    out.push("forwarded", [...prior, parts.join(";")].join(", "));
  }
  return { headers: out, client };
}
