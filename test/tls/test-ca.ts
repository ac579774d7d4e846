// A throw-away PKI for TLS tests, made in memory: a root CA, intermediates, and leaf
// certificates (server or client) with chosen names, validity and key type. Keys export
// in every PEM form lintel reads: PKCS#1, PKCS#8, SEC1, encrypted PKCS#8 and the
// traditional encrypted PKCS#1/SEC1 ("Proc-Type: 4,ENCRYPTED").

import "reflect-metadata";
import { KeyObject, randomBytes, webcrypto } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto);

/** A WebCrypto key pair (Node's webcrypto types: the project has no DOM lib). */
export type KeyPair = webcrypto.CryptoKeyPair;

export type KeyAlg = "rsa" | "ec";

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  hash: "SHA-256",
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};
const EC = { name: "ECDSA", namedCurve: "P-256" };

/** A fresh, extractable key pair (RSA 2048 or ECDSA P-256). */
export async function newKeys(alg: KeyAlg): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(alg === "rsa" ? RSA : EC, true, [
    "sign",
    "verify",
  ])) as KeyPair;
}

const signingAlgorithm = (alg: KeyAlg) =>
  alg === "rsa"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "ECDSA", hash: "SHA-256" };

/** A random positive serial number, upper-case hex (as Node's X509Certificate shows it). */
function newSerial(): string {
  const b = randomBytes(12);
  b[0] = (b[0]! & 0x7f) | 0x10; // positive, no leading zero byte
  return b.toString("hex").toUpperCase();
}

/** Private key PEM forms; the `-enc` ones are encrypted with aes-256-cbc and a passphrase. */
export type KeyFormat = "pkcs1" | "pkcs8" | "sec1" | "pkcs8-enc" | "pkcs1-enc" | "sec1-enc";

/** Exports a private key as PEM through Node's KeyObject (pkcs1 is RSA only, sec1 EC only). */
export function keyPem(
  key: webcrypto.CryptoKey,
  format: KeyFormat = "pkcs8",
  passphrase?: string,
): string {
  const k = KeyObject.from(key);
  const encrypted = format.endsWith("-enc");
  const type = format.replace("-enc", "") as "pkcs1" | "pkcs8" | "sec1";
  if (encrypted && passphrase === undefined) throw new Error(`${format} needs a passphrase`);
  return (
    encrypted
      ? k.export({ type, format: "pem", cipher: "aes-256-cbc", passphrase: passphrase! })
      : k.export({ type, format: "pem" })
  ) as string;
}

/** A certificate and its key pair. */
export class Issued {
  constructor(
    readonly cert: x509.X509Certificate,
    readonly keys: KeyPair,
    readonly alg: KeyAlg,
  ) {}

  get certPem(): string {
    return `${this.cert.toString("pem")}\n`;
  }

  /** Upper-case hex, as `getPeerCertificate().serialNumber` and Node's X509Certificate report it. */
  get serial(): string {
    return this.cert.serialNumber.toUpperCase();
  }

  keyPem(format: KeyFormat = "pkcs8", passphrase?: string): string {
    return keyPem(this.keys.privateKey, format, passphrase);
  }
}

export interface LeafOptions {
  /** DNS subjectAltNames; none (and only a CN) when empty or omitted. */
  readonly dns?: readonly string[];
  /** IP address subjectAltNames (a server reached by IP, like the Kubernetes API in a pod). */
  readonly ip?: readonly string[];
  /** Subject CN; the first DNS name by default. */
  readonly cn?: string;
  readonly alg?: KeyAlg;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** A client certificate (clientAuth) instead of a server one. */
  readonly client?: boolean;
  /** Reuse a key pair (e.g. a certificate renewed with the same key). */
  readonly keys?: KeyPair;
}

const DAY = 86_400_000;

