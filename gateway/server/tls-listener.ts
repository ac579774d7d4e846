// A server's `tls` block turned into what a listener engine needs: the live certificate
// store (SNI names, rotation) and the handshake policy (versions, ciphers, client auth).

import { readFileSync } from "node:fs";
import type { LiveCertificates } from "../../tls/certificate-set.js";
import { type CertificateSource, CertificateStore } from "../../tls/certificate-store.js";
import { CertificateError } from "../../tls/errors.js";
import type { LivePemSource, PemPair } from "../../tls/live-source.js";
import type { ServerConfig } from "../config/config-schema.js";
import type { Logger } from "../log.js";

export interface ListenerTls {
  /** The certificates (loaded and watched here, or sent by the control thread to a worker). */
  readonly store: LiveCertificates;
  readonly strictSni: boolean;
  readonly minVersion: "TLSv1.2" | "TLSv1.3";
  readonly maxVersion: "TLSv1.2" | "TLSv1.3";
  /** OpenSSL cipher list (TLS 1.2 suites), when configured. */
  readonly ciphers: string | undefined;
  /** PEM of the CAs client certificates must chain to, when client certificates are asked for. */
  readonly clientCa: string | undefined;
  readonly requireClientAuth: boolean;
  /** How many certificates' TLS contexts the listener keeps (net engine); unset: the default. */
  readonly contextCacheSize?: number;
  /** Where the listener reports what happens to its certificates. */
  readonly log: Logger;
  /** ACME's part in handshakes (net engine): TLS-ALPN-01 answers and on-demand certificates. */
  readonly acme?: ListenerAcme;
}

export interface ListenerAcme {
  /** The listener negotiates ALPN acme-tls/1 (its ACME block allows TLS-ALPN-01). */
  readonly answersAlpn: boolean;
  /** The TLS-ALPN-01 certificate for a name being validated (from any replica). */
  alpnCertificate(serverName: string): Promise<PemPair | undefined>;
  /** Orders or loads a certificate for a name nothing serves (bounded wait); undefined: no on-demand TLS. */
  readonly onDemand: ((serverName: string) => Promise<unknown>) | undefined;
}

/** A listener whose certificates are loaded and watched in this thread. */
export interface LocalListenerTls extends ListenerTls {
  readonly store: CertificateStore;
}

type TlsConfig = NonNullable<ServerConfig["tls"]>;

/** What feeds a listener's certificate store besides `certPath`. */
export interface ListenerSources {
  /** The sources the `certs` entries made, in their order. */
  readonly certs: readonly CertificateSource[];
  /** An ACME manager's certificates, served after the others. */
  readonly acme?: LivePemSource;
  /** A made-up default, when the sources do not fix one. */
  readonly fallbackDefault?: PemPair;
}

/** Loads every certificate of the block (throws CertificateError naming the file at fault). */
export function listenerTls(
  tls: TlsConfig,
  log: Logger,
  sources: ListenerSources,
): LocalListenerTls {
  const certSources: CertificateSource[] = [];
  if (tls.certPath && tls.keyPath) {
    certSources.push({
      kind: "files",
      certPath: tls.certPath,
      keyPath: tls.keyPath,
      intermediateCertsPath: tls.intermediateCertsPath,
      passphraseFile: tls.passphraseFile,
      passphraseEnv: tls.passphraseEnv,
    });
  }
  certSources.push(...sources.certs);
  if (sources.acme) certSources.push({ kind: "live", source: sources.acme });
  const store = new CertificateStore(
    {
      sources: certSources,
      checkIntervalMs: tls.checkIntervalMs,
      fallbackDefault: sources.fallbackDefault,
    },
    (level, message, fields) => log[level](message, fields),
  );
  return { ...tlsPolicy(tls, store, log), store };
}

/** The handshake policy of a `tls` block around certificates kept elsewhere (a worker's). */
export function tlsPolicy(tls: TlsConfig, store: LiveCertificates, log: Logger): ListenerTls {
  let clientCa: string | undefined;
  if (tls.caCertPath) {
    try {
      clientCa = readFileSync(tls.caCertPath, "utf8");
    } catch (e) {
      throw new CertificateError(
        tls.caCertPath,
        `cannot read the CA file (${(e as NodeJS.ErrnoException).code})`,
      );
    }
  }
  const versions = tls.protocols ?? ["TLSv1.2", "TLSv1.3"];
  return {
    store,
    strictSni: tls.strictSni,
    minVersion: versions.includes("TLSv1.2") ? "TLSv1.2" : "TLSv1.3",
    maxVersion: versions.includes("TLSv1.3") ? "TLSv1.3" : "TLSv1.2",
    ciphers: tls.ciphers?.join(":"),
    clientCa,
    requireClientAuth: tls.requireClientAuth,
    contextCacheSize: tls.contextCacheSize,
    log,
  };
}
