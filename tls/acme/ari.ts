// ACME Renewal Information (RFC 9773): the CA says when to renew a certificate. Its
// CertID is the authority key identifier and the serial number of the certificate,
// each base64url-encoded; the answer is a suggested window and when to ask again.

import "reflect-metadata";
import { AuthorityKeyIdentifierExtension, X509Certificate } from "@peculiar/x509";
import { type HttpGet, retryAfterMs } from "./http-get.js";

/** The certificate's ARI CertID, or undefined when it has no authority key identifier. */
export function ariCertId(certPem: string): string | undefined {
  const cert = new X509Certificate(certPem);
  const aki = cert.getExtension(AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) return undefined;
  const serial = Buffer.from(cert.serialNumber, "hex");
  return `${Buffer.from(aki.keyId, "hex").toString("base64url")}.${serial.toString("base64url")}`;
}

export interface RenewalInfo {
  readonly window: { readonly start: number; readonly end: number };
  /** When to ask again (the Retry-After, clamped to between a minute and a day). */
  readonly nextCheckAt: number;
}

/** Six hours: how often to ask again when the CA does not say (the RFC's suggestion). */
const DEFAULT_RECHECK_MS = 6 * 3600_000;

/** Asks the CA's renewalInfo endpoint about a certificate; throws when it cannot answer. */
export async function fetchRenewalInfo(
  get: HttpGet,
  renewalInfoUrl: string,
  certId: string,
  now: number,
): Promise<RenewalInfo> {
  const url = `${renewalInfoUrl.replace(/\/$/, "")}/${certId}`;
  const res = await get(url);
  if (res.status !== 200) throw new Error(`renewal information: HTTP ${res.status} from ${url}`);
  const body = JSON.parse(res.body) as { suggestedWindow?: { start?: string; end?: string } };
  const start = Date.parse(body.suggestedWindow?.start ?? "");
  const end = Date.parse(body.suggestedWindow?.end ?? "");
  if (Number.isNaN(start) || Number.isNaN(end) || end < start) {
    throw new Error(`renewal information from ${url} has no valid suggestedWindow`);
  }
  const after = retryAfterMs(res.headers["retry-after"], now) ?? DEFAULT_RECHECK_MS;
  return {
    window: { start, end },
    nextCheckAt: now + Math.min(Math.max(after, 60_000), 86_400_000),
  };
}
