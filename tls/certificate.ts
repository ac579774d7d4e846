// Loading one certificate and its key from PEM files, checked the way an edge operator
// needs: the key must match the certificate, the certificate must be valid now, the chain
// must link up, and every problem names the file. Keys may be PKCS#1, PKCS#8 or SEC1
// (EC), encrypted with a passphrase; certificates RSA or ECDSA.

import { createHash, createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { CertificateError } from "./errors.js";
import { certificateNames } from "./names.js";

export interface CertificateFiles {
  readonly certPath: string;
  readonly keyPath: string;
  /** Intermediate certificates, when they are not appended to certPath. */
  readonly intermediateCertsPath?: string;
  readonly passphrase?: string;
}

export interface LoadedCertificate {
  readonly files: CertificateFiles;
  /** The names it serves (from the certificate), lower-case; may include wildcards. */
  readonly names: readonly string[];
  readonly leaf: X509Certificate;
  /** Leaf first, then intermediates: what the server sends. */
  readonly chainPem: string;
  readonly keyPem: string;
  readonly key: KeyObject;
  readonly notAfter: Date;
  /** Changes whenever the certificate or key changes (for rotation). */
  readonly fingerprint: string;
  /** Things that may break some clients but do not stop lintel (e.g. an unknown issuer). */
  readonly warnings: readonly string[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The text of a PEM file; throws CertificateError naming it. */
export function readPemFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CertificateError(
      file,
      code === "ENOENT" ? "no such file" : `cannot read it (${code ?? (e as Error).message})`,
    );
  }
}

/** The PEM blocks of every certificate in a text (at least one); throws CertificateError naming `file`. */
export function certificatePems(file: string, text: string): string[] {
  const pems = text.match(PEM_CERT) ?? [];
  if (pems.length === 0)
    throw new CertificateError(
      file,
      "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
    );
  return pems;
}

/** Every certificate in a PEM text (at least one); throws CertificateError naming `file`. */
export function parsePemCertificates(
  file: string,
  text: string,
): { pems: string[]; certs: X509Certificate[] } {
  const pems = certificatePems(file, text);
  const certs = pems.map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (e) {
      throw new CertificateError(
        file,
        `certificate ${i + 1} in the file is not valid: ${(e as Error).message}`,
      );
    }
  });
  return { pems, certs };
}

function parseKey(file: string, text: string, passphrase: string | undefined): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new CertificateError(
      file,
      "no PEM private key in it (expected -----BEGIN ... PRIVATE KEY-----)",
    );
  }
  const encrypted = /ENCRYPTED/.test(text);
  if (encrypted && passphrase === undefined) {
    throw new CertificateError(
      file,
      "the key is encrypted: give its passphrase (passphraseFile or passphraseEnv)",
    );
  }
  try {
    return createPrivateKey({ key: text, format: "pem", passphrase });
  } catch (e) {
    const msg = (e as Error).message;
    if (encrypted)
      throw new CertificateError(file, `cannot decrypt the key: wrong passphrase? (${msg})`);
    throw new CertificateError(file, `not a valid private key: ${msg}`);
  }
}

const isSelfIssued = (c: X509Certificate) => c.issuer === c.subject;

/** Whether `issuer`'s public key verifies the signature on `c`. */
function signedBy(c: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return c.verify(issuer.publicKey);
  } catch {
    return false; // a key of a kind that cannot have made this signature
  }
}
/** Node's bundled root CAs by subject (a few subjects have more than one key). */
const KNOWN_ROOTS = new Map<string, X509Certificate[]>();
for (const pem of rootCertificates) {
  const root = new X509Certificate(pem);
  const same = KNOWN_ROOTS.get(root.subject);
  if (same) same.push(root);
  else KNOWN_ROOTS.set(root.subject, [root]);
}

/**
 * Loads and checks a certificate; throws CertificateError naming the file at fault. A
 * server certificate must name a host; a client certificate (mTLS) need not.
 */
export function loadCertificate(
  files: CertificateFiles,
  now = new Date(),
  use: "server" | "client" = "server",
): LoadedCertificate {
  return checkCertificate(
    {
      files,
      certText: readPemFile(files.certPath),
      chainText: files.intermediateCertsPath ? readPemFile(files.intermediateCertsPath) : undefined,
      keyText: readPemFile(files.keyPath),
    },
    now,
    use,
  );
}

