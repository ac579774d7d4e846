// The `dns` block end to end: lintel resolves /$/inet and /$/io.buoyant.rinet names with a
// real DNS server on loopback (test/support/dns-server.ts), follows a changed record to
// another upstream, and answers 502 with the host and the DNS error when resolution fails.

import { createServer } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { DnsServer } from "../support/dns-server.js";
import { call, cleanup, eventually, metricsJson, onCleanup, startLintel } from "./harness.js";

afterEach(cleanup);

/** An upstream answering `{"upstream": name}` on `ip` (any of 127.0.0.0/8 on Linux). */
async function upstreamOn(ip: string, name: string, port = 0): Promise<number> {
  const server = createServer((_req, res) => res.end(JSON.stringify({ upstream: name })));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, ip, () => resolve());
  });
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const a = server.address();
  return typeof a === "object" && a ? a.port : 0;
}

async function dnsServer(): Promise<DnsServer> {
  const dns = await DnsServer.start();
  onCleanup(() => dns.close());
  return dns;
}

function config(dns: DnsServer, port: number): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
dns:
  servers: ["${dns.address}"]
  minTtlSecs: 1
  timeoutMs: 300
  tries: 1
  negativeTtlSecs: 1
  staleIfErrorSecs: 0
routers:
- protocol: http
  label: r
  dtab: |
    /svc => /$/io.buoyant.rinet/${port};
    /svc/api => /$/inet/api.test/${port};
  servers:
  - {ip: 127.0.0.1, port: 0, engine: net}
`;
}

const upstreamOf = (text: string): string => (JSON.parse(text) as { upstream: string }).upstream;

describe("DNS through lintel", () => {
  it("routes to the addresses DNS gives and follows a changed record within its TTL", async () => {
    const port = await upstreamOn("127.0.0.2", "two");
    await upstreamOn("127.0.0.3", "three", port);
    const dns = await dnsServer();
    dns.set("api.test", { a: ["127.0.0.2"], ttl: 1 });
    const l = await startLintel(config(dns, port));

    const first = await call(l.port(), { headers: { host: "api" } });
    expect(first.status).toBe(200);
    expect(upstreamOf(first.text)).toBe("two");

    dns.set("api.test", { a: ["127.0.0.3"], ttl: 1 });
    const changedAt = Date.now();
    await eventually(
      async () => {
        const r = await call(l.port(), { headers: { host: "api" } });
        return r.status === 200 && upstreamOf(r.text) === "three";
      },
      3000,
      "traffic to move to 127.0.0.3",
    );
    // TTL 1 s: the record is asked again about a second after the first answer.
    expect(Date.now() - changedAt).toBeLessThan(2500);
    const after = await call(l.port(), { headers: { host: "api" } });
    expect(upstreamOf(after.text)).toBe("three");
    // The resolver's cache is reported with the process's metrics.
    const m = await metricsJson(l);
    expect(m["dns/cache/names"]).toBe(1);
    expect([m["dns/cache/evicts"], m["dns/lookups/inflight"]]).toEqual([0, 0]);
  });

  it("answers 502 for a name that does not exist (NXDOMAIN), naming it", async () => {
    const dns = await dnsServer();
    dns.nxdomain("gone.test");
    const l = await startLintel(config(dns, 8080));
    const r = await call(l.port(), { headers: { host: "gone.test" } });
    expect(r.status).toBe(502);
    const err = decodeURIComponent(String(r.headers["l5d-err"]));
    expect(err).toContain("gone.test");
    expect(err).toContain("no route");
  });

  it("answers 502 naming the host and the DNS error when the DNS server does not answer", async () => {
    const dns = await dnsServer();
    dns.silent("slow.test");
    const l = await startLintel(config(dns, 8080));
    const r = await call(l.port(), { headers: { host: "slow.test" } });
    expect(r.status).toBe(502);
    expect(decodeURIComponent(String(r.headers["l5d-err"]))).toBe(
      `cannot bind /svc/slow.test: resolving slow.test failed: ETIMEOUT (DNS server ${dns.address} did not answer)`,
    );
  });
});
