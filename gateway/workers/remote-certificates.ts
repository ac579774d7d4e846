// Certificates across the thread boundary: the control thread loads and watches them,
// and sends each TLS server's set to the workers, whose uws listeners serve it.

import {
  CertificateSet,
  type LiveCertificates,
  type ServedCertificate,
} from "../../tls/certificate-set.js";
import type { WireCertificate, WireCertificates } from "./protocol.js";

export function encodeCertificates(server: string, set: CertificateSet): WireCertificates {
  const ordered = [set.defaultCert, ...set.all.filter((c) => c !== set.defaultCert)];
  return {
    server,
    certs: ordered.map(
      (c): WireCertificate => ({
        names: c.names,
        fingerprint: c.fingerprint,
        chainPem: c.chainPem,
        keyPem: c.keyPem,
        passphrase: c.files.passphrase,
      }),
    ),
  };
}

function decode(w: WireCertificates): CertificateSet {
  const certs = w.certs.map(
    (c): ServedCertificate => ({
      names: c.names,
      fingerprint: c.fingerprint,
      chainPem: c.chainPem,
      keyPem: c.keyPem,
      files: { passphrase: c.passphrase },
    }),
  );
  const [first, ...rest] = certs;
  if (!first) throw new Error(`no certificate for ${w.server}`);
  return new CertificateSet(first, rest);
}

/** A worker's view of one TLS server's certificates, updated by the control thread. */
export class RemoteCertificates implements LiveCertificates {
  private set: CertificateSet;
  private readonly listeners = new Set<(set: CertificateSet) => void>();

  constructor(initial: WireCertificates) {
    this.set = decode(initial);
  }

  get current(): CertificateSet {
    return this.set;
  }

  onChange(listener: (set: CertificateSet) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  update(w: WireCertificates): void {
    this.set = decode(w);
    for (const l of this.listeners) l(this.set);
  }
}
