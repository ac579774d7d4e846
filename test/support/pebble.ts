// Real ACME issuance for tests: Debian's Pebble (a test CA) and pebble-challtestsrv (the mock
// DNS server Pebble resolves with) on loopback ephemeral ports, started per test and killed
// by PID in the e2e harness's cleanup(), even when the test fails.

import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { createSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import { join } from "node:path";
import { freePort, onCleanup, tempDir } from "../e2e/harness.js";
import { TestCa } from "../tls/test-ca.js";

export interface PebbleOptions {
  /** Where Pebble's VA connects for HTTP-01 (on 127.0.0.1: every name resolves there). */
  readonly httpPort: number;
  /** Where it connects for TLS-ALPN-01. */
  readonly tlsPort: number;
  /** Lifetime of issued certificates in seconds (Pebble's certificateValidityPeriod). */
  readonly certValiditySecs?: number;
  /** External account binding: kid → base64url HMAC key; makes EAB required. */
  readonly eab?: Record<string, string>;
  /**
   * Pebble's environment besides PEBBLE_VA_NOSLEEP=1 (always set), e.g.
   * PEBBLE_WFE_NONCEREJECT=0 (default: 5% of good nonces rejected) or PEBBLE_AUTHZREUSE=0
   * (default: valid authorizations reused 50% of the time).
   */
  readonly env?: Record<string, string>;
}

/** pebble-challtestsrv's mock DNS: every name answers A 127.0.0.1 and no AAAA unless told. */
export interface ChallTestSrv {
  readonly dnsPort: number;
  /** "127.0.0.1:<dnsPort>", as resolvers and Pebble's -dnsserver take it. */
  readonly dnsServer: string;
  /** Its management API (plain HTTP), as acme-dns-exec.sh takes it in CHALLTESTSRV_URL. */
  readonly managementUrl: string;
  readonly logs: string[];
  setDefaultIPv4(ip: string): Promise<void>;
  /** A TXT record (added beside any already there) for `host`, e.g. `_acme-challenge.a.test`. */
  setTxt(host: string, value: string): Promise<void>;
  /** Removes every TXT record of `host`. */
  clearTxt(host: string): Promise<void>;
  /** A records for `host` instead of the default. */
  addA(host: string, ...ips: string[]): Promise<void>;
  clearA(host: string): Promise<void>;
}

export interface Pebble {
  /** https://127.0.0.1:<port>/dir */
  readonly directoryUrl: string;
  /** The CA of Pebble's own HTTPS listeners (ACME and management), for clients to trust. */
  readonly caCertPem: string;
  /** https://127.0.0.1:<port> (HTTPS, trusting caCertPem). */
  readonly managementUrl: string;
  readonly httpPort: number;
  readonly tlsPort: number;
  readonly challtestsrv: ChallTestSrv;
  /** Pebble's output lines, across down()/up(). */
  readonly logs: string[];
  /**
   * The issuing root (GET /roots/0 on the management port). Pebble makes a new root and
   * intermediate each time it starts, so ask again after up().
   */
  rootPem(): Promise<string>;
  /**
   * Certificates issued so far, across down()/up(): Pebble's "Issued certificate serial <hex>
   * for order <id>" lines, one per finalized order. Pebble logs it just before the order
   * turns valid, so a client that has its certificate sees it counted (at worst after the
   * pipe is read: wait with eventually()).
   */
  orders(): number;
  /**
   * Issued certificates with `name` among their DNS names (`*.b.test` for a wildcard).
   * Pebble logs no names, so each certificate is fetched from the management API
   * (/cert-status-by-serial/<serial>) as soon as its line appears; counts survive down().
   */
  issuedFor(name: string): Promise<number>;
  /** Kills Pebble (challtestsrv stays): the CA is unreachable, its ports refuse connections. */
  down(): Promise<void>;
  /**
   * Starts Pebble again on the same ports, listener certificate and config. It keeps no
   * state: accounts, orders and authorizations are gone and the issuing CA is new.
   */
  up(): Promise<void>;
  /** Kills both processes; also done by cleanup(). */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 2_000;

interface Proc {
  readonly child: ChildProcess;
  kill(): Promise<void>;
}

/** Spawns `bin` (found on PATH), passing each line it prints (stdout or stderr) to `onLine`. */
function run(
  bin: string,
  args: string[],
  env: Record<string, string>,
  onLine: (line: string) => void,
): Proc {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env });
  child.on("error", (e) => onLine(`${bin}: ${e.message}`));
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (d: string) => {
      const parts = (partial + d).split("\n");
      partial = parts.pop()!;
      parts.forEach(onLine);
    });
    stream.on("end", () => {
      if (partial) onLine(partial);
    });
  }
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    child,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** One request with a bounded time; `ca` makes it HTTPS trusting only that CA. */
function fetchText(url: string, opts: { ca?: string; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith("https:") ? httpsRequest : httpRequest;
    const req = send(
      url,
      { method: opts.body === undefined ? "GET" : "POST", ca: opts.ca, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode!, body }));
        res.on("error", reject);
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${url} timed out`)));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Polls `ready` until it holds; throws with `proc`'s output if it exits or time runs out. */
async function awaitReady(
  what: string,
  proc: Proc,
  lines: string[],
  ready: () => Promise<boolean>,
): Promise<void> {
  const end = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const ok = await ready().catch(() => false);
    if (ok) return;
    const exited = proc.child.exitCode !== null || proc.child.signalCode !== null;
    if (exited || Date.now() > end) {
      await proc.kill();
      throw new Error(
        `${what} ${exited ? "exited" : `not ready after ${START_TIMEOUT_MS} ms`}; its output:\n${lines.join("\n")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A loopback port free for both TCP and UDP (a DNS server binds both). */
async function freeDnsPort(): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const port = await freePort();
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = createSocket("udp4");
      s.once("error", () => resolve(false));
      s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error("no loopback port free for both TCP and UDP");
}

/** Starts pebble-challtestsrv with only its DNS server and management API, both ephemeral. */
async function startChallTestSrv(): Promise<{ srv: ChallTestSrv; proc: Proc }> {
  const dnsPort = await freeDnsPort();
  const managementPort = await freePort();
  const managementUrl = `http://127.0.0.1:${managementPort}`;
  const logs: string[] = [];
  const proc = run(
    "pebble-challtestsrv",
    [
      ...["-dns01", `127.0.0.1:${dnsPort}`, "-management", `127.0.0.1:${managementPort}`],
      ...["-http01", "", "-https01", "", "-tlsalpn01", ""],
      ...["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
    ],
    { PATH: process.env.PATH ?? "" },
    (line) => logs.push(line),
  );
  const post = async (path: string, body: object) => {
    const r = await fetchText(managementUrl + path, { body: JSON.stringify(body) });
    if (r.status !== 200) throw new Error(`challtestsrv ${path} answered ${r.status}: ${r.body}`);
  };
  // Names are stored as given and looked up fully qualified: add the trailing dot.
  const fqdn = (host: string) => (host.endsWith(".") ? host : `${host}.`);
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  // challtestsrv only logs a DNS bind failure, so readiness is a real answer from it.
  await awaitReady("pebble-challtestsrv", proc, logs, async () => {
    const mgmt = await fetchText(`${managementUrl}/`);
    const a = await resolver.resolve4("ready.test");
    return mgmt.status === 404 && a[0] === "127.0.0.1";
  });
  const srv: ChallTestSrv = {
    dnsPort,
    dnsServer: `127.0.0.1:${dnsPort}`,
    managementUrl,
    logs,
    setDefaultIPv4: (ip) => post("/set-default-ipv4", { ip }),
    setTxt: (host, value) => post("/set-txt", { host: fqdn(host), value }),
    clearTxt: (host) => post("/clear-txt", { host: fqdn(host) }),
    addA: (host, ...ips) => post("/add-a", { host: fqdn(host), addresses: ips }),
    clearA: (host) => post("/clear-a", { host: fqdn(host) }),
  };
  return { srv, proc };
}

/** Lines Pebble prints once per certificate it issues. */
const ISSUED = /Issued certificate serial ([0-9a-f]+) for order /;

/**
 * Starts challtestsrv, then Pebble resolving through it, with a fresh test CA for Pebble's
 * HTTPS listeners (127.0.0.1 and localhost); resolves once the directory and the management
 * API answer. Both are killed in cleanup().
 */
export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = tempDir("lintel-pebble-");
  const ca = await TestCa.root("Pebble Listener Test CA");
  const listener = await ca.leaf({ dns: ["localhost"], ip: ["127.0.0.1"] });
  const caCertPem = ca.certPem;
  writeFileSync(join(dir, "cert.pem"), listener.certPem);
  writeFileSync(join(dir, "key.pem"), listener.keyPem());

  const { srv: challtestsrv, proc: challProc } = await startChallTestSrv();
  let pebbleProc: Proc | undefined;
  const stop = async () => {
    await pebbleProc?.kill();
    await challProc.kill();
  };
  onCleanup(stop);

  const port = await freePort();
  const managementPort = await freePort();
  const directoryUrl = `https://127.0.0.1:${port}/dir`;
  const managementUrl = `https://127.0.0.1:${managementPort}`;
  const config = join(dir, "pebble-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, "cert.pem"),
        privateKey: join(dir, "key.pem"),
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: opts.eab !== undefined,
        externalAccountMACKeys: opts.eab ?? {},
        ...(opts.certValiditySecs === undefined
          ? {}
          : { certificateValidityPeriod: opts.certValiditySecs }),
      },
    }),
  );
  const env = { PATH: process.env.PATH ?? "", PEBBLE_VA_NOSLEEP: "1", ...opts.env };
  const logs: string[] = [];
  const certs: Promise<X509Certificate>[] = [];
  const managementGet = async (path: string) => {
    const r = await fetchText(managementUrl + path, { ca: caCertPem });
    if (r.status !== 200) throw new Error(`pebble ${path} answered ${r.status}: ${r.body}`);
    return r.body;
  };
  // Keeps Pebble's lines, and fetches each issued certificate while Pebble still has it.
  const onLine = (line: string) => {
    logs.push(line);
    const serial = ISSUED.exec(line)?.[1];
    if (serial === undefined) return;
    const cert = managementGet(`/cert-status-by-serial/${serial}`).then(
      (body) => new X509Certificate((JSON.parse(body) as { Certificate: string }).Certificate),
    );
    cert.catch(() => {}); // reported by issuedFor()
    certs.push(cert);
  };

  const up = async () => {
    if (pebbleProc && pebbleProc.child.exitCode === null && pebbleProc.child.signalCode === null)
      throw new Error("pebble is already up");
    const proc = run(
      "pebble",
      ["-config", config, "-dnsserver", challtestsrv.dnsServer],
      env,
      onLine,
    );
    pebbleProc = proc;
    await awaitReady("pebble", proc, logs, async () => {
      const d = await fetchText(directoryUrl, { ca: caCertPem });
      const root = await fetchText(`${managementUrl}/roots/0`, { ca: caCertPem });
      return d.status === 200 && root.status === 200;
    });
  };
  await up();

  return {
    directoryUrl,
    caCertPem,
    managementUrl,
    httpPort: opts.httpPort,
    tlsPort: opts.tlsPort,
    challtestsrv,
    logs,
    rootPem: () => managementGet("/roots/0"),
    orders: () => logs.filter((l) => ISSUED.test(l)).length,
    async issuedFor(name) {
      const all = await Promise.all(certs);
      const want = `dns:${name}`.toLowerCase();
      return all.filter((c) =>
        (c.subjectAltName ?? "").split(", ").some((san) => san.toLowerCase() === want),
      ).length;
    },
    async down() {
      await Promise.allSettled(certs);
      await pebbleProc?.kill();
    },
    up,
    stop,
  };
}

