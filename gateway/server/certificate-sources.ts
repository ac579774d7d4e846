// The certificate sources of a TLS server, made on the control thread: one per `certs`
// entry (its kind's `create`, with the shared services), an ACME manager (with its part in
// handshakes), and a generated self-signed default when nothing fixes the default (only
// sources whose content comes and goes, such as Ingress Secrets or ACME certificates).

import type { CertificateSource } from "../../tls/certificate-store.js";
import { selfSignedDefault } from "../../tls/self-signed.js";
import type { AcmeService } from "../acme/service.js";
import type { RouterConfig, ServerConfig } from "../config/config-schema.js";
import type { PluginContext } from "../plugins/types.js";
import type { ListenerAcme, ListenerSources } from "./tls-listener.js";

export interface ServerCertificateSources extends ListenerSources {
  readonly acmeHooks: ListenerAcme | undefined;
}

/**
 * Whether the sources fix a default: `certPath`, or a first source that is sure to
 * serve something (files, a folder, a required live source such as a named Secret).
 */
function hasFixedDefault(tls: NonNullable<ServerConfig["tls"]>, certs: CertificateSource[]) {
  const first = certs[0];
  return (
    tls.certPath !== undefined ||
    (first !== undefined && (first.kind !== "live" || first.source.required))
  );
}

/** The sources of a TLS server (undefined for a plain-HTTP one); starts their watches. */
export async function serverCertificateSources(
  s: ServerConfig,
  router: RouterConfig,
  where: string,
  deps: { readonly context: PluginContext; readonly acme: AcmeService | undefined },
): Promise<ServerCertificateSources | undefined> {
  const tls = s.tls;
  if (!tls) return undefined;
  const ctx = { ...deps.context, identifiers: router.identifier };
  const certs = tls.certs.map((c, i) => {
    try {
      return c.plugin.create(c.config, ctx);
    } catch (e) {
      throw new Error(`certs[${i}] (${c.kind}): ${(e as Error).message}`);
    }
  });
  let acme: ServerCertificateSources["acme"];
  let acmeHooks: ListenerAcme | undefined;
  if (tls.acme && deps.acme) {
    const manager = await deps.acme.manager(tls.acme, s.engine, where);
    const service = deps.acme;
    acme = manager;
    acmeHooks = {
      answersAlpn: manager.challenges.includes("tls-alpn-01"),
      alpnCertificate: (name) => service.alpnAnswer(name),
      onDemand: tls.acme.onDemand ? (name) => manager.ensure(name) : undefined,
    };
  }
  return {
    certs,
    acme,
    acmeHooks,
    fallbackDefault: hasFixedDefault(tls, certs) ? undefined : await selfSignedDefault(),
  };
}
