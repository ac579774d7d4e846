// Every certificate lintel serves, for /admin/certificates.json and `lintel certs`: per
// TLS server, each certificate's names, where it comes from (file, folder, Secret, ACME,
// the generated default), issuer and dates, and for ACME names their renewal state;
// and a gauge per name of the seconds until it expires.

import type { CertificateStore } from "../../tls/certificate-store.js";
import type { AcmeManagerView, AcmeService } from "../acme/service.js";
import type { Registry } from "../telemetry/index.js";

/** One TLS server's certificate store, as the runtime keeps it. */
export interface TlsServerStore {
  readonly router: string;
  readonly server: number;
  readonly address: string;
  readonly store: CertificateStore;
}

export interface CertificateView {
  readonly names: readonly string[];
  readonly source: string;
  readonly default: boolean;
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly expiresInSecs: number;
  /** A folder's certificate whose key or chain turned out unusable on first use. */
  readonly error?: string;
  /** For ACME names: the renewal state. */
  readonly acme?: AcmeManagerView["names"][number];
}

export interface CertificatesView {
  readonly servers: readonly {
    readonly router: string;
    readonly server: number;
    readonly address: string;
    readonly certificates: readonly CertificateView[];
  }[];
  /** Every ACME manager and its names, those without a certificate (yet) included. */
  readonly acme: readonly AcmeManagerView[];
}

export function certificatesView(
  servers: readonly TlsServerStore[],
  acme: AcmeService | undefined,
  now = Date.now(),
): CertificatesView {
  const managers = acme?.status() ?? [];
  const acmeByName = new Map(managers.flatMap((m) => m.names.map((n) => [n.name, n] as const)));
  return {
    servers: servers.map((s) => {
      const def = s.store.current.defaultCert;
      return {
        router: s.router,
        server: s.server,
        address: s.address,
        certificates: s.store.certificates().map(({ cert, source }) => {
          const status = source.startsWith("ACME ") ? acmeByName.get(source.slice(5)) : undefined;
          return {
            names: cert.names,
            source,
            default: cert === def,
            issuer: cert.leaf.issuer.split("\n").join(", "),
            notBefore: new Date(cert.leaf.validFrom).toISOString(),
            notAfter: cert.notAfter.toISOString(),
            expiresInSecs: Math.round((cert.notAfter.getTime() - now) / 1000),
            ...("error" in cert && cert.error !== undefined ? { error: cert.error } : {}),
            ...(status ? { acme: status } : {}),
          };
        }),
      };
    }),
    acme: managers,
  };
}

/**
 * Keeps a gauge per certificate name, `tls:certificate:expiry_seconds{name=…}`: the
 * seconds until the soonest expiry of that name among the certificates served (NaN once
 * no certificate serves it), and each TLS server's certificate counters
 * (`tls:store:*{server=…}`: certificates indexed, loaded in full, failed on first use,
 * TLS contexts built and evicted). Call before each snapshot: names come and go. One pass
 * over the certificates per call, whatever their number.
 */
export function certificateGauges(
  registry: Registry,
  servers: () => readonly TlsServerStore[],
): () => void {
  let soonest = new Map<string, number>();
  /** Names with a gauge (kept once made: a name that goes reads NaN). */
  const known = new Set<string>();
  const stores = new Map<CertificateStore, (c: CertificateStore["counters"]) => void>();
  return () => {
    const next = new Map<string, number>();
    for (const s of servers()) {
      for (const { cert } of s.store.certificates()) {
        const at = cert.notAfter.getTime();
        for (const name of cert.names) {
          const had = next.get(name);
          if (had === undefined || at < had) next.set(name, at);
          if (!known.has(name)) {
            known.add(name);
            registry
              .scope({
                flat: `tls/certificate/${name}`,
                prom: "tls:certificate",
                labels: [["name", name]],
              })
              .gauge("expiry_seconds", () => {
                const t = soonest.get(name);
                return t === undefined ? Number.NaN : Math.round((t - Date.now()) / 1000);
              });
          }
        }
      }
      let update = stores.get(s.store);
      if (!update) {
        const scope = registry.scope({
          flat: `tls/store/${s.address}`,
          prom: "tls:store",
          labels: [["server", s.address]],
        });
        const indexed = scope.counter("indexed");
        const loaded = scope.counter("loaded");
        const failed = scope.counter("failed");
        const built = scope.counter("contexts_built");
        const evicted = scope.counter("contexts_evicted");
        update = (c) => {
          indexed.n = c.indexed;
          loaded.n = c.loaded;
          failed.n = c.failed;
          built.n = c.contextsBuilt;
          evicted.n = c.contextsEvicted;
        };
        stores.set(s.store, update);
      }
      update(s.store.counters);
    }
    soonest = next;
  };
}
