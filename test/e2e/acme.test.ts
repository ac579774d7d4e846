// ACME end to end against Debian's Pebble (a real ACME CA) and pebble-challtestsrv (its
// DNS): lintel orders, serves and renews certificates through HTTP-01, TLS-ALPN-01 and
// DNS-01 (a wildcard, through the exec provider), serves on-demand names it may and
// refuses the others, keeps serving when the CA is down, and shows it all in the admin
// server, metrics and `lintel certs`.

import { X509Certificate } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import {
  createServer as createHttpsServer,
  get as getHttps,
  Agent as HttpsAgent,
  request as requestHttps,
} from "node:https";
import { join } from "node:path";
import { connect, type DetailedPeerCertificate, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { formatCertificates } from "../../gateway/cli/certs.js";
import { main } from "../../gateway/cli/main.js";
import { ariCertId } from "../../tls/acme/ari.js";
import { type Pebble, startPebble, startPebbleFront } from "../support/pebble.js";
import { redisServerBinary, startRedis } from "../support/redis.js";
import { TestCa } from "../tls/test-ca.js";
import { startChildLintel } from "./child.js";
import {
  call,
  cleanup,
  eventually,
  freeFixedPort,
  type Lintel,
  metricsJson,
  onCleanup,
  requireBinary,
  startLintel,
  startUpstream,
  tempDir,
  writeFiles,
} from "./harness.js";

afterEach(cleanup);

const SUITE = "the ACME tests";
const MISSING = [
  requireBinary("pebble", "pebble", SUITE),
  requireBinary("pebble-challtestsrv", "pebble", SUITE),
  requireBinary("curl", "curl", SUITE),
].includes(undefined);
const DNS_EXEC = fileURLToPath(new URL("../support/acme-dns-exec.sh", import.meta.url));

/** What a TLS handshake for `servername` on `port` presented. */
function presented(port: number, servername: string): Promise<DetailedPeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
    s.setTimeout(15_000, () => s.destroy(new Error("handshake timed out")));
    s.on("secureConnect", () => {
      resolve(s.getPeerCertificate(true));
      s.end();
    });
    s.on("error", reject);
  });
}

/** True when the certificate presented for `name` was issued by Pebble for it (not the generated default). */
async function issuedByPebble(port: number, name: string): Promise<boolean> {
  const c = await presented(port, name).catch(() => undefined);
  if (!c?.raw || !/Pebble/.test(String(c.issuer?.CN ?? ""))) return false;
  return new X509Certificate(c.raw).checkHost(name) !== undefined;
}

interface Setup {
  readonly pebble: Pebble;
  readonly httpPort: number;
  readonly tlsPort: number;
  readonly dir: string;
  readonly upstream: number;
}

async function setup(certValiditySecs?: number, eab?: Record<string, string>): Promise<Setup> {
  const httpPort = await freeFixedPort();
  const tlsPort = await freeFixedPort();
  const pebble = await startPebble({ httpPort, tlsPort, certValiditySecs, eab });
  const dir = tempDir();
  writeFiles(dir, { "pebble-ca.pem": pebble.caCertPem });
  const up = await startUpstream("app");
  return { pebble, httpPort, tlsPort, dir, upstream: up.port };
}

/** A lintel with a plain-HTTP server on the CA's HTTP-01 port and a TLS server with `acme`. */
function lintelOn(
  s: Setup,
  acme: string,
  opts: {
    ip?: string;
    storage?: string;
    plain?: string;
    tls?: string;
    workers?: number;
    directory?: string;
    trust?: string;
  } = {},
): Promise<Lintel> {
  const ip = opts.ip ?? "127.0.0.1";
  return startLintel(
    `
workers: ${opts.workers ?? 0}
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${s.upstream}
  servers:
  - {ip: ${ip}, port: ${s.httpPort}, httpsRedirect: {port: ${s.tlsPort}}${opts.plain ?? ""}}
  - ip: ${ip}
    port: ${s.tlsPort}
    tls:
${opts.tls ?? ""}
      acme:
        directory: ${opts.directory ?? s.pebble.directoryUrl}
        trustCerts: [${s.dir}/pebble-ca.pem${opts.trust ? `, ${opts.trust}` : ""}]
        storage: ${opts.storage ?? `{kind: dir, path: ${s.dir}/acme}`}
        retryMinMs: 500
${acme
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => `        ${l}`)
  .join("\n")}
`,
    {},
    tempDir(),
  );
}

