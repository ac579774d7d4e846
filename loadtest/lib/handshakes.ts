// Full TLS handshakes at a rate above what the proxy can serve, for the scaling test.
//
// Why h2load and not wrk: wrk reconnects with the session it had (SSL_clear keeps it), so
// most of its "new connections" are resumptions, and what a resumption costs depends on
// whether the connection lands on the thread that issued the ticket. h2load opens a fresh
// client per connection (`-n` = `-c`, one request each) without a session to resume, so
// every connection is a full handshake, and `-r` opens them at a fixed rate from a C
// event loop. Offered above capacity, connections wait in the listen queue and the rate
// served is what the proxy can do; the caller checks that it stayed below the rate asked.

import { start, waitExit } from "./processes.js";

export interface HandshakeLoadOptions {
  readonly url: string;
  /** Connections (each one full handshake and one request). */
  readonly connections: number;
  /** Connections opened per second: above the proxy's capacity. */
  readonly rate: number;
  /** CPU list for taskset. */
  readonly cpus?: string;
  /**
   * Connect to this port on 127.0.0.1 whatever host `url` names, so the name goes as SNI
   * (the certificate-scale benchmark asks for one name among thousands).
   */
  readonly connectTo?: number;
  /**
   * h2load's own timeout for a connection left waiting (dropped from a full listen queue),
   * counted as a timeout.
   */
  readonly inactivityTimeoutS?: number;
}

export interface HandshakeLoadResult {
  /** Connections served per second over the run (each a full handshake and a request). */
  readonly perSecond: number;
  readonly succeeded: number;
  /** Requests h2load counted as failed, errored or timed out. */
  readonly errors: number;
  readonly seconds: number;
}

export async function runHandshakes(o: HandshakeLoadOptions): Promise<HandshakeLoadResult> {
  const proc = start(
    "h2load handshakes",
    "h2load",
    [
      "--h1",
      ...(o.connectTo === undefined ? [] : [`--connect-to=127.0.0.1:${o.connectTo}`]),
      ...(o.inactivityTimeoutS === undefined
        ? []
        : [`--connection-inactivity-timeout=${o.inactivityTimeoutS}`]),
      "-t",
      "1",
      "-c",
      String(o.connections),
      "-n",
      String(o.connections),
      "-r",
      String(o.rate),
      o.url,
    ],
    o.cpus,
  );
  // Generous: a proxy serving a tenth of the rate asked still finishes.
  const finished = await waitExit(proc, (10 * o.connections * 1000) / o.rate + 30_000);
  await proc.stop();
  const out = proc.output();
  const done = /finished in ([\d.]+)(m?s)/.exec(out); // "446.71ms" under a second
  const counts = /(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (!finished || !done || !counts)
    throw new Error(`h2load did not finish its handshakes on ${o.url}:\n${out.slice(-2000)}`);
  const seconds = Number(done[1]) / (done[2] === "ms" ? 1000 : 1);
  const succeeded = Number(counts[1]);
  return {
    perSecond: succeeded / seconds,
    succeeded,
    errors: Number(counts[2]) + Number(counts[3]) + Number(counts[4]),
    seconds,
  };
}
