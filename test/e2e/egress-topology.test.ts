// Scenario S2, the book's topology end to end: a service calls http://api.test through a
// lintel node proxy, whose dtab sends external names to HAProxy (mode tcp), which spreads
// connections over two lintel egress instances; they resolve the name with a DNS server
// on loopback (TTLs), apply the egress policy and originate TLS, verified, to HTTPS
// servers playing the external hosts (127.0.0.x with certificates from a test CA).

import { readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DnsServer } from "../support/dns-server.js";
import { type Issued, TestCa } from "../tls/test-ca.js";
import {
  call,
  cleanup,
  eventually,
  freePort,
  onCleanup,
  requireBinary,
  runHaproxy,
  startLintel,
  tempDir,
} from "./harness.js";

const HAPROXY = requireBinary("haproxy", "haproxy", "the egress topology test (S2)");

/** What an external host saw of each request. */
interface ExternalHost {
  readonly name: string;
  readonly seen: { readonly headers: Record<string, unknown>; readonly servername: unknown }[];
}

/** One port free on every address given (external hosts share it, as they share 443). */
async function portFreeOn(ips: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    const ok = await Promise.all(
      ips.map(
        (ip) =>
          new Promise<boolean>((resolve) => {
            const s = createServer();
            s.once("error", () => resolve(false));
            s.listen(port, ip, () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return port;
  }
  throw new Error("no port free on every external address");
}

async function startExternal(
  name: string,
  ip: string,
  port: number,
  cert: Issued,
): Promise<ExternalHost> {
  const host: ExternalHost = { name, seen: [] };
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem() }, (req, res) => {
    host.seen.push({
      headers: req.headers,
      servername: (req.socket as { servername?: unknown }).servername,
    });
    const body = JSON.stringify({ external: name });
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    res.end(body);
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(port, ip, () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return host;
}

async function startHaproxy(port: number, egressPorts: readonly number[]): Promise<void> {
  const dir = tempDir("lintel-haproxy-");
  const cfg = join(dir, "haproxy.cfg");
  // deploy/haproxy/egress-lb.cfg on loopback: TCP, round-robin over the pool.
  writeFileSync(
    cfg,
    `global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend egress_in
  bind 127.0.0.1:${port}
  default_backend lintel_egress
backend lintel_egress
  balance roundrobin
${egressPorts.map((p, i) => `  server egress${i + 1} 127.0.0.1:${p}`).join("\n")}
`,
  );
  await runHaproxy(HAPROXY!, cfg, port);
}

const egressConfig = (dns: string, externalPort: number) => `
admin: {ip: 127.0.0.1, port: 0}
dns: {servers: ["${dns}"], minTtlSecs: 1, maxTtlSecs: 60}
routers:
- protocol: http
  label: egress
  httpAccessLog: access.log
  dtab: /svc => /$/io.buoyant.rinet/${externalPort}
  client:
    kind: io.l5d.static
    configs:
    - prefix: /$/io.buoyant.rinet/*/{service}
      tls:
        commonName: "{service}"
        trustCerts: [ca.pem]
  egress:
    # The "external" hosts live on loopback here; 10.0.0.0/8 stays forbidden.
    allowCidrs: [127.0.0.0/8]
  servers:
  - {ip: 127.0.0.1, port: 0, engine: net}
`;

const nodeProxyConfig = (haproxyPort: number) => `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: outgoing
  dtab: /svc => /$/inet/127.0.0.1/${haproxyPort}
  servers:
  - {ip: 127.0.0.1, port: 0}
`;

const EXTERNAL_IPS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"] as const;

describe.skipIf(HAPROXY === undefined)("scenario S2: the egress pool behind HAProxy", () => {
  let dns: DnsServer;
  let proxyPort = 0;
  let first: ExternalHost;
  let moved: ExternalHost;
  let wrong: ExternalHost;
  let egressDirs: string[] = [];

  beforeAll(async () => {
    const ca = await TestCa.root("S2 Test Root");
    const port = await portFreeOn(EXTERNAL_IPS);
    first = await startExternal("api-1", "127.0.0.11", port, await ca.leaf({ dns: ["api.test"] }));
    wrong = await startExternal(
      "wrong",
      "127.0.0.12",
      port,
      await ca.leaf({ dns: ["other.test"] }),
    );
    moved = await startExternal("api-2", "127.0.0.13", port, await ca.leaf({ dns: ["api.test"] }));

    dns = await DnsServer.start();
    onCleanup(() => dns.close());
    dns.set("api.test", { a: ["127.0.0.11"], ttl: 1 });
    dns.set("wrong.test", { a: ["127.0.0.12"], ttl: 60 });
    dns.set("inside.test", { a: ["10.0.0.7"], ttl: 60 });

    const pool = [];
    for (let i = 0; i < 2; i++) {
      const l = await startLintel(egressConfig(dns.address, port), { "ca.pem": ca.certPem });
      pool.push(l);
    }
    egressDirs = pool.map((l) => l.dir);
    const haproxyPort = await freePort();
    await startHaproxy(
      haproxyPort,
      pool.map((l) => l.port()),
    );
    proxyPort = (await startLintel(nodeProxyConfig(haproxyPort))).port();
  }, 60_000);

  afterAll(cleanup);

  const get = (host: string) => call(proxyPort, { path: "/v1/charges", headers: { host } });

  it("answers from the external host over verified TLS, with SNI and no l5d-* header", async () => {
    const r = await get("api.test");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ external: "api-1" });
    const seen = first.seen.at(-1)!;
    expect(seen.servername).toBe("api.test");
    expect(seen.headers.host).toBe("api.test");
    expect(Object.keys(seen.headers).filter((h) => h.startsWith("l5d-"))).toEqual([]);
    // Two lintel hops (node proxy, egress) on the way out.
    expect(seen.headers.via).toBe("1.1 lintel, 1.1 lintel");
  });

  it("both egress instances take traffic", async () => {
    // Concurrent requests make the node proxy open several connections to HAProxy,
    // which hands them out round-robin.
    const replies = await Promise.all(Array.from({ length: 24 }, () => get("api.test")));
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    await eventually(
      () =>
        egressDirs.every((d) => {
          try {
            return readFileSync(join(d, "access.log"), "utf8").includes("/svc/api.test");
          } catch {
            return false;
          }
        }),
      3000,
      "both egress access logs to show requests",
    );
  });

  it("follows a DNS change within the TTL and the refresh, on every egress instance", async () => {
    dns.set("api.test", { a: ["127.0.0.13"], ttl: 1 });
    const t0 = performance.now();
    // Concurrent batches reach both instances; each follows the change on its own.
    const batch = async () =>
      (await Promise.all(Array.from({ length: 8 }, () => get("api.test")))).map(
        (r) => JSON.parse(r.text).external as string,
      );
    await eventually(
      async () => (await batch()).every((x) => x === "api-2"),
      6000,
      "every request to reach the new address",
    );
    // TTL 1 s (minTtlSecs 1), renewed at 85 % of it while in use: within about 2 s.
    expect(performance.now() - t0).toBeLessThan(3500);
    expect(moved.seen.length).toBeGreaterThan(0);
  });

  it("fails closed on a certificate for another name: 502 saying which", async () => {
    const r = await get("wrong.test");
    expect(r.status).toBe(502);
    expect(decodeURIComponent(String(r.headers["l5d-err"]))).toMatch(
      /the certificate is for other\.test, not wrong\.test/,
    );
    expect(wrong.seen).toHaveLength(0);
  });

  it("refuses a name that resolves to a forbidden address", async () => {
    const r = await get("inside.test");
    expect(r.status).toBe(403);
    expect(decodeURIComponent(String(r.headers["l5d-err"]))).toContain(
      "egress to inside.test (10.0.0.7) is not allowed: private (RFC 1918) address",
    );
  });
});
