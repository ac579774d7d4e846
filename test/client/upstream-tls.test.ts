// TLS origination below the router, against real TLS servers on loopback: what the
// connector verifies and how it says why it refuses, SNI, the connect timeout covering the
// handshake, errors before TCP connects staying connect errors, and session resumption
// through a pool.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSecureContext, createServer as createTlsServer, type TLSSocket } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { UpstreamHandler } from "../../gateway/client/http1/connection.js";
import { Http1Pool } from "../../gateway/client/http1/pool.js";
import {
  type ClientTlsConfig,
  UpstreamTls,
  UpstreamTlsContexts,
} from "../../gateway/client/upstream-tls.js";
import { ProxyError } from "../../gateway/http/errors.js";
import { address } from "../../gateway/naming/index.js";
import { DAYS, type Issued, TestCa, writeTlsFiles } from "../tls/test-ca.js";

let dir: string;
let root: TestCa;
let api: Issued;
let expired: Issued;
let future: Issued;
let stranger: Issued;
let ipCert: Issued;
let files: Record<"root.pem" | "stranger-root.pem", string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lintel-upstream-tls-"));
  root = await TestCa.root();
  const strangerRoot = await TestCa.root("Stranger Root");
  api = await root.leaf({ dns: ["api.example.com"] });
  expired = await root.leaf({
    dns: ["api.example.com"],
    notBefore: new Date(Date.now() - 30 * DAYS),
    notAfter: new Date(Date.now() - DAYS),
  });
  future = await root.leaf({
    dns: ["api.example.com"],
    notBefore: new Date(Date.now() + DAYS),
    notAfter: new Date(Date.now() + 30 * DAYS),
  });
  stranger = await strangerRoot.leaf({ dns: ["api.example.com"] });
  ipCert = await root.leaf({ dns: ["ip.example.com"], cn: "127.0.0.1" });
  files = writeTlsFiles(dir, {
    "root.pem": root.certPem,
    "stranger-root.pem": strangerRoot.certPem,
  });
}, 30_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    const sockets = new Set<Socket>();
    server.on("connection", (s: Socket) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : 0);
    });
    closers.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
    );
  });
}

interface TlsUpstream {
  readonly port: number;
  /** The SNI name of each handshake (false when none was sent). */
  readonly servernames: (string | false)[];
}

