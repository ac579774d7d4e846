// Asking a TLS listener for one name, for the certificate-scale benchmark: which
// certificate it presents (a handshake, then close), how long until a starting proxy first
// presents the right one, and full handshakes at a rate for that name (h2load connecting
// to loopback while sending the name as SNI).

import { connect } from "node:tls";
import { type HandshakeLoadResult, runHandshakes } from "./handshakes.js";
import type { Proc } from "./processes.js";

/** What the listener presents for `name` (subject CN and serial), undefined when the handshake fails. */
export function presented(
  port: number,
  name: string,
  timeoutMs = 2000,
): Promise<{ cn: string; serial: string } | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port, servername: name, rejectUnauthorized: false });
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const done = (r: { cn: string; serial: string } | undefined) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    s.once("secureConnect", () => {
      const peer = s.getPeerCertificate();
      const cn = peer.subject?.CN;
      done({ cn: String(Array.isArray(cn) ? cn[0] : cn), serial: peer.serialNumber });
    });
    s.once("error", () => done(undefined));
  });
}

/** Polls until `check` holds; the milliseconds it took, or undefined past `timeoutMs`. */
export async function msUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  proc?: Proc,
): Promise<number | undefined> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (proc && proc.child.exitCode !== null)
      throw new Error(`${proc.name} exited:\n${proc.output().slice(-2000)}`);
    if (await check()) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/** Full handshakes for `name` (one request each) on 127.0.0.1:port, as lib/handshakes.ts. */
export function runSniHandshakes(o: {
  port: number;
  name: string;
  connections: number;
  rate: number;
  cpus?: string;
}): Promise<HandshakeLoadResult> {
  return runHandshakes({
    url: `https://${o.name}:${o.port}/`,
    connectTo: o.port,
    inactivityTimeoutS: 10,
    connections: o.connections,
    rate: o.rate,
    cpus: o.cpus,
  });
}
