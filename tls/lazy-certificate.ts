// A certificate of a folder, known at first only by what choosing it needs: its names,
// validity and issuer, read from the certificate's DER without OpenSSL, and its texts.
// Parsing the key and every check of checkCertificate (key match, chain) wait until a
// handshake first needs it: that is where a 10,000-certificate startup spent its time
// (about 1 ms per key, 0.5 ms per certificate, here). The texts are kept (about 1 KB for
// ECDSA), so what was read is what serves, whatever the files do meanwhile. A certificate
// that fails its checks is logged once with its file, counted, and remembered as broken
// (its names are served as names no certificate has) until its files change.

import { createHash } from "node:crypto";
import {
  type CertificateFiles,
  type CertificateTexts,
  certificatePems,
  checkCertificate,
  parsePemCertificates,
  readPemFile,
} from "./certificate.js";
import { firstCertificateDer, summarizeCertificate } from "./der-summary.js";
import { CertificateError, type TlsLog } from "./errors.js";
import { certificateNames } from "./names.js";

/** What a listener's certificates cost, for the admin server and the tests. */
export interface CertificateCounters {
  /** Certificates read at start or reload without their key. */
  indexed: number;
  /** Full loads: certificate and key read and checked. */
  loaded: number;
  /** Certificates that turned out bad on first use. */
  failed: number;
  /** TLS contexts built for handshakes, and those dropped from the bounded cache. */
  contextsBuilt: number;
  contextsEvicted: number;
}

export function newCounters(): CertificateCounters {
  return { indexed: 0, loaded: 0, failed: 0, contextsBuilt: 0, contextsEvicted: 0 };
}

/** What a TLS context is made of. */
export interface ServingPems {
  readonly chainPem: string;
  readonly keyPem: string;
}

interface LazyHooks {
  readonly counters: CertificateCounters;
  readonly log: TlsLog;
}

export class LazyCertificate {
  readonly files: CertificateFiles;
  /** Its warnings are logged when it is checked (on first use), not at startup. */
  readonly warnings: readonly string[] = [];
  private failure: CertificateError | undefined;
  /** The texts until they are checked, then what serves. */
  private texts: CertificateTexts | ServingPems;

  constructor(
    /** The names it serves, lower-case; may include wildcards. */
    readonly names: readonly string[],
    readonly notAfter: Date,
    /** The issuer and start of validity, as the admin server shows them. */
    readonly leaf: {
      readonly issuer: string;
      readonly validFrom: string;
      readonly serialNumber: string;
    },
    /** Changes whenever the certificate or key changes. */
    readonly fingerprint: string,
    texts: CertificateTexts | (ServingPems & { readonly files: CertificateFiles }),
    private readonly hooks: LazyHooks,
  ) {
    this.files = texts.files;
    this.texts = "certText" in texts ? texts : { chainPem: texts.chainPem, keyPem: texts.keyPem };
  }

  /** Why it cannot be served, once a handshake found out. */
  get error(): string | undefined {
    return this.failure?.message;
  }

  /**
   * The PEMs for a TLS context. The first call checks certificate and key; throws the
   * CertificateError that made it unusable (then and on every later call).
   */
  load(): ServingPems {
    if (this.failure) throw this.failure;
    const t = this.texts;
    if (!("certText" in t)) return t;
    try {
      const cert = checkCertificate(t);
      for (const w of cert.warnings) this.hooks.log("warn", w, { file: this.files.certPath });
      this.texts = { chainPem: cert.chainPem, keyPem: cert.keyPem };
      this.hooks.counters.loaded++;
      return this.texts;
    } catch (e) {
      this.failure =
        e instanceof CertificateError
          ? e
          : new CertificateError(this.files.certPath, (e as Error).message);
      this.hooks.counters.failed++;
      this.hooks.log(
        "error",
        "certificate cannot be served; its names get the default certificate",
        { file: this.failure.file, names: this.names.join(","), error: this.failure.message },
      );
      throw this.failure;
    }
  }

  get chainPem(): string {
    return this.load().chainPem;
  }

  get keyPem(): string {
    return this.load().keyPem;
  }
}

/**
 * Reads a pair's texts and what choosing it needs, and checks what can be checked without
 * parsing the key (names, validity); throws CertificateError naming the file.
 */
export function indexCertificate(
  files: CertificateFiles,
  hooks: LazyHooks,
  now = new Date(),
): LazyCertificate {
  const certText = readPemFile(files.certPath);
  const chainText = files.intermediateCertsPath
    ? readPemFile(files.intermediateCertsPath)
    : undefined;
  const keyText = readPemFile(files.keyPath);
  const der = firstCertificateDer(certText);
  let summary = der && summarizeCertificate(der);
  if (!summary) {
    // Not shaped as the fast reader expects: let OpenSSL read it (and name what is wrong).
    const leaf = parsePemCertificates(files.certPath, certText).certs[0]!;
    summary = {
      names: certificateNames(leaf),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      issuer: leaf.issuer,
      serialNumber: leaf.serialNumber,
    };
  }
  if (summary.notAfter.getTime() < now.getTime())
    throw new CertificateError(
      files.certPath,
      `the certificate expired on ${summary.notAfter.toISOString()}`,
    );
  if (summary.notBefore.getTime() > now.getTime())
    throw new CertificateError(
      files.certPath,
      `the certificate is not valid before ${summary.notBefore.toISOString()}`,
    );
  if (summary.names.length === 0)
    throw new CertificateError(
      files.certPath,
      "the certificate names no host (no DNS subjectAltName and no CN)",
    );
  hooks.counters.indexed++;
  // As checkCertificate computes it, so a reload that changes nothing is seen as such.
  const pems = certificatePems(files.certPath, certText);
  if (chainText !== undefined && files.intermediateCertsPath)
    pems.push(...certificatePems(files.intermediateCertsPath, chainText));
  const fingerprint = createHash("sha256")
    .update(`${pems.join("\n")}\n`)
    .update(keyText)
    .digest("hex");
  return new LazyCertificate(
    summary.names,
    summary.notAfter,
    {
      issuer: summary.issuer,
      validFrom: summary.notBefore.toISOString(),
      serialNumber: summary.serialNumber,
    },
    fingerprint,
    { files, certText, chainText, keyText },
    hooks,
  );
}
