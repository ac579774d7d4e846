// The answers to ACME challenges, kept where every replica can give them: in memory for
// the replica that ordered, and in the shared storage for the others (the CA may
// validate against any replica behind the load balancer).
//   http-01      GET /.well-known/acme-challenge/<token> → the key authorization
//   tls-alpn-01  a handshake for the name with ALPN acme-tls/1 → a certificate carrying
//                the key authorization's digest (RFC 8737)
//   dns-01       a TXT record, published by a DNS provider (not answered here)

import { createHash } from "node:crypto";
import type { PemPair } from "../live-source.js";
import { type AcmeStorage, nameSegment } from "./storage.js";

export type ChallengeType = "http-01" | "tls-alpn-01" | "dns-01";

export const CHALLENGE_TYPES: readonly ChallengeType[] = ["http-01", "tls-alpn-01", "dns-01"];

/** Tokens are base64url (upper and lower case): stored by digest, which keys allow. */
const httpKey = (token: string) =>
  `challenges/http-01/${createHash("sha256").update(token).digest("hex")}`;
const alpnKey = (name: string) => `challenges/tls-alpn-01/${nameSegment(name)}`;

/** A token as the CA sends it: base64url, and not absurdly long. */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

export class ChallengeAnswers {
  private readonly http = new Map<string, string>();
  private readonly alpn = new Map<string, PemPair>();

  constructor(private readonly storage: AcmeStorage) {}

  async presentHttp(token: string, keyAuthorization: string): Promise<void> {
    this.http.set(token, keyAuthorization);
    await this.storage.store(httpKey(token), Buffer.from(keyAuthorization));
  }

  async cleanupHttp(token: string): Promise<void> {
    this.http.delete(token);
    await this.storage.delete(httpKey(token));
  }

  async presentAlpn(name: string, pair: PemPair): Promise<void> {
    this.alpn.set(name, pair);
    await this.storage.store(alpnKey(name), Buffer.from(JSON.stringify(pair)));
  }

  async cleanupAlpn(name: string): Promise<void> {
    this.alpn.delete(name);
    await this.storage.delete(alpnKey(name));
  }

  /** The key authorization for an HTTP-01 token, if one is being validated. */
  async httpAnswer(token: string): Promise<string | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const mine = this.http.get(token);
    if (mine !== undefined) return mine;
    const stored = (await this.storage.load(httpKey(token)))?.toString("utf8");
    // The answer starts with its token: a digest collision cannot answer another's.
    return stored?.startsWith(`${token}.`) ? stored : undefined;
  }

  /** The TLS-ALPN-01 certificate for a name, if its challenge is being validated. */
  async alpnAnswer(name: string): Promise<PemPair | undefined> {
    const mine = this.alpn.get(name.toLowerCase());
    if (mine) return mine;
    const stored = await this.storage.load(alpnKey(name));
    if (!stored) return undefined;
    const pair = JSON.parse(stored.toString("utf8")) as Partial<PemPair>;
    return typeof pair.certPem === "string" && typeof pair.keyPem === "string"
      ? { certPem: pair.certPem, keyPem: pair.keyPem }
      : undefined;
  }
}
