// Which node an address is on, as Linkerd 1's Kubernetes transformers tell it: by the
// endpoint's nodeName when both sides know theirs, otherwise by subnet (each node has its
// own pod /24; lintel uses /64 for IPv6 addresses).

import { isIP } from "node:net";
import type { Address } from "../naming/index.js";

/** The subnet an IP is in: its /24 (IPv4) or /64 (IPv6); undefined for a non-IP. */
export function nodeSubnet(ip: string): string | undefined {
  const plain = ip.startsWith("::ffff:") && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  const v = isIP(plain);
  if (v === 4) return plain.slice(0, plain.lastIndexOf("."));
  if (v !== 6) return undefined;
  const [head = "", tail] = plain.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":");
}

export function nodeNameOf(a: Address): string | undefined {
  const n = a.meta.nodeName;
  return typeof n === "string" ? n : undefined;
}
