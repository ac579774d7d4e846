// A self-signed certificate made at startup, served as the default of a listener whose
// certificates all come and go (Kubernetes Ingress Secrets): clients asking for a name
// no certificate has get it (and an untrusted-certificate error), as with other
// ingress controllers. ECDSA P-256, valid for a year, made in memory.

import "reflect-metadata";
import { KeyObject, randomBytes, webcrypto } from "node:crypto";
import type { PemPair } from "./live-source.js";

/** The name it carries: `.invalid` can never be a real host. */
export const GENERATED_DEFAULT_NAME = "lintel-default.invalid";

const DAY_MS = 86_400_000;

export async function selfSignedDefault(now = new Date()): Promise<PemPair> {
  // Loaded only by listeners that need it.
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(webcrypto);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const serial = randomBytes(12);
  serial[0] = (serial[0]! & 0x7f) | 0x10;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString("hex"),
    name: "CN=lintel default certificate",
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + 365 * DAY_MS),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: GENERATED_DEFAULT_NAME }]),
    ],
  });
  const keyPem = KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }) as string;
  return { certPem: cert.toString("pem"), keyPem };
}
