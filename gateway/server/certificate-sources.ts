// The certificates of a TLS server that do not come from files: Kubernetes Secrets, an
// ACME manager (with its part in handshakes), and a generated self-signed default when
// nothing fixes the default (only Ingress Secrets or ACME certificates, which come and go).

import { selfSignedDefault } from "../../tls/self-signed.js";
import type { AcmeService } from "../acme/service.js";
import type { RouterConfig, ServerConfig } from "../config/config-schema.js";
import type { KubeApis } from "../k8s/kube-apis.js";
import { listenerSecretSources } from "../k8s/secret-certificates.js";
import type { ListenerAcme, ListenerLiveSources } from "./tls-listener.js";

export interface ServerCertificateSources extends ListenerLiveSources {
  readonly acmeHooks: ListenerAcme | undefined;
}

type ServerTls = NonNullable<ServerConfig["tls"]>;

/** Whether the server's certificates fix a default (a file, a folder, a named Secret first). */
function hasFixedDefault(tls: ServerTls): boolean {
  const first = tls.certs[0];
  return tls.certPath !== undefined || (first !== undefined && first.kind !== "ingressSecrets");
}

/** The sources of a TLS server, or undefined when all its certificates are files. */
export async function serverCertificateSources(
  s: ServerConfig,
  router: RouterConfig,
  where: string,
  deps: { readonly kube: KubeApis | undefined; readonly acme: AcmeService | undefined },
): Promise<ServerCertificateSources | undefined> {
  const tls = s.tls;
  if (!tls) return undefined;
  const live = listenerSecretSources(tls, router, deps.kube);
  if (live.size === 0 && !tls.acme) return undefined;
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
    live,
    acme,
    acmeHooks,
    fallbackDefault: hasFixedDefault(tls) ? undefined : await selfSignedDefault(),
  };
}
