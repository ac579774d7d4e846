// Proves the Pebble harness (test/support/pebble.ts) gives real ACME issuance, with a plain
// ACME client (acme-client, not lintel): HTTP-01, DNS-01 through acme-dns-exec.sh, TLS-ALPN-01,
// short validity, external account binding, and the CA going down and coming back.

import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { Resolver } from "node:dns/promises";
import { createServer } from "node:http";
import { Agent, get } from "node:https";
import type { Socket } from "node:net";
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type Server as TlsServer,
  connect as tlsConnect,
} from "node:tls";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import acme from "acme-client";
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, closeOnCleanup, eventually, onCleanup, requireBinary } from "../e2e/harness.js";
import { type Pebble, startPebble } from "../support/pebble.js";

afterEach(cleanup);

const SUITE = "the Pebble harness test";
const MISSING = [
  requireBinary("pebble", "pebble", SUITE),
  requireBinary("pebble-challtestsrv", "pebble", SUITE),
  requireBinary("curl", "curl", SUITE),
].includes(undefined);

const EXEC = fileURLToPath(new URL("../support/acme-dns-exec.sh", import.meta.url));
const run = promisify(execFile);

/** The VA's challenge responders: HTTP-01 tokens and TLS-ALPN-01 certificates by name. */
interface Responders {
  readonly httpPort: number;
  readonly tlsPort: number;
  readonly tokens: Map<string, string>;
  readonly alpnCerts: Map<string, SecureContext>;
  /** Paths the VA asked the HTTP server for; SNI names it sent the TLS server. */
  readonly httpSeen: string[];
  readonly tlsSeen: string[];
}

async function listen(server: { listen(port: number, host: string, cb: () => void): unknown }) {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
}

async function startResponders(): Promise<Responders> {
  const tokens = new Map<string, string>();
  const alpnCerts = new Map<string, SecureContext>();
  const httpSeen: string[] = [];
  const tlsSeen: string[] = [];
  const http = createServer((req, res) => {
    httpSeen.push(req.url!);
    const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(req.url!)?.[1];
    const answer = token === undefined ? undefined : tokens.get(token);
    res.writeHead(answer === undefined ? 404 : 200, { "content-type": "text/plain" });
    res.end(answer ?? "no such token");
  });
  await listen(http);
  closeOnCleanup(http);
  const tls = createTlsServer({
    ALPNProtocols: ["acme-tls/1"],
    SNICallback: (name, cb) => {
      tlsSeen.push(name);
      const ctx = alpnCerts.get(name);
      cb(ctx ? null : new Error(`no acme-tls/1 certificate for ${name}`), ctx);
    },
  });
  tls.on("tlsClientError", () => {});
  await listen(tls);
  closeTlsOnCleanup(tls);
  const port = (s: { address(): unknown }) => (s.address() as { port: number }).port;
  return { httpPort: port(http), tlsPort: port(tls), tokens, alpnCerts, httpSeen, tlsSeen };
}

function closeTlsOnCleanup(server: TlsServer): void {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
}

/** Points acme-client's axios at Pebble's listener CA for this test, restored afterwards. */
function trustPebble(p: Pebble): void {
  const before = acme.axios.defaults.httpsAgent;
  const agent = new Agent({ ca: p.caCertPem });
  acme.axios.defaults.httpsAgent = agent;
  onCleanup(() => {
    acme.axios.defaults.httpsAgent = before;
    agent.destroy();
  });
}

/** A client with a fresh account key; polls quickly (its default backoff starts at 5 s). */
async function newClient(
  p: Pebble,
  externalAccountBinding?: { kid: string; hmacKey: string },
): Promise<acme.Client> {
  return new acme.Client({
    directoryUrl: p.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffMin: 50,
    backoffMax: 500,
    backoffAttempts: 20,
    externalAccountBinding,
  });
}

type Challenge = Parameters<acme.ClientAutoOptions["challengeCreateFn"]>[1];
type Hook = (authz: acme.Authorization, c: Challenge, keyAuthorization: string) => Promise<void>;

interface Obtained {
  readonly keyPem: string;
  readonly chainPem: string;
  readonly leaf: X509Certificate;
}

/** Orders a certificate for `names` answering only challenges of `type`. */
async function obtain(
  client: acme.Client,
  names: string[],
  type: "http-01" | "dns-01" | "tls-alpn-01",
  present: Hook,
  remove: Hook = async () => {},
): Promise<Obtained> {
  const [key, csr] = await acme.crypto.createCsr({ altNames: names });
  const chainPem = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: [type],
    // acme-client would check the answer itself first, resolving names with the system DNS.
    skipChallengeVerification: true,
    challengeCreateFn: present,
    challengeRemoveFn: remove,
  });
  return { keyPem: key.toString(), chainPem, leaf: new X509Certificate(chainPem) };
}