/** A TLS server presenting `cert` that answers every connection with a short HTTP response. */
async function tlsUpstream(cert: Issued): Promise<TlsUpstream> {
  const servernames: (string | false)[] = [];
  const context = createSecureContext({ cert: cert.certPem, key: cert.keyPem() });
  const server = createTlsServer(
    {
      cert: cert.certPem,
      key: cert.keyPem(),
      // Called during the handshake (the client may finish before the server does), and
      // only when the client sent SNI.
      SNICallback: (name, cb) => {
        servernames.push(name);
        cb(null, context);
      },
    },
    (s: TLSSocket) => {
      if (!s.servername) servernames.push(false);
      s.on("error", () => {});
      s.end("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    },
  );
  server.on("tlsClientError", () => {});
  return { port: await listen(server), servernames };
}

const contexts = new UpstreamTlsContexts();

function upstreamTls(tls: Partial<ClientTlsConfig>): UpstreamTls {
  const config: ClientTlsConfig = {
    commonName: undefined,
    trustCerts: [files["root.pem"]],
    trustCertsBundle: undefined,
    disableValidation: false,
    clientAuth: undefined,
    ...tls,
  };
  return new UpstreamTls(config, contexts.get(config));
}

/** Opens a connection through the connector; resolves with the socket or the error. */
function open(
  tls: UpstreamTls,
  port: number,
  meta: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<{ socket?: TLSSocket; err?: Error }> {
  return new Promise((resolve) => {
    tls
      .forAddress(address("127.0.0.1", port, 1, meta))
      .connect("127.0.0.1", port, timeoutMs, (err, socket) => {
        if (socket) closers.push(() => void socket.destroy());
        resolve({ socket: socket as TLSSocket | undefined, err });
      });
  });
}

/** Resolves once the upstream's answer has arrived (so its side of the handshake is done). */
function answered(socket: TLSSocket): Promise<void> {
  return new Promise((resolve) => {
    socket.once("data", () => resolve());
    socket.once("close", () => resolve());
  });
}

async function refusal(tls: UpstreamTls, port: number, meta: Record<string, string> = {}) {
  const { socket, err } = await open(tls, port, meta);
  expect(socket).toBeUndefined();
  expect(err).toBeInstanceOf(ProxyError);
  expect((err as ProxyError).code).toBe("LINTEL_UPSTREAM_TLS");
  return err!.message;
}

describe("TLS origination connector", () => {
  it("connects when the certificate carries commonName, and sends it as SNI", async () => {
    const up = await tlsUpstream(api);
    const { socket, err } = await open(upstreamTls({ commonName: "api.example.com" }), up.port);
    expect(err).toBeUndefined();
    expect(socket!.authorized).toBe(true);
    expect(up.servernames).toEqual(["api.example.com"]);
  });

  it("uses the host name the address was resolved from when commonName is unset", async () => {
    const up = await tlsUpstream(api);
    const { err } = await open(upstreamTls({}), up.port, { hostname: "api.example.com" });
    expect(err).toBeUndefined();
    expect(up.servernames).toEqual(["api.example.com"]);
  });

  it("refuses an IP address with no name to verify, without connecting", async () => {
    const up = await tlsUpstream(api);
    const why = await refusal(upstreamTls({}), up.port);
    expect(why).toMatch(/^TLS to 127\.0\.0\.1:\d+: no name to verify the certificate against/);
    expect(up.servernames).toEqual([]);
  });

  it("says which name the certificate is for when it is not the expected one", async () => {
    const up = await tlsUpstream(api);
    const why = await refusal(upstreamTls({ commonName: "other.example.com" }), up.port);
    expect(why).toBe(
      `TLS to 127.0.0.1:${up.port} (other.example.com): the certificate is for api.example.com, not other.example.com`,
    );
  });

  it("refuses a certificate from a CA it does not trust", async () => {
    const up = await tlsUpstream(stranger);
    const why = await refusal(upstreamTls({ commonName: "api.example.com" }), up.port);
    expect(why).toBe(
      `TLS to 127.0.0.1:${up.port} (api.example.com): the certificate is issued by an unknown CA, "CN=Stranger Root" (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
  });

  it("trusts only the configured CAs: the right root in trustCertsBundle is enough", async () => {
    const up = await tlsUpstream(stranger);
    const tls = upstreamTls({
      commonName: "api.example.com",
      trustCerts: undefined,
      trustCertsBundle: files["stranger-root.pem"],
    });
    expect((await open(tls, up.port)).err).toBeUndefined();
  });

  it("says when the certificate expired, and when it becomes valid", async () => {
    const old = await tlsUpstream(expired);
    const tls = upstreamTls({ commonName: "api.example.com" });
    const notAfter = new Date(expired.cert.notAfter);
    notAfter.setMilliseconds(0);
    expect(await refusal(tls, old.port)).toBe(
      `TLS to 127.0.0.1:${old.port} (api.example.com): the certificate expired on ${notAfter.toISOString()}`,
    );
    const early = await tlsUpstream(future);
    const notBefore = new Date(future.cert.notBefore);
    notBefore.setMilliseconds(0);
    expect(await refusal(tls, early.port)).toBe(
      `TLS to 127.0.0.1:${early.port} (api.example.com): the certificate is not valid before ${notBefore.toISOString()}`,
    );
  });

  it("accepts anything with disableValidation, sending SNI when it has a name", async () => {
    const up = await tlsUpstream(stranger);
    const named = await open(
      upstreamTls({
        commonName: "wrong.example.com",
        disableValidation: true,
        trustCerts: undefined,
      }),
      up.port,
    );
    expect(named.err).toBeUndefined();
    const bare = await open(upstreamTls({ disableValidation: true }), up.port);
    expect(bare.err).toBeUndefined();
    await answered(bare.socket!);
    expect(up.servernames).toEqual(["wrong.example.com", false]);
  });

  it("verifies an IP commonName against the certificate without sending it as SNI", async () => {
    const up = await tlsUpstream(ipCert);
    // The certificate's only IP-like name is its CN, which does not count for an IP.
    const why = await refusal(upstreamTls({ commonName: "127.0.0.1" }), up.port);
    expect(why).toContain("the certificate is for ip.example.com, not 127.0.0.1");
    const unchecked = await open(
      upstreamTls({ commonName: "127.0.0.1", disableValidation: true }),
      up.port,
    );
    await answered(unchecked.socket!);
    expect(up.servernames).toEqual([false]);
  });

  it("times the handshake out within the connect timeout", async () => {
    const server = createNetServer(() => {}); // accepts TCP, never answers the ClientHello
    const port = await listen(server);
    const started = performance.now();
    const why = await new Promise<Error>((resolve) => {
      upstreamTls({ commonName: "api.example.com" })
        .forAddress(address("127.0.0.1", port))
        .connect("127.0.0.1", port, 300, (err) => resolve(err!));
    });
    const took = performance.now() - started;
    expect(why.message).toBe(
      `TLS to 127.0.0.1:${port} (api.example.com): no TLS handshake within 300 ms (connectTimeoutMs)`,
    );
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
  });

  it("says so when the upstream speaks plain HTTP", async () => {
    const server = createNetServer((s) => {
      s.on("error", () => {});
      s.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    const port = await listen(server);
    const why = await refusal(upstreamTls({ commonName: "api.example.com" }), port);
    expect(why).toContain("the upstream does not answer in TLS (ERR_SSL_WRONG_VERSION_NUMBER)");
  });

  it("leaves a refused TCP connection a connect error", async () => {
    const server = createNetServer();
    const port = await listen(server);
    await new Promise<void>((r) => server.close(() => r()));
    const { err } = await open(upstreamTls({ commonName: "api.example.com" }), port);
    expect(err).not.toBeInstanceOf(ProxyError);
    expect((err as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });
});

describe("TLS origination through a pool", () => {
  it("resumes the endpoint's last session on its next connection", async () => {
    const reused: boolean[] = [];
    const server = createHttpsServer({ cert: api.certPem, key: api.keyPem() }, (req, res) => {
      reused.push((req.socket as TLSSocket).isSessionReused());
      res.writeHead(200, { connection: "close", "content-length": "2" });
      res.end("ok");
    });
    const port = await listen(server);
    const tls = upstreamTls({ commonName: "api.example.com" });
    const pool = new Http1Pool({
      host: "127.0.0.1",
      port,
      tls: tls.forAddress(address("127.0.0.1", port)),
    });
    closers.push(() => pool.destroy());
    for (let i = 0; i < 3; i++) expect(await get(pool)).toBe(200);
    expect(reused).toEqual([false, true, true]);
  });
});

function get(pool: Http1Pool): Promise<number> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const handler: UpstreamHandler = {
      onStart() {},
      onHead(s) {
        status = s;
      },
      onData: () => true,
      onEnd: () => resolve(status),
      onError: reject,
    };
    pool.dispatch(
      { method: "GET", path: "/", headers: ["host", "api"], body: null, contentLength: undefined },
      handler,
    );
  });
}
