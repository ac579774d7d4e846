// `npm run bench -- --soak [--soak-minutes N] [--soak-rate REQ_PER_S]`: lintel (the net
// engine, one thread) under a fixed request rate for a long time, half of HAProxy's peak
// measured at the start of the same run, while its certificate and its dtab change every
// minute. What must hold: no failed request, resident memory flat (the slope of VmRSS
// after the first minute, in MiB per hour), no file-descriptor growth, and every
// certificate change seen by new TLS connections.
//
// The load runs in one-minute chunks of open-loop h2load (lib/openloop.ts; one chunk's
// per-request log at a time, so an hour does not fill the disk); each minute, half-way
// through its chunk, a new certificate (new key, new serial) is renamed over the served
// files and the dtab file (an io.l5d.fs interpreter) moves the service between two
// backends. A prober opens a new TLS connection every 250 ms and a plaintext request every
// 250 ms: its failures count, and it records which certificate and which backend it saw.

import { createHash } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { BENCH_NAME, makeBenchCert } from "./lib/certs.js";
import { runOpenLoop } from "./lib/openloop.js";
import { freePort, type Proc, rssKb, start, stopAll, waitForPort } from "./lib/processes.js";
import { runWrk } from "./lib/wrk.js";

export interface SoakOptions {
  readonly minutes: number;
  /** Requests per second; default half of HAProxy's peak, measured first. */
  readonly rate?: number;
  /** A scratch directory (removed by the caller). */
  readonly dir: string;
  readonly lintelBin: string;
  readonly resultsFile: string;
}

interface Sample {
  readonly atS: number;
  readonly rssMiB: number;
  readonly fds: number;
}

/**
 * A new self-signed ECDSA certificate (lib/certs.ts, a new key each time) renamed over
 * `certPath` and `keyPath`. The key first: a reader between the two renames sees a pair
 * that does not match, which lintel must refuse (keeping the served pair) rather than serve.
 */
function issue(scratch: string, certPath: string, keyPath: string): void {
  const next = makeBenchCert(mkdtempSync(join(scratch, "next-")));
  renameSync(next.keyPath, keyPath);
  renameSync(next.certPath, certPath);
}

