// The certificate source kinds of a TLS server's `tls.certs` entries: files, folders and
// Kubernetes Secrets. Each makes what the listener's CertificateStore reads
// (tls/certificate-store.ts `CertificateSource`); ACME feeds the store through its own
// `acme` block (server/certificate-sources.ts).

import { dirCertSource } from "./dir.js";
import { filesCertSource } from "./files.js";
import { ingressSecretsCertSource } from "./ingress-secrets.js";
import { secretCertSource } from "./secret.js";

export const CERT_SOURCES = [
  filesCertSource,
  dirCertSource,
  secretCertSource,
  ingressSecretsCertSource,
] as const;
