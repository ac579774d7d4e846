// Asking a TLS listener for one name, for the certificate-scale benchmark: which
// certificate it presents (a handshake, then close), how long until a starting proxy first
// presents the right one, and full handshakes at a rate for that name (h2load connecting
// to loopback while sending the name as SNI).

import { connect } from "node:tls";
import type { HandshakeLoadResult } from "./handshakes.js";
import { type Proc, start, waitExit } from "./processes.js";

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
export async function runSniHandshakes(o: {
  port: number;
  name: string;
  connections: number;
  rate: number;
  cpus?: string;
}): Promise<HandshakeLoadResult> {
  const proc = start(
    "h2load handshakes",
    "h2load",
    [
      "--h1",
      `--connect-to=127.0.0.1:${o.port}`,
      // A connection left waiting (dropped from a full listen queue) counts as a timeout.
      "--connection-inactivity-timeout=10",
      "-t",
      "1",
      "-c",
      String(o.connections),
      "-n",
      String(o.connections),
      "-r",
      String(o.rate),
      `https://${o.name}:${o.port}/`,
    ],
    o.cpus,
  );
  const finished = await waitExit(proc, (10 * o.connections * 1000) / o.rate + 30_000);
  await proc.stop();
  const out = proc.output();
  const done = /finished in ([\d.]+)(m?s)/.exec(out); // "446.71ms" under a second
  const counts = /(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (!finished || !done || !counts)
    throw new Error(`h2load did not finish its handshakes for ${o.name}:\n${out.slice(-2000)}`);
  const seconds = Number(done[1]) / (done[2] === "ms" ? 1000 : 1);
  const succeeded = Number(counts[1]);
  return {
    perSecond: succeeded / seconds,
    succeeded,
    errors: Number(counts[2]) + Number(counts[3]) + Number(counts[4]),
    seconds,
  };
}
