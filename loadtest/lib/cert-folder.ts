// A folder of many ECDSA certificates for the certificate-scale benchmark: `hN.crt` +
// `hN.key`, each for its own name `hN.scale.test`, all issued by one throwaway CA.
// The leaf keys come from a small pool (making 50,000 P-256 keys would take longer than
// the run): a proxy still reads, parses and checks every key file on its own, so what
// is measured (loading, memory per certificate, selection by name) is the same.

import "reflect-metadata";
import { KeyObject, randomBytes, webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto);

const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
const DAY_MS = 86_400_000;
/** Distinct leaf keys, used in turn. */
const KEY_POOL = 16;

export interface CertFolder {
  readonly dir: string;
  readonly count: number;
  /** The CA's certificate, for clients that verify. */
  readonly caPath: string;
  /** The name of certificate i. */
  readonly nameOf: (i: number) => string;
}

const nameOf = (i: number) => `h${i}.scale.test`;

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
}

const keyPemOf = (k: webcrypto.CryptoKey) =>
  KeyObject.from(k).export({ type: "pkcs8", format: "pem" }) as string;

/** Issues one leaf for `name` (shared by the folder writer and the change steps). */
export async function writeLeaf(
  dir: string,
  base: string,
  name: string,
  ca: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair },
  leafKeys: { keys: webcrypto.CryptoKeyPair; pem: string },
): Promise<void> {
  const serial = randomBytes(12);
  serial[0] = (serial[0]! & 0x7f) | 0x10;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString("hex"),
    subject: `CN=${name}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 30 * DAY_MS),
    signingKey: ca.keys.privateKey,
    publicKey: leafKeys.keys.publicKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: name }]),
    ],
  });
  writeFileSync(join(dir, `${base}.crt`), `${cert.toString("pem")}\n`);
  writeFileSync(join(dir, `${base}.key`), leafKeys.pem);
}

/** What writing more leaves later needs: the CA and the key pool. */
export interface Issuer {
  readonly ca: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair };
  readonly pool: { keys: webcrypto.CryptoKeyPair; pem: string }[];
}

export async function newIssuer(): Promise<Issuer> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=lintel scale bench CA",
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 30 * DAY_MS),
    keys,
    signingAlgorithm: EC,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const pool = await Promise.all(
    Array.from({ length: KEY_POOL }, async () => {
      const k = await newKeys();
      return { keys: k, pem: keyPemOf(k.privateKey) };
    }),
  );
  return { ca: { cert, keys }, pool };
}

/** Writes `count` certificates (h0 … h<count-1>) into `dir`. */
export async function writeCertFolder(
  dir: string,
  count: number,
  issuer: Issuer,
): Promise<CertFolder> {
  const caPath = join(dir, "..", `ca-${count}.pem`);
  writeFileSync(caPath, issuer.ca.cert.toString("pem"));
  // Signing is cheap; a bounded number in flight keeps memory flat.
  const BATCH = 256;
  for (let i = 0; i < count; i += BATCH) {
    const jobs: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + BATCH); j++)
      jobs.push(writeLeaf(dir, `h${j}`, nameOf(j), issuer.ca, issuer.pool[j % KEY_POOL]!));
    await Promise.all(jobs);
  }
  return { dir, count, caPath, nameOf };
}