/** A TLS handshake to a server holding `chainPem`, by a client trusting only `rootPem`. */
async function verifiesAgainst(o: Obtained, rootPem: string, servername: string): Promise<void> {
  const server = createTlsServer({ key: o.keyPem, cert: o.chainPem });
  server.on("tlsClientError", () => {});
  await listen(server);
  try {
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ host: "127.0.0.1", port, servername, ca: rootPem }, () => {
        s.destroy();
        resolve();
      });
      s.setTimeout(5000, () => s.destroy(new Error("TLS handshake timed out")));
      s.on("error", reject);
    });
  } finally {
    await new Promise((r) => server.close(r));
  }
}

/** Whether the ACME directory answers 200 (trusting Pebble's listener CA), without retries. */
function directoryAnswers(p: Pebble): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(p.directoryUrl, { ca: p.caCertPem, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", () => resolve(false));
  });
}

/** A resolver asking only challtestsrv. */
function mockDns(p: Pebble): Resolver {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([p.challtestsrv.dnsServer]);
  return r;
}

async function pebbleWithResponders(
  o: { certValiditySecs?: number; eab?: Record<string, string> } = {},
): Promise<{ p: Pebble; r: Responders }> {
  const r = await startResponders();
  const p = await startPebble({ httpPort: r.httpPort, tlsPort: r.tlsPort, ...o });
  trustPebble(p);
  return { p, r };
}

