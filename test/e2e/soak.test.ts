// The soak's short version (the long one is `npm run bench -- --soak`): a real lintel
// process under steady keep-alive traffic for 40 s while its certificate and its dtab
// change every 4 s. No request may fail, new TLS connections must see every certificate,
// the service must follow the dtab, and the process must not grow: file descriptors
// flat once the traffic's connections are open, resident memory within a bound.

import { readdirSync, renameSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { get as httpsGet } from "node:https";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { TestCa } from "../tls/test-ca.js";
import { MB, memoryOf, startChildLintel } from "./child.js";
import { cleanup, closeOnCleanup, freePort } from "./harness.js";

afterEach(cleanup);

const RUN_MS = 40_000;
const CHANGE_EVERY_MS = 4_000;
const LOOPS = 16;

/** An upstream answering 200 with `x-backend: name`. */
async function backend(name: string): Promise<number> {
  const { createServer } = await import("node:http");
  const server = createServer((_req, res) => {
    res.writeHead(200, { "x-backend": name, "content-length": "3" });
    res.end("ok\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closeOnCleanup(server);
  return (server.address() as { port: number }).port;
}

const fdsOf = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe("a short soak", () => {
  it("serves through 10 certificate and 10 dtab changes with no failure and no growth", async () => {
    const ca = await TestCa.root();
    const first = await ca.leaf({ dns: ["soak.test"] });
    const a = await backend("a");
    const b = await backend("b");
    const dtab = (port: number) => `/svc => /$/inet/127.0.0.1/${port};\n`;
    const tlsPort = await freePort();
    const l = await startChildLintel(
      (port, adminPort) => `
admin: {ip: 127.0.0.1, port: ${adminPort}}
routers:
- protocol: http
  label: soak
  interpreter: {kind: io.l5d.fs, dtabFile: soak.dtab}
  servers:
  - {ip: 127.0.0.1, port: ${port}}
  - {ip: 127.0.0.1, port: ${tlsPort}, tls: {certPath: certs/soak.crt, keyPath: certs/soak.key}}
`,
      {
        "soak.dtab": dtab(a),
        "certs/soak.crt": first.certPem,
        "certs/soak.key": first.keyPem(),
      },
    );
    const agent = new Agent({ keepAlive: true, maxSockets: LOOPS });
    let requests = 0;
    const failures: string[] = [];
    const backendsSeen: string[] = [];
    const end = Date.now() + RUN_MS;
    const loop = async () => {
      while (Date.now() < end) {
        const r = await new Promise<{ status: number; backend: string }>((resolve) => {
          const req = request(
            { host: "127.0.0.1", port: l.port, path: "/", headers: { host: "soak" }, agent },
            (res) => {
              res.resume();
              res.on("end", () =>
                resolve({ status: res.statusCode ?? 0, backend: String(res.headers["x-backend"]) }),
              );
            },
          );
          req.on("error", (e) => resolve({ status: 0, backend: e.message }));
          req.end();
        });
        requests++;
        if (r.status !== 200) failures.push(`${r.status} ${r.backend}`);
        else if (backendsSeen[backendsSeen.length - 1] !== r.backend) backendsSeen.push(r.backend);
      }
    };
    // New TLS connections every 200 ms: which certificate each was served.
    const seenSerials = new Set<string>();
    const prober = setInterval(() => {
      const req = httpsGet(
        {
          host: "127.0.0.1",
          port: tlsPort,
          servername: "soak.test",
          headers: { host: "soak" },
          ca: ca.certPem,
          agent: false,
        },
        (res) => {
          seenSerials.add((res.socket as TLSSocket).getPeerCertificate().serialNumber);
          if (res.statusCode !== 200) failures.push(`TLS ${res.statusCode}`);
          res.resume();
        },
      );
      req.on("error", (e) => failures.push(`TLS ${e.message}`));
    }, 200);
    // Every 4 s: a new certificate (the key renamed in first, so a moment shows a pair
    // that does not match, which lintel must refuse), and the dtab moves the service.
    const served = [first.serial];
    let changes = 0;
    const changer = setInterval(async () => {
      changes++;
      const next = await ca.leaf({ dns: ["soak.test"] });
      served.push(next.serial);
      const certs = join(l.dir, "certs");
      writeFileSync(join(certs, "next.key"), next.keyPem());
      writeFileSync(join(certs, "next.crt"), next.certPem);
      renameSync(join(certs, "next.key"), join(certs, "soak.key"));
      renameSync(join(certs, "next.crt"), join(certs, "soak.crt"));
      writeFileSync(join(l.dir, "soak.dtab.next"), dtab(changes % 2 === 1 ? b : a));
      renameSync(join(l.dir, "soak.dtab.next"), join(l.dir, "soak.dtab"));
    }, CHANGE_EVERY_MS);
    const samples: { atMs: number; fds: number; rss: number }[] = [];
    const t0 = Date.now();
    const sampler = setInterval(
      () => samples.push({ atMs: Date.now() - t0, fds: fdsOf(l.pid), rss: memoryOf(l.pid).rss }),
      1000,
    );
    try {
      await Promise.all(Array.from({ length: LOOPS }, loop));
      // The last certificate has a moment to reach new connections.
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      clearInterval(prober);
      clearInterval(changer);
      clearInterval(sampler);
      agent.destroy();
    }
    const steady = samples.filter((s) => s.atMs >= 5000);
    const fds = steady.map((s) => s.fds);
    const rss = steady.map((s) => s.rss);
    console.log(
      `[soak] ${requests} requests, ${changes} changes, ${seenSerials.size} certificates seen; fds ${fds[0]} -> max ${Math.max(...fds)}; RSS ${(rss[0]! / MB).toFixed(1)} -> ${(rss[rss.length - 1]! / MB).toFixed(1)} MiB`,
    );
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(2000);
    expect(changes).toBeGreaterThanOrEqual(9);
    // Every certificate but possibly the last was seen by new connections.
    expect(served.slice(0, -1).filter((s) => !seenSerials.has(s))).toEqual([]);
    // The service followed the dtab back and forth.
    expect(backendsSeen.length).toBeGreaterThanOrEqual(changes - 1);
    // After the first 5 s every connection the traffic uses is open: no growth from then.
    expect(Math.max(...fds) - fds[0]!).toBeLessThanOrEqual(8);
    expect(rss[rss.length - 1]! - rss[0]!).toBeLessThan(48 * MB);
  }, 90_000);
});
