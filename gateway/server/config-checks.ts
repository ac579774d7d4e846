// What the listener side checks in a config before anything starts, so `lintel check`
// reports what startup would: each server's certificate files load, and a uws server
// asks nothing of TLS its engine cannot do (docs/engines.md).

import type { LintelConfig, ServerConfig } from "../config/config-schema.js";
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

/** Loads a server's certificate files once (Kubernetes Secrets are checked at startup). */
function checkCertificates(tls: ServerTls, at: string, cx: DecodeContext): void {
  const files = tls.certs.filter((c) => c.kind === "files" || c.kind === "dir");
  if (tls.certPath === undefined && files.length === 0) return;
  try {
    listenerTls({ ...tls, certs: files }, silentLogger);
  } catch (e) {
    cx.report(at, (e as Error).message);
  }
}

/** What the uws engine's TLS cannot do: refuse by name, verify clients, pick versions. */
function uwsTlsLimits(tls: ServerTls, at: string, cx: DecodeContext): void {
  const needNode = (key: string, why: string) =>
    cx.report(`${at}.${key}`, `${why}; use engine: node for this server`);
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
