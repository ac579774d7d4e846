// The host names a certificate serves, read from the certificate itself (its DNS
// subjectAltNames, or its CN when it has none), and how a TLS server name matches them.

import type { X509Certificate } from "node:crypto";

/** DNS names from subjectAltName, else the CN. Lower-cased, deduplicated. */
export function certificateNames(cert: X509Certificate): string[] {
  const out = new Set<string>();
  const san = cert.subjectAltName;
  if (san) {
    // "DNS:a.example.com, DNS:*.example.com, IP Address:10.0.0.1"
    for (const part of san.split(/,\s*/)) {
      if (part.startsWith("DNS:")) out.add(part.slice(4).trim().toLowerCase());
    }
  }
  if (out.size === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1]?.trim();
    if (cn) out.add(cn.toLowerCase());
  }
  return [...out];
}

/** `*.example.com` for `a.example.com`; undefined for names with fewer than three labels. */
export function wildcardFor(serverName: string): string | undefined {
  const dot = serverName.indexOf(".");
  if (dot <= 0 || serverName.indexOf(".", dot + 1) < 0) return undefined;
  return `*${serverName.slice(dot)}`;
}
