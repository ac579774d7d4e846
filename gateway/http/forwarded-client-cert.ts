// Linkerd's `forwardClientCert`: the TLS client certificate the downstream presented, for
// the upstream, in x-forwarded-client-cert as Linkerd writes it:
// `Hash=<SHA-256 of the DER, upper-case hex>;SAN=<URI>;DNS=<name>;Subject="<RFC 2253 DN>"`
// (a SAN or DNS element per such subjectAltName, in the certificate's order).

import { createHash, type X509Certificate } from "node:crypto";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";

/** The TLS client certificate a connection's peer presented, if any (plain: none). */
export function peerCertificateOf(socket: Socket): X509Certificate | undefined {
  const tls = socket as Partial<TLSSocket>;
  return (tls.encrypted === true && tls.getPeerX509Certificate?.()) || undefined;
}

/** The field's value for `cert`, made once per certificate object (connections keep theirs). */
export function forwardedClientCert(cert: X509Certificate): string {
  let v = MADE.get(cert);
  if (v === undefined) {
    v = format(cert);
    MADE.set(cert, v);
  }
  return v;
}

const MADE = new WeakMap<X509Certificate, string>();

function format(cert: X509Certificate): string {
  let out = `Hash=${createHash("sha256").update(cert.raw).digest("hex").toUpperCase()}`;
  for (const [type, value] of altNames(cert.subjectAltName ?? "")) {
    if (type === "URI") out += `;SAN=${value}`;
    else if (type === "DNS") out += `;DNS=${value}`;
  }
  const subject = rfc2253(cert.subject);
  if (subject !== "") out += `;Subject="${subject}"`;
  return out;
}

/**
 * Node's subjectAltName text (`DNS:a, URI:spiffe://b`) as [type, value] pairs; a value
 * with a comma or a quote comes as a JSON string.
 */
function altNames(text: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      // A JSON string: find its closing quote past escapes.
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      end = j + 1;
    } else {
      const comma = text.indexOf(", ", colon);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end);
    }
    out.push([type, value]);
    i = end + 2;
  }
  return out;
}

/**
 * Node's subject (one `key=value` per line, in the certificate's order) as RFC 2253 text:
 * the most specific part first, comma-separated, special characters escaped.
 */
function rfc2253(subject: string): string {
  if (subject === "") return "";
  return subject
    .split("\n")
    .reverse()
    .map((rdn) => {
      const eq = rdn.indexOf("=");
      const value = rdn.slice(eq + 1).replace(/[,+"\\<>;]/g, "\\$&");
      return `${rdn.slice(0, eq)}=${value}`;
    })
    .join(",");
}