describe.skipIf(MISSING)("Pebble harness", () => {
  it("issues for HTTP-01 answered on httpPort; the chain verifies against rootPem()", async () => {
    const { p, r } = await pebbleWithResponders();
    const client = await newClient(p);
    const got = await obtain(client, ["a.test"], "http-01", async (_a, c, keyAuth) => {
      r.tokens.set(c.token, keyAuth);
    });

    expect(got.leaf.subjectAltName).toBe("DNS:a.test");
    // Pebble validates each challenge with three concurrent requests.
    expect(r.httpSeen).toHaveLength(3);
    expect(r.httpSeen.every((u) => u.startsWith("/.well-known/acme-challenge/"))).toBe(true);
    await verifiesAgainst(got, await p.rootPem(), "a.test");
    await expect(verifiesAgainst(got, p.caCertPem, "a.test")).rejects.toThrow();
    await eventually(() => p.orders() === 1, 5000, "the issuance in Pebble's log");
    expect(await p.issuedFor("a.test")).toBe(1);
    expect(await p.issuedFor("b.test")).toBe(0);
  }, 30_000);

  it("issues a wildcard for DNS-01 with TXT records set by acme-dns-exec.sh", async () => {
    const { p } = await pebbleWithResponders();
    const env = { ...process.env, CHALLTESTSRV_URL: p.challtestsrv.managementUrl };
    const dns = mockDns(p);
    const seenTxt: string[][] = [];
    const client = await newClient(p);
    const got = await obtain(
      client,
      ["*.b.test"],
      "dns-01",
      async (authz, _c, digest) => {
        await run(EXEC, ["present", `_acme-challenge.${authz.identifier.value}.`, digest], { env });
        seenTxt.push(...(await dns.resolveTxt(`_acme-challenge.${authz.identifier.value}`)));
      },
      async (authz, _c, digest) => {
        await run(EXEC, ["cleanup", `_acme-challenge.${authz.identifier.value}.`, digest], { env });
      },
    );

    expect(seenTxt).toHaveLength(1);
    expect(seenTxt[0]![0]).toMatch(/^[\w-]{43}$/);
    await expect(dns.resolveTxt("_acme-challenge.b.test")).rejects.toThrow();
    expect(got.leaf.subjectAltName).toBe("DNS:*.b.test");
    await verifiesAgainst(got, await p.rootPem(), "x.b.test");
    await eventually(() => p.orders() === 1, 5000, "the issuance in Pebble's log");
    expect(await p.issuedFor("*.b.test")).toBe(1);
    expect(await p.issuedFor("b.test")).toBe(0);
  }, 30_000);

  it("acme-dns-exec.sh fails loudly when challtestsrv is not there", async () => {
    const { p } = await pebbleWithResponders();
    const closed = p.challtestsrv.managementUrl;
    await p.stop();
    const failed = run(EXEC, ["present", "_acme-challenge.x.test.", "v"], {
      env: { ...process.env, CHALLTESTSRV_URL: closed },
    });
    await expect(failed).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("/set-txt failed"),
    });
    await expect(run(EXEC, ["present", "x.test."], { env: process.env })).rejects.toMatchObject({
      code: 2,
    });
  }, 30_000);

  it("issues for TLS-ALPN-01 answered on tlsPort", async () => {
    const { p, r } = await pebbleWithResponders();
    const client = await newClient(p);
    const got = await obtain(client, ["c.test"], "tls-alpn-01", async (authz, _c, keyAuth) => {
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuth);
      r.alpnCerts.set(authz.identifier.value, createSecureContext({ key, cert }));
    });

    expect(r.tlsSeen).toEqual(["c.test", "c.test", "c.test"]);
    expect(r.httpSeen).toEqual([]);
    await verifiesAgainst(got, await p.rootPem(), "c.test");
    await eventually(() => p.orders() === 1, 5000, "the issuance in Pebble's log");
    expect(await p.issuedFor("c.test")).toBe(1);
  }, 30_000);

  it("issues short-lived certificates with certValiditySecs", async () => {
    const { p, r } = await pebbleWithResponders({ certValiditySecs: 60 });
    const client = await newClient(p);
    const got = await obtain(client, ["short.test"], "http-01", async (_a, c, keyAuth) => {
      r.tokens.set(c.token, keyAuth);
    });

    const notBefore = Date.parse(got.leaf.validFrom);
    const notAfter = Date.parse(got.leaf.validTo);
    expect(notAfter - notBefore).toBe(59_000); // Pebble's notAfter is notBefore + period - 1 s
    expect(notAfter - Date.now()).toBeGreaterThan(30_000);
    expect(notAfter - Date.now()).toBeLessThanOrEqual(60_000);
  }, 30_000);

  it("requires external account binding with eab", async () => {
    const hmacKey = Buffer.from("a test HMAC key of 32 bytes, ok!").toString("base64url");
    const { p } = await pebbleWithResponders({ eab: { "kid-1": hmacKey } });

    const unbound = await newClient(p);
    await expect(unbound.createAccount({ termsOfServiceAgreed: true })).rejects.toThrow(
      /externalAccountBinding/,
    );
    const bound = await newClient(p, { kid: "kid-1", hmacKey });
    const account = await bound.createAccount({ termsOfServiceAgreed: true });
    expect(account.status).toBe("valid");
    await eventually(
      () => p.logs.some((l) => l.includes('newAccount Binding with CA using kid "kid-1"')),
      5000,
      "the binding in Pebble's log",
    );
  }, 30_000);

  it("goes down and comes back on the same ports with a new CA and no state", async () => {
    const { p, r } = await pebbleWithResponders();
    const answer: Hook = async (_a, c, keyAuth) => {
      r.tokens.set(c.token, keyAuth);
    };
    const client = await newClient(p);
    const first = await obtain(client, ["up.test"], "http-01", answer);
    const firstRoot = await p.rootPem();
    expect(await directoryAnswers(p)).toBe(true);

    await p.down();
    expect(await directoryAnswers(p)).toBe(false);
    await expect(p.rootPem()).rejects.toThrow(/ECONNREFUSED/);

    await p.up();
    expect(await directoryAnswers(p)).toBe(true);
    const secondRoot = await p.rootPem();
    expect(secondRoot).not.toBe(firstRoot);
    // The account is gone with the old process.
    await expect(obtain(client, ["up.test"], "http-01", answer)).rejects.toThrow(
      /Account .* not found/,
    );
    const second = await obtain(await newClient(p), ["up.test"], "http-01", answer);
    await verifiesAgainst(second, secondRoot, "up.test");
    await expect(verifiesAgainst(second, firstRoot, "up.test")).rejects.toThrow();
    await verifiesAgainst(first, firstRoot, "up.test");
    await eventually(() => p.orders() === 2, 5000, "both issuances in Pebble's log");
    expect(await p.issuedFor("up.test")).toBe(2);
  }, 30_000);

  it("runs challtestsrv answering A 127.0.0.1, no AAAA, and what it is told", async () => {
    const { p } = await pebbleWithResponders();
    const dns = mockDns(p);
    const c = p.challtestsrv;
    expect(await dns.resolve4("anything.test")).toEqual(["127.0.0.1"]);
    await expect(dns.resolve6("anything.test")).rejects.toThrow();
    await c.addA("a.test", "127.0.0.2", "127.0.0.3");
    expect((await dns.resolve4("a.test")).sort()).toEqual(["127.0.0.2", "127.0.0.3"]);
    await c.clearA("a.test");
    expect(await dns.resolve4("a.test")).toEqual(["127.0.0.1"]);
    await c.setDefaultIPv4("127.0.0.9");
    expect(await dns.resolve4("other.test")).toEqual(["127.0.0.9"]);
    await c.setTxt("_acme-challenge.a.test", "one");
    await c.setTxt("_acme-challenge.a.test.", "two");
    expect((await dns.resolveTxt("_acme-challenge.a.test")).flat().sort()).toEqual(["one", "two"]);
    await c.clearTxt("_acme-challenge.a.test");
    await expect(dns.resolveTxt("_acme-challenge.a.test")).rejects.toThrow();
  }, 30_000);
});