describe.skipIf(MISSING)("ACME against Pebble", () => {
  it("orders through HTTP-01 (answered before the HTTPS redirect), serves it, and loads it from storage on restart", async () => {
    const s = await setup();
    const l = await lintelOn(
      s,
      "names: [a.test, b.test]\nchallenges: [http-01]\nemail: ops@example.com",
    );
    await eventually(() => issuedByPebble(s.tlsPort, "a.test"), 15_000, "a.test from Pebble");
    await eventually(() => issuedByPebble(s.tlsPort, "b.test"), 15_000, "b.test from Pebble");
    // Verified against Pebble's root, for the name.
    const cert = await presented(s.tlsPort, "a.test");
    const chain = [new X509Certificate(cert.raw), new X509Certificate(cert.issuerCertificate.raw)];
    expect(chain[0]!.checkIssued(chain[1]!)).toBe(true);
    expect(chain[0]!.checkHost("a.test")).toBe("a.test");
    // No keyType: the certificate's key is ECDSA P-256.
    expect(chain[0]!.publicKey.asymmetricKeyType).toBe("ec");
    expect(chain[0]!.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    // Requests are served over it; plain HTTP still redirects.
    const plain = await call(s.httpPort, { path: "/x", headers: { host: "a.test" } });
    expect(plain.status).toBe(308);
    const m = await metricsJson(l);
    expect(m["acme/orders/new/success"]).toBe(2);
    expect(m["tls/certificate/a.test/expiry_seconds"]).toBeGreaterThan(86_400);
    const view = JSON.parse((await call(l.adminPort, { path: "/admin/certificates.json" })).text);
    const served = view.servers.find((x: { address: string }) =>
      x.address.endsWith(`:${s.tlsPort}`),
    );
    const a = served.certificates.find((c: { names: string[] }) => c.names.includes("a.test"));
    expect(a.source).toBe("ACME a.test");
    expect(a.acme.state).toBe("valid");
    expect(served.certificates.find((c: { default: boolean }) => c.default).source).toBe(
      "generated default",
    );
    expect(formatCertificates(view)).toContain("source ACME a.test");
    expect(s.pebble.orders()).toBe(2);
    // Another lintel on the same storage serves both at once, without a new order.
    await l.runtime.shutdown(0);
    const again = await lintelOn(s, "names: [a.test, b.test]\nchallenges: [http-01]");
    expect(await issuedByPebble(s.tlsPort, "a.test")).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(s.pebble.orders()).toBe(2);
    expect((await metricsJson(again))["acme/orders/new/success"] ?? 0).toBe(0);
  }, 60_000);

  it("orders with the account another lintel registered on the same storage (no email: nothing to update)", async () => {
    const s = await setup();
    const first = await lintelOn(s, "names: [first.test]\nchallenges: [http-01]");
    await eventually(() => issuedByPebble(s.tlsPort, "first.test"), 15_000, "first.test");
    await first.runtime.shutdown(0);
    // The account key is in storage: the CA answers "exists", and the order goes on.
    const second = await lintelOn(s, "names: [second.test]\nchallenges: [http-01]");
    await eventually(() => issuedByPebble(s.tlsPort, "second.test"), 15_000, "second.test");
    expect((await metricsJson(second))["acme/orders/new/failure"] ?? 0).toBe(0);
  }, 60_000);

  it("answers HTTP-01 from a uws server on a worker thread, and mixes ACME with file and folder certificates", async () => {
    const s = await setup();
    const root = await TestCa.root();
    const files = await root.leaf({ dns: ["file.test"] });
    const folder = await root.leaf({ dns: ["folder.test"] });
    writeFiles(s.dir, {
      "file.crt": files.certPem,
      "file.key": files.keyPem(),
      "folder/folder.crt": folder.certPem,
      "folder/folder.key": folder.keyPem(),
    });
    const l = await lintelOn(s, "names: [worker.test]\nchallenges: [http-01]", {
      plain: ", engine: uws",
      workers: 1,
      tls: `      certPath: ${s.dir}/file.crt\n      keyPath: ${s.dir}/file.key\n      certs: [{dir: ${s.dir}/folder}]`,
    });
    expect(l.runtime.pool).toBeDefined();
    await eventually(
      () => issuedByPebble(s.tlsPort, "worker.test"),
      15_000,
      "worker.test from Pebble",
    );
    // The file's certificate serves its name and is the default; ACME's serves its own.
    expect((await presented(s.tlsPort, "file.test")).serialNumber).toBe(files.serial);
    expect((await presented(s.tlsPort, "other.test")).serialNumber).toBe(files.serial);
    expect((await presented(s.tlsPort, "folder.test")).serialNumber).toBe(folder.serial);
    // The admin server lists each with its source; the ACME one with its next renewal.
    const view = JSON.parse((await call(l.adminPort, { path: "/admin/certificates.json" })).text);
    const listed = view.servers.find((x: { address: string }) =>
      x.address.endsWith(`:${s.tlsPort}`),
    ).certificates as {
      names: string[];
      source: string;
      default: boolean;
      notBefore: string;
      notAfter: string;
      acme?: { renewAt: string; state: string };
    }[];
    const byName = (n: string) => listed.find((c) => c.names.includes(n))!;
    expect(byName("folder.test").source).toBe(`folder ${s.dir}/folder`);
    expect(byName("folder.test").default).toBe(false);
    expect(byName("file.test").source).toBe(`file ${s.dir}/file.crt`);
    expect(byName("file.test").default).toBe(true);
    const acme = byName("worker.test");
    expect(acme.source).toBe("ACME worker.test");
    expect(acme.acme!.state).toBe("valid");
    // No renewal information from Pebble: renewed when a third of the lifetime is left.
    const notBefore = Date.parse(acme.notBefore);
    const notAfter = Date.parse(acme.notAfter);
    const renewAt = Date.parse(acme.acme!.renewAt);
    expect(Math.abs(renewAt - (notAfter - (notAfter - notBefore) / 3))).toBeLessThan(2000);
    expect(renewAt).toBeGreaterThan(Date.now());
    const out: string[] = [];
    expect(await main(["certs", "--admin", `127.0.0.1:${l.adminPort}`], (x) => out.push(x))).toBe(
      0,
    );
    expect(out.join("\n")).toMatch(/worker\.test\n\s+source ACME worker\.test; issuer CN=Pebble/);
    expect(out.join("\n")).toMatch(/file\.test \(default\)\n\s+source file /);
  }, 60_000);

  it("does not loop on a name whose challenge fails", async () => {
    const s = await setup();
    // Nothing listens where the CA looks for this name.
    await s.pebble.challtestsrv.addA("nowhere.test", "127.0.0.9");
    const l = await lintelOn(s, "names: [nowhere.test]\nchallenges: [http-01]");
    await new Promise((r) => setTimeout(r, 6000));
    const m = await metricsJson(l);
    // Tries at about 0.5, 1, 2 and 4 s after the first (retryMinMs 500, doubling): a handful.
    expect(m["acme/challenge_failures/http-01"]).toBeGreaterThanOrEqual(2);
    expect(m["acme/challenge_failures/http-01"]).toBeLessThanOrEqual(6);
    // Between two tries the name says why it failed and when it tries again (a snapshot
    // may fall in a try, which shows "ordering").
    const name = async () =>
      JSON.parse((await call(l.adminPort, { path: "/admin/certificates.json" })).text).acme[0]
        .names[0];
    await eventually(async () => (await name()).state === "failing", 10_000, "a failing state");
    const st = await name();
    expect(st.lastError.message).toMatch(/http-01 validation of nowhere\.test failed/);
    expect(Date.parse(st.nextTryAt)).toBeGreaterThan(Date.now() - 1000);
  }, 60_000);

  it("orders through TLS-ALPN-01 on the net engine, with the key type asked for", async () => {
    const s = await setup();
    await lintelOn(s, "names: [alpn.test]\nchallenges: [tls-alpn-01]\nkeyType: rsa2048");
    await eventually(() => issuedByPebble(s.tlsPort, "alpn.test"), 15_000, "alpn.test from Pebble");
    expect(await s.pebble.issuedFor("alpn.test")).toBe(1);
    const key = new X509Certificate((await presented(s.tlsPort, "alpn.test")).raw).publicKey;
    expect(key.asymmetricKeyType).toBe("rsa");
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
  }, 60_000);

  it("orders through TLS-ALPN-01 on a listener that requires client certificates", async () => {
    const s = await setup();
    const clientRoot = await TestCa.root("ACME Test Client Root");
    writeFiles(s.dir, { "client-ca.pem": clientRoot.certPem });
    await lintelOn(s, "names: [mtls.test]\nchallenges: [tls-alpn-01]", {
      tls: `      caCertPath: ${s.dir}/client-ca.pem\n      requireClientAuth: true`,
    });
    await eventually(
      async () => (await s.pebble.issuedFor("mtls.test")) === 1,
      15_000,
      "mtls.test from Pebble",
    );
  }, 60_000);

  it("waits out a rate limit the CA states, and says so", async () => {
    const s = await setup();
    // A directory in front of Pebble whose newOrder answers as a rate-limited CA does.
    const root = await TestCa.root();
    const front = await root.leaf({ dns: ["localhost"], ip: ["127.0.0.1"] });
    writeFiles(s.dir, { "front-ca.pem": root.certPem });
    let limited = 0;
    const server = createHttpsServer({ cert: front.certPem, key: front.keyPem() }, (req, res) => {
      if (req.url === "/new-order") {
        limited++;
        req.resume();
        res.writeHead(429, { "content-type": "application/problem+json", "retry-after": "120" });
        res.end(
          JSON.stringify({
            type: "urn:ietf:params:acme:error:rateLimited",
            detail: "too many new orders recently",
          }),
        );
        return;
      }
      getHttps(s.pebble.directoryUrl, { ca: s.pebble.caCertPem }, (up) => {
        let body = "";
        up.on("data", (c) => {
          body += c;
        });
        up.on("end", () => {
          const port = (server.address() as { port: number }).port;
          const dir = { ...JSON.parse(body), newOrder: `https://127.0.0.1:${port}/new-order` };
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(dir));
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const l = await lintelOn(s, "names: [limited.test]\nchallenges: [http-01]", {
      directory: `https://127.0.0.1:${port}/dir`,
      trust: `${s.dir}/front-ca.pem`,
    });
    await eventually(() => limited >= 1, 15_000, "an order to be refused");
    await eventually(
      () => l.logs.some((x) => x.includes("ACME order failed") && x.includes("rateLimited")),
      5000,
      "the refusal to be logged",
    );
    const view = JSON.parse((await call(l.adminPort, { path: "/admin/certificates.json" })).text);
    const st = view.acme[0].names[0];
    expect(st.lastError.message).toContain("too many new orders recently");
    // Not before the CA's Retry-After (120 s), although retryMinMs is 500 ms.
    expect(Date.parse(st.nextTryAt) - Date.parse(st.lastError.at)).toBeGreaterThanOrEqual(120_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(limited).toBe(1);
  }, 60_000);

  it("orders a wildcard through DNS-01 with the exec provider", async () => {
    const s = await setup();
    process.env.CHALLTESTSRV_URL = s.pebble.challtestsrv.managementUrl;
    try {
      await lintelOn(
        s,
        `names: ["*.wild.test"]\nchallenges: [dns-01]\ndnsProvider: {kind: exec, command: ${DNS_EXEC}}`,
      );
      await eventually(
        () => issuedByPebble(s.tlsPort, "x.wild.test"),
        15_000,
        "*.wild.test from Pebble",
      );
      expect((await presented(s.tlsPort, "other.wild.test")).subjectaltname).toBe(
        "DNS:*.wild.test",
      );
    } finally {
      delete process.env.CHALLTESTSRV_URL;
    }
  }, 60_000);

  it("binds its account to the CA's external account (EAB), and says why without it", async () => {
    const hmac = Buffer.from("an HMAC key for the tests, 32 bytes!").toString("base64url");
    const s = await setup(undefined, { "kid-1": hmac });
    const without = await lintelOn(s, "names: [eab.test]\nchallenges: [http-01]");
    await eventually(
      async () => {
        const view = JSON.parse(
          (await call(without.adminPort, { path: "/admin/certificates.json" })).text,
        );
        return /externalAccountBinding/.test(view.acme[0].names[0].lastError?.message ?? "");
      },
      15_000,
      "the refusal to be shown",
    );
    await without.runtime.shutdown(0);
    process.env.TEST_EAB_HMAC = hmac;
    try {
      await lintelOn(
        s,
        "names: [eab.test]\nchallenges: [http-01]\nexternalAccountBinding: {kid: kid-1, hmacKeyEnv: TEST_EAB_HMAC}",
      );
      await eventually(() => issuedByPebble(s.tlsPort, "eab.test"), 15_000, "eab.test from Pebble");
    } finally {
      delete process.env.TEST_EAB_HMAC;
    }
  }, 60_000);

  it("serves on-demand names that are allowed or approved, and refuses the others", async () => {
    const s = await setup();
    const asked: string[] = [];
    const ask = createServer((req, res) => {
      const domain = new URL(req.url!, "http://x").searchParams.get("domain")!;
      asked.push(domain);
      res.writeHead(domain.endsWith(".approved.test") ? 200 : 403).end();
    });
    await new Promise<void>((r) => ask.listen(0, "127.0.0.1", () => r()));
    const askPort = (ask.address() as { port: number }).port;
    const l = await lintelOn(
      s,
      `challenges: [http-01]\nonDemand: {allow: ["*.allowed.test"], ask: "http://127.0.0.1:${askPort}/check", waitMs: 15000, maxPerMinute: 3}`,
    );
    try {
      // The first handshake waits for its certificate.
      const first = Date.now();
      expect(await issuedByPebble(s.tlsPort, "one.allowed.test")).toBe(true);
      const firstMs = Date.now() - first;
      expect(await issuedByPebble(s.tlsPort, "x.approved.test")).toBe(true);
      // A refused name gets the default at once, and nothing is ordered.
      const before = s.pebble.orders();
      expect((await presented(s.tlsPort, "evil.test")).subjectaltname).toBe(
        "DNS:lintel-default.invalid",
      );
      expect(asked).toEqual(["x.approved.test", "evil.test"]);
      expect(s.pebble.orders()).toBe(before);
      // The per-minute cap: the third order is the last.
      expect(await issuedByPebble(s.tlsPort, "two.allowed.test")).toBe(true);
      expect((await presented(s.tlsPort, "three.allowed.test")).subjectaltname).toBe(
        "DNS:lintel-default.invalid",
      );
      const m = await metricsJson(l);
      expect(m["acme/on_demand/issued"]).toBe(3);
      expect(m["acme/on_demand/refused"]).toBe(2);
      console.log(`on-demand first handshake: ${firstMs} ms`);
    } finally {
      ask.close();
    }
  }, 60_000);

  describe("on-demand with a slow challenge (DNS-01 with a propagation delay)", () => {
    const slowDns = (allow: string, more = "", delayMs = 2000) =>
      `challenges: [dns-01]\ndnsProvider: {kind: exec, command: ${DNS_EXEC}, propagationDelayMs: ${delayMs}}\nonDemand: {allow: ["${allow}"]${more}}`;
    const DEFAULT = "DNS:lintel-default.invalid";

    afterEach(() => {
      delete process.env.CHALLTESTSRV_URL;
    });

    /** Whether `name`'s lock is held in the dir storage under `dir` (an order under way). */
    const lockHeld = (dir: string, name: string) => {
      const locks = join(dir, "acme", "locks");
      return (
        existsSync(locks) &&
        readdirSync(locks).some((f) => f.endsWith(`-${name}.lock`) && f.startsWith("issue-"))
      );
    };

    it("refuses a name over maxConcurrent with the default at once, never orders it in the background, and orders it at a later handshake", async () => {
      const s = await setup();
      process.env.CHALLTESTSRV_URL = s.pebble.challtestsrv.managementUrl;
      const l = await lintelOn(s, slowDns("*.capped.test", ", maxConcurrent: 1, waitMs: 15000"));
      const first = issuedByPebble(s.tlsPort, "one.capped.test");
      await eventually(() => lockHeld(s.dir, "one.capped.test"), 10_000, "the first order");
      await new Promise((r) => setTimeout(r, 300));
      // The one order at a time is under way: the second name gets the default, at once.
      const asked = Date.now();
      expect((await presented(s.tlsPort, "two.capped.test")).subjectaltname).toBe(DEFAULT);
      expect(Date.now() - asked).toBeLessThan(1500);
      expect(await first).toBe(true);
      // Longer than the old retry pace (about 3 s), once the slot is free again: nothing
      // orders the refused name without a handshake asking for it.
      await new Promise((r) => setTimeout(r, 6000));
      expect(s.pebble.orders()).toBe(1);
      expect(await s.pebble.issuedFor("two.capped.test")).toBe(0);
      let m = await metricsJson(l);
      expect(m["acme/on_demand/refused"]).toBe(1);
      expect(m["acme/on_demand/issued"]).toBe(1);
      expect(
        l.logs.filter((x) => x.includes("too many orders") && x.includes("two.capped.test")),
      ).toHaveLength(1);
      const view = JSON.parse((await call(l.adminPort, { path: "/admin/certificates.json" })).text);
      expect(view.acme[0].names.map((n: { name: string }) => n.name)).toEqual(["one.capped.test"]);
      // A later handshake asks again, within the cap now: it is ordered and served.
      expect(await issuedByPebble(s.tlsPort, "two.capped.test")).toBe(true);
      expect(s.pebble.orders()).toBe(2);
      m = await metricsJson(l);
      expect(m["acme/on_demand/issued"]).toBe(2);
    }, 60_000);

    it("gives a handshake the default after waitMs, and a later handshake the issued certificate", async () => {
      const s = await setup();
      process.env.CHALLTESTSRV_URL = s.pebble.challtestsrv.managementUrl;
      await lintelOn(s, slowDns("*.slow.test", ", waitMs: 500", 3000));
      const started = Date.now();
      expect((await presented(s.tlsPort, "a.slow.test")).subjectaltname).toBe(DEFAULT);
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(450);
      expect(waited).toBeLessThan(2500); // not the order's time (3 s of DNS delay alone)
      // The order goes on: a later handshake gets its certificate.
      await eventually(() => issuedByPebble(s.tlsPort, "a.slow.test"), 15_000, "a.slow.test");
      expect(await s.pebble.issuedFor("a.slow.test")).toBe(1);
    }, 60_000);

    it("makes a handshake on another replica wait for the certificate the lock holder orders", async () => {
      const s = await setup();
      process.env.CHALLTESTSRV_URL = s.pebble.challtestsrv.managementUrl;
      const acme = slowDns("*.shared.test", ", waitMs: 15000");
      const storage = `{kind: dir, path: ${s.dir}/acme}`;
      const one = await lintelOn(s, acme, { ip: "127.0.0.1", storage });
      const two = await lintelOn(s, acme, { ip: "127.0.0.2", storage });
      const first = issuedByPebbleAt("127.0.0.1", s.tlsPort, "x.shared.test");
      await eventually(() => lockHeld(s.dir, "x.shared.test"), 10_000, "the first order");
      // The second replica cannot take the lock: its handshake waits for the result in
      // storage (within waitMs) instead of getting the default.
      expect(await issuedByPebbleAt("127.0.0.2", s.tlsPort, "x.shared.test")).toBe(true);
      expect(await first).toBe(true);
      expect(s.pebble.orders()).toBe(1);
      expect((await metricsJson(one))["acme/on_demand/issued"]).toBe(1);
      expect((await metricsJson(two))["acme/on_demand/issued"] ?? 0).toBe(0);
    }, 60_000);
  });

  it.skipIf(!redisServerBinary(SUITE))(
    "shows a storage that cannot be read as the name's last error, and keeps serving",
    async () => {
      const redis = await startRedis(redisServerBinary(SUITE)!);
      onCleanup(() => redis.stop());
      const s = await setup();
      const l = await lintelOn(
        s,
        "names: [kept.test]\nchallenges: [http-01]\ncheckIntervalMs: 1000",
        {
          storage: `{kind: redis, url: "${redis.url}", prefix: "acme-down", commandTimeoutMs: 500}`,
        },
      );
      await eventually(() => issuedByPebble(s.tlsPort, "kept.test"), 15_000, "kept.test");
      const status = async () => {
        const view = JSON.parse(
          (await call(l.adminPort, { path: "/admin/certificates.json" })).text,
        );
        return view.acme[0].names[0] as {
          state: string;
          lastError?: { at: string; message: string };
        };
      };
      expect((await status()).lastError).toBeUndefined();
      await redis.stop();
      await eventually(
        async () => /cannot be read/.test((await status()).lastError?.message ?? ""),
        10_000,
        "the storage error to be shown",
      );
      const down = await status();
      expect(down.state).toBe("failing");
      expect(down.lastError!.message).toMatch(
        new RegExp(
          `^the ACME storage \\(redis 127\\.0\\.0\\.1:${redis.port}/0 prefix acme-down\\) cannot be read: `,
        ),
      );
      expect(await issuedByPebble(s.tlsPort, "kept.test")).toBe(true);
      const out: string[] = [];
      expect(await main(["certs", "--admin", `127.0.0.1:${l.adminPort}`], (x) => out.push(x))).toBe(
        0,
      );
      expect(out.join("\n")).toContain("last ACME error");
      // Back: the error goes away, the certificate still serves.
      await startRedis(redisServerBinary(SUITE)!, { port: redis.port }).then((r) =>
        onCleanup(() => r.stop()),
      );
      await eventually(
        async () => (await status()).lastError === undefined,
        15_000,
        "the storage error to clear",
      );
      expect((await status()).state).toBe("valid");
    },
    60_000,
  );

  it("follows the CA's renewal window (ARI), asking about the certificate it serves, and says which it replaces", async () => {
    // Debian's Pebble has no renewal information: a front of its API adds it, and shows
    // the orders it passes on.
    const s = await setup();
    const asked: string[] = [];
    const pastFor = new Set<string>();
    const front = await startPebbleFront(s.pebble, {
      directory: (dir, base) => ({ ...dir, renewalInfo: `${base}/renewal-info/` }),
      handle(req, res) {
        const url = req.url ?? "";
        if (!url.startsWith("/renewal-info/")) return false;
        const id = url.slice("/renewal-info/".length);
        asked.push(id);
        // The first certificate is to be renewed now; the next ones in a month.
        const now = Date.now();
        const first = asked.length === 1 || pastFor.has(id);
        if (first) pastFor.add(id);
        const start = first ? now - 2 * 3600_000 : now + 30 * 86_400_000;
        res.writeHead(200, { "content-type": "application/json", "retry-after": "3600" });
        res.end(
          JSON.stringify({
            suggestedWindow: {
              start: new Date(start).toISOString(),
              end: new Date(start + 3600_000).toISOString(),
            },
          }),
        );
        return true;
      },
    });
    writeFiles(s.dir, { "front-ca.pem": front.caCertPem });
    const l = await lintelOn(s, "names: [ari.test]\nchallenges: [http-01]", {
      directory: front.directoryUrl,
      trust: `${s.dir}/front-ca.pem`,
    });
    await eventually(
      () => s.pebble.issuedFor("ari.test").then((n) => n === 2),
      20_000,
      "the renewal in the window",
    );
    // The renewed certificate is served, and lintel asks the CA about it in turn.
    const servedId = async () => {
      const raw = (await presented(s.tlsPort, "ari.test")).raw.toString("base64");
      return ariCertId(`-----BEGIN CERTIFICATE-----\n${raw}\n-----END CERTIFICATE-----\n`);
    };
    await eventually(
      async () => (await servedId()) !== asked[0],
      10_000,
      "the renewal to be served",
    );
    const renewed = (await servedId())!;
    await eventually(
      () => asked.includes(renewed),
      10_000,
      "the renewed certificate to be asked about",
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect(await s.pebble.issuedFor("ari.test")).toBe(2); // the new window is a month away
    const m = await metricsJson(l);
    expect(m["acme/orders/renewal/success"]).toBe(1);
    // The first order replaces nothing; the renewal names the certificate it replaces
    // (RFC 9773 §5), by the identifier lintel asked the renewal information of.
    expect(front.newOrders).toHaveLength(2);
    expect(front.newOrders[0]!.replaces).toBeUndefined();
    expect(front.newOrders[0]!.identifiers).toEqual([{ type: "dns", value: "ari.test" }]);
    expect(front.newOrders[1]!.replaces).toBe(asked[0]);
    expect(asked[0]).not.toBe(renewed);
  }, 60_000);

  it("renews before expiry, and keeps serving the old certificate while the CA is down", async () => {
    // 12 s certificates: renewal once a third (4 s) is left.
    const s = await setup(12);
    const l = await lintelOn(s, "names: [renew.test]\nchallenges: [http-01]");
    await eventually(
      () => issuedByPebble(s.tlsPort, "renew.test"),
      15_000,
      "renew.test from Pebble",
    );
    const first = (await presented(s.tlsPort, "renew.test")).serialNumber;
    // Requests run across the renewal, on new connections and on one kept open.
    const loop = requestLoop(s.tlsPort, "renew.test");
    try {
      await eventually(
        async () => (await presented(s.tlsPort, "renew.test")).serialNumber !== first,
        20_000,
        "the renewal to be served",
      );
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await loop.stop();
    }
    console.log(
      `requests across the ACME renewal: ${loop.ok} ok, ${loop.failures.length} failed, ${loop.serials.size} certificates seen`,
    );
    expect(loop.failures).toEqual([]);
    expect(loop.ok).toBeGreaterThan(50);
    // The swap happened under the loop: its new connections saw both certificates.
    expect(loop.serials.has(first)).toBe(true);
    expect(loop.serials.size).toBeGreaterThanOrEqual(2);
    expect((await metricsJson(l))["acme/orders/renewal/success"]).toBeGreaterThanOrEqual(1);
    // The CA goes away: the renewals fail, the certificate keeps serving until it expires.
    await s.pebble.down();
    const served = (await presented(s.tlsPort, "renew.test")).serialNumber;
    await eventually(
      async () => ((await metricsJson(l))["acme/orders/renewal/failure"] ?? 0) >= 1,
      20_000,
      "a failed renewal",
    );
    expect((await presented(s.tlsPort, "renew.test")).serialNumber).toBe(served);
    const view = JSON.parse((await call(l.adminPort, { path: "/admin/certificates.json" })).text);
    const status = view.acme[0].names.find((n: { name: string }) => n.name === "renew.test");
    expect(status.failures).toBeGreaterThanOrEqual(1);
    expect(status.lastError.message).toBeTruthy();
    expect(
      l.logs.some((x) => x.includes("ACME renewal failed; the current certificate keeps serving")),
    ).toBe(true);
    await eventually(
      () => l.logs.some((x) => x.includes("ACME certificate expires soon and is not renewed yet")),
      15_000,
      "the expiry warning",
    );
    // Back: the next try renews (the account is made again: Pebble forgot it).
    await s.pebble.up();
    await eventually(
      async () => (await presented(s.tlsPort, "renew.test")).serialNumber !== served,
      30_000,
      "a renewal once the CA is back",
    );
  }, 90_000);
});

describe.skipIf(MISSING)("ACME with several replicas", () => {
  const REDIS = redisServerBinary(SUITE);

  /**
   * Three replicas (127.0.0.1-3, the same ports) share one storage and keep six names;
   * each name resolves to one replica, so the CA validates against whichever that is,
   * often not the one that ordered. Every name is ordered exactly once, and every
   * replica serves all six.
   */
  async function threeReplicas(storage: (s: Setup) => string) {
    const s = await setup();
    const names = Array.from({ length: 6 }, (_, i) => `r${i}.test`);
    const ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    for (const [i, n] of names.entries()) await s.pebble.challtestsrv.addA(n, ips[i % 3]!);
    const replicas = await Promise.all(
      ips.map((ip) =>
        lintelOn(s, `names: [${names.join(", ")}]\nchallenges: [http-01]`, {
          ip,
          storage: storage(s),
        }),
      ),
    );
    try {
      for (const ip of ips) {
        for (const n of names) {
          await eventually(() => issuedByPebbleAt(ip, s.tlsPort, n), 30_000, `${n} on ${ip}`);
        }
      }
    } catch (e) {
      // What the replicas said about ACME is what explains a name that never came.
      const said = replicas.flatMap((l, i) =>
        l.logs.filter((x) => /ACME|acme/.test(x)).map((x) => `${ips[i]}: ${x}`),
      );
      throw new Error(`${(e as Error).message}\n${said.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(s.pebble.orders()).toBe(6);
    for (const n of names) expect(await s.pebble.issuedFor(n)).toBe(1);
    const orders = await Promise.all(replicas.map((l) => metricsJson(l)));
    expect(orders.reduce((n, m) => n + (m["acme/orders/new/success"] ?? 0), 0)).toBe(6);
    return { replicas, s };
  }

  it("three replicas sharing a dir storage order each name once and all serve it", async () => {
    await threeReplicas((s) => `{kind: dir, path: ${s.dir}/shared}`);
  }, 90_000);

  it.skipIf(!REDIS)(
    "three replicas sharing a redis storage order each name once and all serve it",
    async () => {
      const redis = await startRedis(REDIS!);
      onCleanup(() => redis.stop());
      const { replicas, s } = await threeReplicas(
        () => `{kind: redis, url: "${redis.url}", prefix: "acme-test"}`,
      );
      // The storage goes away: what serves keeps serving.
      await redis.stop();
      expect(await issuedByPebbleAt("127.0.0.2", s.tlsPort, "r0.test")).toBe(true);
      expect(replicas).toHaveLength(3);
    },
    90_000,
  );

  it("a replica killed while it holds a name's lock blocks no longer than the lock's TTL", async () => {
    // Validations wait a few seconds at the CA, so the first replica is killed mid-order.
    const httpPort = await freeFixedPort();
    const tlsPort = await freeFixedPort();
    const pebble = await startPebble({
      httpPort,
      tlsPort,
      env: { PEBBLE_VA_NOSLEEP: "0", PEBBLE_VA_SLEEPTIME: "4" },
    });
    const dir = tempDir();
    writeFiles(dir, { "pebble-ca.pem": pebble.caCertPem });
    const s: Setup = {
      pebble,
      httpPort,
      tlsPort,
      dir,
      upstream: (await startUpstream("app")).port,
    };
    const acme = `names: [held.test]\nchallenges: [http-01]\nlockTtlMs: 2000`;
    const config = (_p: number, adminPort: number) => `
admin: {ip: 127.0.0.1, port: ${adminPort}}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${s.upstream}
  servers:
  - {ip: 127.0.0.1, port: ${httpPort}}
  - ip: 127.0.0.1
    port: ${tlsPort}
    tls:
      acme:
        directory: ${pebble.directoryUrl}
        trustCerts: [${dir}/pebble-ca.pem]
        storage: {kind: dir, path: ${dir}/acme}
        names: [held.test]
        challenges: [http-01]
        lockTtlMs: 2000
`;
    const first = await startChildLintel(config);
    const locks = join(dir, "acme", "locks");
    await eventually(
      () =>
        existsSync(locks) &&
        readdirSync(locks).some((f) => f.endsWith(".lock") && f.startsWith("issue-")),
      10_000,
      "the first replica to take the lock",
    );
    process.kill(first.pid, "SIGKILL");
    await first.exited;
    const killedAt = Date.now();
    await lintelOn(s, acme);
    await eventually(
      () => issuedByPebble(tlsPort, "held.test"),
      20_000,
      "the second replica's certificate",
    );
    // The lock's TTL (2 s) plus one order with the CA's sleep (up to 4 s), not more.
    expect(Date.now() - killedAt).toBeLessThan(12_000);
    expect(await pebble.issuedFor("held.test")).toBe(1);
  }, 60_000);
});

/** issuedByPebble, for a replica listening on another loopback address. */
async function issuedByPebbleAt(ip: string, port: number, name: string): Promise<boolean> {
  const c = await new Promise<DetailedPeerCertificate | undefined>((resolve) => {
    const sock = connect({ host: ip, port, servername: name, rejectUnauthorized: false });
    sock.setTimeout(5000, () => sock.destroy());
    sock.on("secureConnect", () => {
      resolve(sock.getPeerCertificate(true));
      sock.end();
    });
    sock.on("error", () => resolve(undefined));
    sock.on("close", () => resolve(undefined));
  });
  if (!c?.raw || !/Pebble/.test(String(c.issuer?.CN ?? ""))) return false;
  return new X509Certificate(c.raw).checkHost(name) !== undefined;
}

/**
 * HTTPS requests to `port` for `servername` until stop(): two loops on new connections
 * (each a handshake, so each sees the certificate served at that moment) and one on a
 * connection kept open. Bounded: at most 20 000 requests, each within 5 s.
 */
function requestLoop(port: number, servername: string) {
  const failures: string[] = [];
  const serials = new Set<string>();
  let ok = 0;
  let sent = 0;
  let stopped = false;
  const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
  const one = (agent: HttpsAgent | false) =>
    new Promise<void>((resolve) => {
      const req = requestHttps(
        {
          host: "127.0.0.1",
          port,
          servername,
          path: "/loop",
          headers: { host: servername },
          rejectUnauthorized: false,
          agent,
        },
        (res) => {
          const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) {
              ok++;
              if (agent === false) serials.add(serial);
            } else failures.push(`HTTP ${res.statusCode}`);
            resolve();
          });
          res.on("error", (e) => {
            failures.push(e.message);
            resolve();
          });
        },
      );
      req.setTimeout(5000, () => req.destroy(new Error("timed out")));
      req.on("error", (e) => {
        failures.push(e.message);
        resolve();
      });
      req.end();
    });
  const run = async (agent: HttpsAgent | false) => {
    while (!stopped && sent < 20_000) {
      sent++;
      await one(agent);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const loops = [run(false), run(false), run(keepAlive)];
  return {
    failures,
    serials,
    get ok() {
      return ok;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      keepAlive.destroy();
    },
  };
}
