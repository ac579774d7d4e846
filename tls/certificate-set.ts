// The certificates one TLS listener serves, by name: an exact name beats a wildcard
// (`*.example.com` covers one label), and anything else gets the default certificate
// (or nothing, when the listener is strict about SNI).

import type { LoadedCertificate } from "./certificate.js";
import type { CertificateCounters, ServingPems } from "./lazy-certificate.js";
import { wildcardFor } from "./names.js";

/**
 * What serving a certificate takes: the PEMs, the names, and what identifies its content.
 * A certificate read lazily (a folder's) has `load`, which reads and checks the PEMs and
 * throws a CertificateError when they cannot be served.
 */
export type ServedCertificate = Pick<
  LoadedCertificate,
  "names" | "fingerprint" | "chainPem" | "keyPem"
> & {
  readonly files: { readonly passphrase?: string | undefined };
  load?(): ServingPems;
};

/** The PEMs of a certificate for a TLS context, read (and checked) once for the asking. */
export function servingPems(c: ServedCertificate): ServingPems {
  return c.load ? c.load() : c;
}

/** A listener's live certificates: the current set, and news of the next one. */
export interface LiveCertificates {
  readonly current: CertificateSet;
  onChange(listener: (set: CertificateSet) => void): () => void;
  /** What its certificates cost (contexts built and evicted, loads, failures), when counted. */
  readonly counters?: CertificateCounters;
}

export class CertificateSet<C extends ServedCertificate = ServedCertificate> {
  private readonly byName = new Map<string, C>();

  constructor(
    /** For clients that send no SNI or an unknown name; the first certificate configured. */
    readonly defaultCert: C,
    certs: readonly C[],
  ) {
    // Later certificates do not displace earlier ones for the same name: the config's order decides.
    for (const c of [defaultCert, ...certs]) {
      for (const n of c.names) if (!this.byName.has(n)) this.byName.set(n, c);
    }
  }

  /** Every name served, with its certificate (wildcards included as `*.domain`). */
  get names(): ReadonlyMap<string, C> {
    return this.byName;
  }

  /** The certificate for a TLS server name, or undefined when no name matches. */
  match(serverName: string): C | undefined {
    const name = serverName.toLowerCase();
    const exact = this.byName.get(name);
    if (exact) return exact;
    const wild = wildcardFor(name);
    return wild === undefined ? undefined : this.byName.get(wild);
  }

  get all(): C[] {
    return [...new Set([this.defaultCert, ...this.byName.values()])];
  }

  /** Identifies the set's content, to tell whether a reload changed anything. */
  get fingerprint(): string {
    return this.all.map((c) => c.fingerprint).join(",");
  }
}