const fingerprint = (pem: string) =>
  createHash("sha256")
    .update(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64"))
    .digest("hex");

/** Every 250 ms a new TLS connection and a plaintext request; what they saw and how they failed. */
function startProber(tlsPort: number, plainPort: number) {
  const certificates = new Set<string>();
  const backends: string[] = [];
  let failures = 0;
  let probes = 0;
  const failuresSeen: string[] = [];
  const fail = (what: string) => {
    failures++;
    if (failuresSeen.length < 10) failuresSeen.push(what);
  };
  const tick = () => {
    probes++;
    const tlsReq = httpsGet(
      {
        host: "127.0.0.1",
        port: tlsPort,
        servername: BENCH_NAME,
        headers: { host: BENCH_NAME },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        if (cert?.raw) certificates.add(createHash("sha256").update(cert.raw).digest("hex"));
        if (res.statusCode !== 200) fail(`TLS probe answered ${res.statusCode}`);
        res.resume();
      },
    );
    tlsReq.setTimeout(5000, () => tlsReq.destroy(new Error("no answer in 5 s")));
    tlsReq.on("error", (e) => fail(`TLS probe: ${e.message}`));
    const plain = httpGet(
      { host: "127.0.0.1", port: plainPort, headers: { host: "soak" }, agent: false },
      (res) => {
        const b = String(res.headers["x-backend"] ?? "");
        if (backends[backends.length - 1] !== b) backends.push(b);
        if (res.statusCode !== 200) fail(`plaintext probe answered ${res.statusCode}`);
        res.resume();
      },
    );
    plain.setTimeout(5000, () => plain.destroy(new Error("no answer in 5 s")));
    plain.on("error", (e) => fail(`plaintext probe: ${e.message}`));
  };
  const timer = setInterval(tick, 250);
  return {
    stop: () => clearInterval(timer),
    report: () => ({
      probes,
      failures,
      failuresSeen,
      certificates: [...certificates],
      backendChanges: backends.length - 1,
    }),
  };
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function fdsOf(proc: Proc): number {
  try {
    return readdirSync(`/proc/${proc.child.pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

export async function runSoak(o: SoakOptions): Promise<void> {
  const { dir } = o;
  const [backendA, backendB, haproxyPort, plainPort, tlsPort, adminPort] = await Promise.all(
    Array.from({ length: 6 }, () => freePort()),
  );
  writeFileSync(join(dir, "body"), "soak\n");
  writeFileSync(
    join(dir, "backend.cfg"),
    `global\n  maxconn 4096\ndefaults\n  mode http\n  timeout client 60s\n  option http-keep-alive\n${[
      "a",
      "b",
    ]
      .map(
        (b) =>
          `frontend ${b}\n  bind 127.0.0.1:${b === "a" ? backendA : backendB}\n  http-request return status 200 content-type text/plain file ${join(dir, "body")} hdr x-backend ${b}\n`,
      )
      .join("")}`,
  );
  const backend = start("backends", "haproxy", ["-f", join(dir, "backend.cfg")], "1");
  await waitForPort(backendA!, backend);

  let rate = o.rate;
  if (rate === undefined) {
    writeFileSync(
      join(dir, "haproxy.cfg"),
      `global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n  http-reuse always\nfrontend soak\n  bind 127.0.0.1:${haproxyPort}\n  default_backend app\nbackend app\n  server app 127.0.0.1:${backendA} maxconn 4096\n`,
    );
    const haproxy = start("haproxy", "haproxy", ["-f", join(dir, "haproxy.cfg")], "0");
    await waitForPort(haproxyPort!, haproxy);
    const peak = await runWrk({
      url: `http://127.0.0.1:${haproxyPort}/`,
      connections: 64,
      durationS: 5,
      cpus: "1",
    });
    await haproxy.stop();
    rate = Math.round(peak.rps / 2);
    console.log(`HAProxy's peak: ${Math.round(peak.rps)} req/s; the soak runs at ${rate} req/s`);
  }

  const certPath = join(dir, "soak.crt");
  const keyPath = join(dir, "soak.key");
  const certs = join(dir, "certs");
  mkdirSync(certs);
  issue(certs, certPath, keyPath);
  const dtabFile = join(dir, "soak.dtab");
  const dtabFor = (b: "a" | "b") =>
    `/svc => /$/inet/127.0.0.1/${b === "a" ? backendA : backendB};\n`;
  writeFileSync(dtabFile, dtabFor("a"));
  const config = join(dir, "lintel.yaml");
  writeFileSync(
    config,
    `workers: 0\nadmin: {ip: 127.0.0.1, port: ${adminPort}}\nrouters:\n- protocol: http\n  label: soak\n  interpreter: {kind: io.l5d.fs, dtabFile: ${dtabFile}}\n  servers:\n  - {ip: 127.0.0.1, port: ${plainPort}}\n  - {ip: 127.0.0.1, port: ${tlsPort}, tls: {certPath: ${certPath}, keyPath: ${keyPath}}}\n`,
  );
  const lintel = start("lintel", process.execPath, [o.lintelBin, "run", config], "0");
  await waitForPort(plainPort!, lintel);
  await waitForPort(tlsPort!, lintel);

  const t0 = Date.now();
  const samples: Sample[] = [];
  const sample = () =>
    samples.push({
      atS: (Date.now() - t0) / 1000,
      rssMiB: rssKb(lintel).reduce((a, r) => a + r.rss_kb, 0) / 1024,
      fds: fdsOf(lintel),
    });
  sample();
  const sampler = setInterval(sample, 10_000);
  const prober = startProber(tlsPort!, plainPort!);
  const served = [fingerprint(readFileSync(certPath, "utf8"))];
  let requests = 0;
  let errors = 0;
  const minutes: unknown[] = [];
  /** File descriptors at the end of each minute, load still running. */
  const minuteFds: number[] = [];
  try {
    for (let m = 1; m <= o.minutes; m++) {
      // Half-way through the minute: a new certificate, and the service moves backends.
      const change = setTimeout(() => {
        issue(certs, certPath, keyPath);
        served.push(fingerprint(readFileSync(certPath, "utf8")));
        writeFileSync(`${dtabFile}.next`, dtabFor(m % 2 === 1 ? "b" : "a"));
        renameSync(`${dtabFile}.next`, dtabFile);
      }, 30_000);
      const r = await runOpenLoop({
        url: `http://127.0.0.1:${plainPort}/`,
        rate,
        durationS: 60,
        dir: join(dir, "certs"),
        cpus: "1",
      });
      clearTimeout(change);
      requests += r.requests;
      errors += r.errors;
      const last = samples[samples.length - 1]!;
      minuteFds.push(fdsOf(lintel));
      minutes.push({
        minute: m,
        achieved_rps: Math.round(r.achievedRps),
        errors: r.errors,
        p99_ms: r.p99Ms,
        rss_mib: Math.round(last.rssMiB * 10) / 10,
        fds: last.fds,
      });
      console.log(
        `minute ${m}/${o.minutes}: ${Math.round(r.achievedRps)} req/s, ${r.errors} errors, p99 ${r.p99Ms.toFixed(2)} ms, RSS ${last.rssMiB.toFixed(1)} MiB, ${last.fds} fds`,
      );
    }
  } finally {
    clearInterval(sampler);
    prober.stop();
  }
  await new Promise((r) => setTimeout(r, 1000));
  sample();
  const probes = prober.report();
  const steady = samples.filter((s) => s.atS >= 60);
  const rssSlope = slope(
    steady.map((s) => s.atS / 3600),
    steady.map((s) => s.rssMiB),
  );
  // Under load the count includes the load's connections: growth is read from the end of
  // the first minute, when every connection is open, to the end of the last.
  const fds = steady.map((s) => s.fds);
  const certsSeen = served.filter((f) => probes.certificates.includes(f)).length;
  const result = {
    date: new Date().toISOString(),
    minutes: o.minutes,
    rate,
    requests,
    failed_requests: errors,
    probe_failures: probes.failures,
    probe_failures_seen: probes.failuresSeen,
    certificates_served: served.length,
    certificates_seen_by_new_connections: certsSeen,
    backend_changes_seen: probes.backendChanges,
    rss_mib_first: samples[0]!.rssMiB,
    rss_mib_last: samples[samples.length - 1]!.rssMiB,
    rss_slope_mib_per_hour: Math.round(rssSlope * 10) / 10,
    fds_min: Math.min(...fds),
    fds_max: Math.max(...fds),
    fds_after_first_minute: fds[0],
    fds_at_end: minuteFds[minuteFds.length - 1],
    per_minute: minutes,
  };
  writeFileSync(o.resultsFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    [
      `soak: ${o.minutes} min at ${rate} req/s, ${requests} requests, ${errors} failed; probes failed ${probes.failures}/${probes.probes * 2}`,
      `certificates: ${served.length} served, ${certsSeen} seen by new TLS connections; the service moved between backends ${probes.backendChanges} times`,
      `RSS ${result.rss_mib_first.toFixed(1)} -> ${result.rss_mib_last.toFixed(1)} MiB, slope after the first minute ${result.rss_slope_mib_per_hour} MiB/h; fds at the end of each minute ${minuteFds.join(", ")}`,
    ].join("\n"),
  );
  await stopAll();
}
