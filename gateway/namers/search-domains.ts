// The search domains of /etc/resolv.conf, which the system resolver appends to short names
// (`users` → `users.default.svc.cluster.local` in Kubernetes) and c-ares's queries do not.
// lintel asks a name that contains a dot as written first, and one without a dot with the
// search domains first (ndots:1), whatever `options ndots` says: with Kubernetes'
// ndots:5, every external name would otherwise cost a failed query per search domain.

import { readFileSync } from "node:fs";

export const SYSTEM_RESOLV_CONF = "/etc/resolv.conf";

/** The `search` (or `domain`) list of a resolv.conf; none when the file cannot be read. */
export function readSearchDomains(path: string = SYSTEM_RESOLV_CONF): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  let domains: string[] = [];
  for (const line of text.split("\n")) {
    const [keyword, ...values] = line
      .replace(/[#;].*/, "")
      .trim()
      .split(/\s+/);
    // As in resolv.conf(5): `domain` and `search` exclude each other; the last one wins.
    if (keyword === "search") domains = values;
    else if (keyword === "domain") domains = values.slice(0, 1);
  }
  return domains.map((d) => d.replace(/\.$/, "")).filter((d) => d !== "");
}

/** The names to ask DNS for `host`, in order. A name ending in a dot is asked as it is. */
export function namesToAsk(host: string, searchDomains: readonly string[]): string[] {
  if (host.endsWith(".")) return [host];
  const searched = searchDomains.map((d) => `${host}.${d}`);
  return host.includes(".") ? [host, ...searched] : [...searched, host];
}
