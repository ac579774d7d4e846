// What the listener side checks in a config before anything starts, so `lintel check`
// reports what startup would: each server's certificate files load, and a uws server
// asks nothing of TLS its engine cannot do (docs/engines.md).

import type { CertificateSource } from "../../tls/certificate-store.js";
import { type DirConfig, dirCertSource } from "../cert-sources/dir.js";
import { type FilesConfig, filesCertSource } from "../cert-sources/files.js";
import type { LintelConfig, ServerConfig } from "../config/config-schema.js";
import type { PluginConfig } from "../config/plugin-schema.js";
import type { DecodeContext } from "../config/schema.js";
import { silentLogger } from "../log.js";
import { listenerTls } from "./tls-listener.js";

type ServerTls = NonNullable<ServerConfig["tls"]>;

export function checkServers(config: LintelConfig, cx: DecodeContext): void {
  config.routers.forEach((r, i) => {
    r.servers.forEach((s, j) => {
      if (!s.tls) return;
      const at = `routers[${i}].servers[${j}].tls`;
      if (s.engine === "uws") uwsTlsLimits(s.tls, at, cx);
      checkCertificates(s.tls, at, cx);
    });
  });
}

/** Loads a server's certificate files once (live sources, such as Secrets, are checked at startup). */
function checkCertificates(tls: ServerTls, at: string, cx: DecodeContext): void {
  const certs = tls.certs.flatMap(onDisk);
  if (tls.certPath === undefined && certs.length === 0) return;
  try {
    listenerTls(tls, silentLogger, { certs });
  } catch (e) {
    cx.report(at, (e as Error).message);
  }
}

/** The source of an entry read from disk, made without starting anything. */
function onDisk(c: PluginConfig<"certSource">): CertificateSource[] {
  if (c.plugin === filesCertSource) return [filesCertSource.create(c.config as FilesConfig)];
  if (c.plugin === dirCertSource) return [dirCertSource.create(c.config as DirConfig)];
  return [];
}

/** What the uws engine's TLS cannot do: refuse by name, verify clients, pick versions. */
function uwsTlsLimits(tls: ServerTls, at: string, cx: DecodeContext): void {
  const needNode = (key: string, why: string) =>
    cx.report(`${at}.${key}`, `${why}; use engine: net for this server`);
  if (tls.strictSni)
    needNode("strictSni", "the uws engine cannot refuse a handshake by server name");
  if (tls.requireClientAuth || tls.caCertPath)
    needNode(
      tls.requireClientAuth ? "requireClientAuth" : "caCertPath",
      "the uws engine cannot verify client certificates",
    );
  if (tls.protocols && !(tls.protocols.includes("TLSv1.2") && tls.protocols.includes("TLSv1.3"))) {
    needNode("protocols", "the uws engine always offers TLS 1.2 and 1.3");
  }
}