/** An HTTPS front of Pebble's ACME API (a CA with more to say, or that shows what it got). */
export interface PebbleFront {
  /** https://127.0.0.1:<front port>/dir: every URL in it (and in Pebble's answers) is the front's. */
  readonly directoryUrl: string;
  /** The CA of the front's listener certificate (127.0.0.1, localhost), for clients to trust. */
  readonly caCertPem: string;
  /** The payloads of the newOrder requests Pebble accepted, decoded, in order (not those it refused, e.g. for a bad nonce). */
  readonly newOrders: Record<string, unknown>[];
}

export interface PebbleFrontOptions {
  /** Answers a request itself (returns true), before anything goes to Pebble. */
  readonly handle?: (req: IncomingMessage, res: ServerResponse, base: string) => boolean;
  /** Changes the directory Pebble answers (e.g. adds renewalInfo); `base` is the front's origin. */
  readonly directory?: (dir: Record<string, unknown>, base: string) => Record<string, unknown>;
}

/**
 * Starts a front passing every request on to Pebble as it came, its Host header included:
 * Pebble builds its URLs from that header and checks each JWS `url` against it, so the
 * client's requests are all signed for the front and Pebble accepts them. Closed in cleanup().
 */
export async function startPebbleFront(
  pebble: Pebble,
  opts: PebbleFrontOptions = {},
): Promise<PebbleFront> {
  const ca = await TestCa.root("Pebble Front Test CA");
  const cert = await ca.leaf({ dns: ["localhost"], ip: ["127.0.0.1"] });
  const upstream = new URL(pebble.directoryUrl);
  const newOrders: Record<string, unknown>[] = [];
  let base = "";
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem() }, (req, res) => {
    if (opts.handle?.(req, res, base)) return;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? "/";
      let newOrder: Record<string, unknown> | undefined;
      if (req.method === "POST" && path === "/order-plz") {
        try {
          const jws = JSON.parse(body.toString("utf8")) as { payload: string };
          newOrder = JSON.parse(Buffer.from(jws.payload, "base64url").toString("utf8"));
        } catch {
          newOrder = { unreadable: body.toString("utf8") };
        }
      }
      const out = httpsRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path,
          headers: req.headers,
          ca: pebble.caCertPem,
          agent: false,
        },
        (up) => {
          const parts: Buffer[] = [];
          up.on("data", (c: Buffer) => parts.push(c));
          up.on("end", () => {
            let answer = Buffer.concat(parts);
            const headers = { ...up.headers };
            if (req.method === "GET" && path === upstream.pathname && opts.directory) {
              const dir = JSON.parse(answer.toString("utf8")) as Record<string, unknown>;
              answer = Buffer.from(JSON.stringify(opts.directory(dir, base)));
            }
            if (newOrder && up.statusCode === 201) newOrders.push(newOrder);
            delete headers["transfer-encoding"];
            headers["content-length"] = String(answer.length);
            res.writeHead(up.statusCode ?? 502, headers).end(answer);
          });
          up.on("error", () => res.destroy());
        },
      );
      out.setTimeout(REQUEST_TIMEOUT_MS * 5, () => out.destroy(new Error("pebble timed out")));
      out.on("error", (e) => {
        if (!res.headersSent) res.writeHead(502).end(e.message);
      });
      out.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { directoryUrl: `${base}${upstream.pathname}`, caCertPem: ca.certPem, newOrders };
}
