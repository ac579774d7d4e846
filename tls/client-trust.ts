// What lintel trusts and presents when it originates TLS (a router client's `tls`): the
// CA certificates that replace the system's roots, and a client certificate for upstreams
// that ask for one (mTLS). Loaded and checked once, at startup; every problem names the
// file.

import { loadCertificate, parsePemCertificates, readPemFile } from "./certificate.js";

export interface ClientTrustFiles {
  /** CA certificate files (each may hold several certificates). */
  readonly trustCerts?: readonly string[];
  /** One file of CA certificates. */
  readonly trustCertsBundle?: string;
  readonly clientAuth?: {
    readonly certPath: string;
    readonly keyPath: string;
    readonly intermediateCertsPath?: string;
  };
}

export interface ClientTrust {
  /**
   * PEM certificates of the CAs to trust; undefined means the system's roots (Node's
   * store plus NODE_EXTRA_CA_CERTS).
   */
  readonly ca: readonly string[] | undefined;
  /** The client certificate chain (leaf first) and its key. */
  readonly identity: { readonly chainPem: string; readonly keyPem: string } | undefined;
}

/** Reads and checks every file of a client `tls` block; throws CertificateError naming the file at fault. */
export function loadClientTrust(files: ClientTrustFiles, now = new Date()): ClientTrust {
  const caFiles = [...(files.trustCerts ?? [])];
  if (files.trustCertsBundle !== undefined) caFiles.push(files.trustCertsBundle);
  const ca =
    caFiles.length === 0
      ? undefined
      : caFiles.flatMap((f) => parsePemCertificates(f, readPemFile(f)).pems);
  if (!files.clientAuth) return { ca, identity: undefined };
  const client = loadCertificate(files.clientAuth, now, "client");
  return { ca, identity: { chainPem: client.chainPem, keyPem: client.keyPem } };
}