/** A certificate and key already read: from files, or from a Kubernetes Secret. */
export interface CertificateTexts {
  /** Where each text came from, for messages (a Secret's names them `Secret ns/name (tls.crt)`). */
  readonly files: CertificateFiles;
  readonly certText: string;
  readonly chainText: string | undefined;
  readonly keyText: string;
}

/** Checks a certificate given as text; the same checks and messages as loadCertificate. */
export function checkCertificate(
  t: CertificateTexts,
  now = new Date(),
  use: "server" | "client" = "server",
): LoadedCertificate {
  const { files, keyText } = t;
  const { pems, certs } = parsePemCertificates(files.certPath, t.certText);
  const fromCertFile = certs.length;
  if (files.intermediateCertsPath && t.chainText !== undefined) {
    const more = parsePemCertificates(files.intermediateCertsPath, t.chainText);
    pems.push(...more.pems);
    certs.push(...more.certs);
  }
  const key = parseKey(files.keyPath, keyText, files.passphrase);
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(key)) {
    throw new CertificateError(
      files.keyPath,
      `the key does not match the certificate in ${files.certPath}`,
    );
  }
  const notAfter = new Date(leaf.validTo);
  const notBefore = new Date(leaf.validFrom);
  if (notAfter.getTime() < now.getTime()) {
    throw new CertificateError(
      files.certPath,
      `the certificate expired on ${notAfter.toISOString()}`,
    );
  }
  if (notBefore.getTime() > now.getTime()) {
    throw new CertificateError(
      files.certPath,
      `the certificate is not valid before ${notBefore.toISOString()}`,
    );
  }
  // Each certificate must be issued by the next one in the chain: by name (and key
  // identifier), and signed with its key.
  for (let i = 0; i + 1 < certs.length; i++) {
    const c = certs[i]!;
    const next = certs[i + 1]!;
    const where =
      i + 1 >= fromCertFile && files.intermediateCertsPath
        ? files.intermediateCertsPath
        : files.certPath;
    const named = c.issuer === next.subject;
    if (named && !signedBy(c, next)) {
      throw new CertificateError(
        where,
        `certificate ${i + 1} in the chain ("${oneLine(c.subject)}") is not signed by the next one: its issuer is named "${oneLine(c.issuer)}", as the next certificate is, but that certificate's key does not verify its signature (a different or re-keyed intermediate of the same name?)`,
      );
    }
    if (!c.checkIssued(next)) {
      throw new CertificateError(
        where,
        named
          ? `certificate ${i + 1} in the chain ("${oneLine(c.subject)}") is signed by the next one, "${oneLine(next.subject)}", but that certificate may not issue it (its key identifier or key usage does not match)`
          : `missing intermediate: "${oneLine(c.subject)}" is issued by "${oneLine(c.issuer)}", but the next certificate in the chain is "${oneLine(next.subject)}"`,
      );
    }
  }
  const warnings: string[] = [];
  const last = certs[certs.length - 1]!;
  if (!isSelfIssued(last)) {
    const roots = KNOWN_ROOTS.get(last.issuer);
    if (roots === undefined) {
      warnings.push(
        `the chain ends at "${oneLine(last.subject)}", issued by "${oneLine(last.issuer)}", which is neither in the chain nor a known root CA: clients that do not have it will not trust the certificate (missing intermediate?)`,
      );
    } else if (!roots.some((root) => signedBy(last, root))) {
      warnings.push(
        `the chain ends at "${oneLine(last.subject)}", issued by "${oneLine(last.issuer)}", but no known root CA of that name signed it: clients whose root is the known one will not trust the certificate`,
      );
    }
  }
  const names = certificateNames(leaf);
  if (names.length === 0 && use === "server")
    throw new CertificateError(
      files.certPath,
      "the certificate names no host (no DNS subjectAltName and no CN)",
    );
  const chainPem = `${pems.join("\n")}\n`;
  const fingerprint = createHash("sha256").update(chainPem).update(keyText).digest("hex");
  return { files, names, leaf, chainPem, keyPem: keyText, key, notAfter, fingerprint, warnings };
}

function oneLine(dn: string): string {
  return dn.split("\n").join(", ");
}
