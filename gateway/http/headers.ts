// Header rules every proxy hop applies: hop-by-hop headers (and every header named in
// Connection) are not forwarded; Via records each hop and bounds the call depth.
// Headers travel as flat arrays [name, value, name, value, ...] with lower-case names.

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the legacy ones proxies still see. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Fields HTTP/2 forbids in a message (RFC 9113 §8.2.2); Node refuses to send them. */
export const H2_CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/** The header names a message's Connection header lists (they are hop-by-hop too). */
export function connectionListed(headers: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== "connection") continue;
    for (const token of headers[i + 1]!.split(",")) {
      const t = token.trim().toLowerCase();
      if (t === "" || t === "close" || t === "keep-alive") continue;
      out ??= new Set();
      out.add(t);
    }
  }
  return out;
}

export function getHeader(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

/** Sets `name` (lower-case) to `value`: the first occurrence is replaced, any others removed. */
export function setHeader(headers: string[], name: string, value: string): void {
  let found = false;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== name) continue;
    if (found) {
      headers.splice(i, 2);
      i -= 2;
    } else {
      headers[i + 1] = value;
      found = true;
    }
  }
  if (!found) headers.push(name, value);
}

/** Every value of a header, in order (for headers that may repeat). */
export function getHeaders(headers: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) out.push(headers[i + 1]!);
  return out;
}

/** This proxy's Via entry. */
export const VIA_ENTRY = "1.1 lintel";

/** How many proxies a message has passed, counted from its Via entries. */
export function viaCount(headers: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== "via") continue;
    for (const part of headers[i + 1]!.split(",")) if (part.trim() !== "") n++;
  }
  return n;
}

/** Via with this hop appended to what the message had. */
export function appendVia(existing: readonly string[]): string {
  return existing.length === 0 ? VIA_ENTRY : `${existing.join(", ")}, ${VIA_ENTRY}`;
}