/** A certificate authority that issues intermediates and leaves. */
export class TestCa extends Issued {
  /** A self-signed root CA; `dn` gives its whole name instead of `CN=name`. */
  static async root(
    name = "Lintel Test Root",
    alg: KeyAlg = "ec",
    dn = `CN=${name}`,
  ): Promise<TestCa> {
    const keys = await newKeys(alg);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      name: dn,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 3650 * DAY),
      keys,
      signingAlgorithm: signingAlgorithm(alg),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new TestCa(cert, keys, alg);
  }

  /** An intermediate CA signed by this one. */
  async intermediate(name = "Lintel Test Intermediate", alg: KeyAlg = "ec"): Promise<TestCa> {
    const keys = await newKeys(alg);
    const cert = await this.sign(keys, `CN=${name}`, {}, [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ]);
    return new TestCa(cert, keys, alg);
  }

  /**
   * A CA with this one's name and a key of its own (a re-keyed or impostor CA), signed by
   * `issuer`, or self-signed without one. With `sameKeyId` it also has this CA's subject
   * key identifier, so that only signatures tell the two apart.
   */
  async twin(issuer: TestCa | undefined, sameKeyId: boolean): Promise<TestCa> {
    const keys = await newKeys(this.alg);
    const keyId = sameKeyId
      ? this.cert.getExtension(x509.SubjectKeyIdentifierExtension)!
      : await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
    const usage = [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      keyId,
    ];
    const cert = issuer
      ? await issuer.sign(keys, this.cert.subject, {}, usage)
      : await x509.X509CertificateGenerator.createSelfSigned({
          serialNumber: newSerial(),
          name: this.cert.subject,
          notBefore: new Date(Date.now() - DAY),
          notAfter: new Date(Date.now() + 3650 * DAY),
          keys,
          signingAlgorithm: signingAlgorithm(this.alg),
          extensions: usage,
        });
    return new TestCa(cert, keys, this.alg);
  }

  /** A server (or client) certificate signed by this CA. */
  async leaf(opts: LeafOptions = {}): Promise<Issued> {
    const alg = opts.alg ?? "ec";
    const keys = opts.keys ?? (await newKeys(alg));
    const dns = opts.dns ?? [];
    const cn = opts.cn ?? dns[0] ?? "client";
    const ext: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature |
          (alg === "rsa" ? x509.KeyUsageFlags.keyEncipherment : 0),
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        opts.client ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth,
      ]),
    ];
    const ips = opts.ip ?? [];
    if (dns.length + ips.length > 0)
      ext.push(
        new x509.SubjectAlternativeNameExtension([
          ...dns.map((d) => ({ type: "dns" as const, value: d })),
          ...ips.map((a) => ({ type: "ip" as const, value: a })),
        ]),
      );
    const cert = await this.sign(keys, `CN=${cn}`, opts, ext);
    return new Issued(cert, keys, alg);
  }

  protected async sign(
    keys: KeyPair,
    subject: string,
    validity: { notBefore?: Date; notAfter?: Date },
    extensions: x509.Extension[],
  ): Promise<x509.X509Certificate> {
    return x509.X509CertificateGenerator.create({
      serialNumber: newSerial(),
      subject,
      issuer: this.cert.subject,
      notBefore: validity.notBefore ?? new Date(Date.now() - DAY),
      notAfter: validity.notAfter ?? new Date(Date.now() + 90 * DAY),
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: signingAlgorithm(this.alg),
      extensions: [
        ...extensions,
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
      ],
    });
  }
}

/** Concatenated PEM of certificates (a chain file: leaf first). */
export function chainPem(...certs: Issued[]): string {
  return certs.map((c) => c.certPem).join("");
}

/** Writes `files` (relative path → content) under `dir`; returns relative path → absolute path. */
export function writeTlsFiles<K extends string>(
  dir: string,
  files: Record<K, string>,
): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const [rel, text] of Object.entries(files) as [K, string][]) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    out[rel] = path;
  }
  return out;
}

export const DAYS = DAY;
