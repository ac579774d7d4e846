// Why TLS to an upstream failed, in words an operator can act on: which name, issuer or
// date of the certificate the upstream sent is wrong (from Node's verification code), or
// what broke the handshake.

import type { DetailedPeerCertificate } from "node:tls";

/** Verification codes that mean the chain does not lead to a trusted CA. */
const UNKNOWN_ISSUER = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
]);

/**
 * Why `leaf` (with the chain the upstream sent) does not prove `name`; `code` is the
 * socket's authorizationError, e.g. "the certificate is for a.example.com, not b.example.com".
 */
export function certificateRefusal(
  code: string,
  name: string,
  leaf: DetailedPeerCertificate,
  now = Date.now(),
): string {
  const chain = sentChain(leaf);
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return `the certificate is for ${certificateNames(leaf)}, not ${name}`;
  }
  if (code === "CERT_HAS_EXPIRED") {
    const c = chain.find((x) => Date.parse(x.valid_to) < now) ?? leaf;
    return `${describe(c, leaf)} expired on ${isoDate(c.valid_to)}`;
  }
  if (code === "CERT_NOT_YET_VALID") {
    const c = chain.find((x) => Date.parse(x.valid_from) > now) ?? leaf;
    return `${describe(c, leaf)} is not valid before ${isoDate(c.valid_from)}`;
  }
  if (UNKNOWN_ISSUER.has(code)) {
    const top = chain[chain.length - 1]!;
    return `the certificate is issued by an unknown CA, "${distinguishedName(top.issuer)}" (${code})`;
  }
  return `the certificate is refused (${code})`;
}

type OpenSslError = Error & { code?: string; reason?: string };

/** What broke a handshake that did not finish (after the TCP connection was made). */
export function handshakeFailure(err: OpenSslError): string {
  const code = err.code ?? "";
  if (code === "ECONNRESET" || code === "EPIPE")
    return "the upstream closed the connection during the handshake";
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER")
    return `the upstream does not answer in TLS (${code}): is it plain HTTP?`;
  if (code.includes("_ALERT_"))
    return `the upstream refused the handshake: ${openSslErrorText(err)}`;
  return `the handshake failed: ${openSslErrorText(err)}`;
}

/** An OpenSSL error as "reason (CODE)", e.g. "tlsv13 alert certificate required (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED)". */
export function openSslErrorText(err: OpenSslError): string {
  const reason = err.reason ?? err.message;
  return err.code ? `${reason} (${err.code})` : reason;
}

/** The leaf, then each issuer the upstream sent (or the verifier found), root last. */
function sentChain(leaf: DetailedPeerCertificate): DetailedPeerCertificate[] {
  const out = [leaf];
  let c = leaf;
  // A self-signed root is its own issuerCertificate.
  while (c.issuerCertificate && c.issuerCertificate !== c && out.length < 16) {
    c = c.issuerCertificate;
    out.push(c);
  }
  return out;
}

function describe(c: DetailedPeerCertificate, leaf: DetailedPeerCertificate): string {
  return c === leaf
    ? "the certificate"
    : `the CA certificate "${distinguishedName(c.subject)}" in its chain`;
}

/** DNS and IP subjectAltNames, else the CN: "a.example.com, b.example.com". */
function certificateNames(c: DetailedPeerCertificate): string {
  const sans = (c.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("DNS:") || s.startsWith("IP Address:"))
    .map((s) => s.slice(s.indexOf(":") + 1));
  if (sans.length > 0) return sans.join(", ");
  return c.subject?.CN ? `CN=${c.subject.CN}` : "no name";
}

function distinguishedName(dn: DetailedPeerCertificate["subject"] | undefined): string {
  if (!dn) return "?";
  if (dn.CN) return `CN=${dn.CN}`;
  return Object.entries(dn)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

function isoDate(opensslDate: string): string {
  const t = Date.parse(opensslDate);
  return Number.isNaN(t) ? opensslDate : new Date(t).toISOString();
}
