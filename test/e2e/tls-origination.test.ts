// TLS origination end to end over loopback: lintel in front of real HTTPS upstreams whose
// certificates come from a test CA. A verified request reaches the upstream with the
// expected SNI (commonName, a {service} capture, or the resolved host name); a wrong
// name, an unknown CA, an expired certificate, a missing client certificate and a
// handshake that never finishes are 502 LINTEL_UPSTREAM_TLS saying which; sessions
// resume; disableValidation works and is logged; bad trust files stop startup, in
// process, as `lintel check` and as `lintel run`, and the system roots include
// NODE_EXTRA_CA_CERTS.

import { createServer as createHttpsServer, type ServerOptions } from "node:https";
import { createServer as createNetServer, type Socket } from "node:net";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { checkCommand } from "../../gateway/cli/check.js";
import { formatConfigError } from "../../gateway/config/load.js";
import { createLogger } from "../../gateway/log.js";
import { Runtime } from "../../gateway/runtime.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import { DAYS, type Issued, TestCa } from "../tls/test-ca.js";
import { isListening, runLintel, startChildLintel, within } from "./child.js";
import {
  call,
  cleanup,
  closeOnCleanup,
  freePort,
  onCleanup,
  type Reply,
  startLintel,
  tempDir,
  writeFiles,
} from "./harness.js";

afterEach(cleanup);

let root: TestCa;
let api: Issued; // api.example.com
let localhost: Issued; // localhost
let expired: Issued;
let strangerRoot: TestCa;
let stranger: Issued; // api.example.com, from a CA lintel does not trust
let clientRoot: TestCa;
let lintelClient: Issued;

beforeAll(async () => {
  root = await TestCa.root();
  api = await root.leaf({ dns: ["api.example.com"] });
  localhost = await root.leaf({ dns: ["localhost"] });
  expired = await root.leaf({
    dns: ["api.example.com"],
    notBefore: new Date(Date.now() - 30 * DAYS),
    notAfter: new Date(Date.now() - DAYS),
  });
  strangerRoot = await TestCa.root("Stranger Root");
  stranger = await strangerRoot.leaf({ dns: ["api.example.com"] });
  clientRoot = await TestCa.root("Upstream Client Root");
  lintelClient = await clientRoot.leaf({ cn: "lintel-egress", client: true });
}, 30_000);

interface Seen {
  readonly url: string;
  readonly host: string | undefined;
  /** SNI (false when none). */
  readonly servername: string | false | null;
  readonly reused: boolean;
  /** CN of the client certificate, when one was presented. */
  readonly clientCn: string | string[] | undefined;
}

interface HttpsUpstream {
  readonly port: number;
  readonly seen: Seen[];
}

/** An HTTPS upstream on 127.0.0.1 presenting `cert`; `close` answers Connection: close. */
async function startHttpsUpstream(
  cert: Issued,
  opts: { close?: boolean; tls?: ServerOptions } = {},
): Promise<HttpsUpstream> {
  const seen: Seen[] = [];
  const server = createHttpsServer(
    { cert: cert.certPem, key: cert.keyPem(), ...opts.tls },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      seen.push({
        url: req.url!,
        host: req.headers.host,
        servername: socket.servername,
        reused: socket.isSessionReused(),
        clientCn: peer?.subject?.CN,
      });
      const body = "hello over TLS";
      res.writeHead(200, {
        "content-length": String(body.length),
        ...(opts.close ? { connection: "close" } : {}),
      });
      res.end(body);
    },
  );
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  closeOnCleanup(server);
  const a = server.address();
  return { port: typeof a === "object" && a ? a.port : 0, seen };
}

const caFiles = () => ({
  "ca/root.pem": root.certPem,
  "ca/stranger.pem": strangerRoot.certPem,
  "client/lintel.crt": lintelClient.certPem,
  "client/lintel.key": lintelClient.keyPem(),
});

/** A router sending every request to `dst` (a bound path), with a client block. */
function config(dst: string, client: string, dtab = `/svc => ${dst}`): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: ${dtab}
  client: ${client}
  servers: [{ip: 127.0.0.1, port: 0}]
`;
}

const inet = (port: number) => `/$/inet/127.0.0.1/${port}`;

/** A lintel-made 502 LINTEL_UPSTREAM_TLS; returns its l5d-err message. */
function expectTlsError(r: Reply, logs: string[]): string {
  expect(r.status).toBe(502);
  const message = decodeURIComponent(r.headers["l5d-err"] as string);
  expect(r.text).toBe(`${message}\n`);
  expect(logs.some((l) => l.includes("code=LINTEL_UPSTREAM_TLS"))).toBe(true);
  return message;
}

describe("TLS origination", () => {
  it("verifies the upstream against commonName and sends it as SNI", async () => {
    const up = await startHttpsUpstream(api);
    const l = await startLintel(
      config(inet(up.port), `{tls: {commonName: api.example.com, trustCerts: [ca/root.pem]}}`),
      caFiles(),
    );
    const r = await call(l.port(), { path: "/v1/things", headers: { host: "api" } });
    expect(r.status).toBe(200);
    expect(r.text).toBe("hello over TLS");
    expect(up.seen).toMatchObject([
      { url: "/v1/things", host: "api", servername: "api.example.com" },
    ]);
  });

  it("takes the Linkerd 1 form unchanged: io.l5d.static with {service} in commonName", async () => {
    const up = await startHttpsUpstream(localhost);
    const l = await startLintel(
      config(
        "",
        `
    kind: io.l5d.static
    configs:
    - prefix: "/$/io.buoyant.rinet/${up.port}/{service}"
      tls: {commonName: "{service}", trustCerts: [ca/root.pem]}`,
        `/svc => /$/io.buoyant.rinet/${up.port}`,
      ),
      caFiles(),
    );
    const r = await call(l.port(), { headers: { host: "localhost" } });
    expect(r.status).toBe(200);
    expect(up.seen).toMatchObject([{ servername: "localhost" }]);
  });

  it("without commonName, verifies the host name the address was resolved from", async () => {
    const up = await startHttpsUpstream(localhost);
    const l = await startLintel(
      config(`/$/inet/localhost/${up.port}`, `{tls: {trustCerts: [ca/root.pem]}}`),
      caFiles(),
    );
    expect((await call(l.port(), { headers: { host: "x" } })).status).toBe(200);
    expect(up.seen).toMatchObject([{ servername: "localhost" }]);
  });

  it("answers 502 when the certificate is for another name, saying which", async () => {
    const up = await startHttpsUpstream(api);
    const l = await startLintel(
      config(inet(up.port), `{tls: {commonName: billing.example.com, trustCerts: [ca/root.pem]}}`),
      caFiles(),
    );
    const r = await call(l.port(), { headers: { host: "billing" } });
    expect(expectTlsError(r, l.logs)).toBe(
      `TLS to 127.0.0.1:${up.port} (billing.example.com): the certificate is for api.example.com, not billing.example.com`,
    );
    expect(up.seen).toEqual([]);
  });

  it("answers 502 for a certificate from an unknown CA, and for an expired one", async () => {
    const unknown = await startHttpsUpstream(stranger);
    const old = await startHttpsUpstream(expired);
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: |
    /svc/unknown => ${inet(unknown.port)};
    /svc/old => ${inet(old.port)};
  client: {tls: {commonName: api.example.com, trustCerts: [ca/root.pem]}}
  servers: [{ip: 127.0.0.1, port: 0}]
`,
      caFiles(),
    );
    const a = await call(l.port(), { headers: { host: "unknown" } });
    expect(expectTlsError(a, l.logs)).toBe(
      `TLS to 127.0.0.1:${unknown.port} (api.example.com): the certificate is issued by an unknown CA, "CN=Stranger Root" (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
    const b = await call(l.port(), { headers: { host: "old" } });
    const notAfter = new Date(expired.cert.notAfter).toISOString().slice(0, 10);
    expect(expectTlsError(b, l.logs)).toMatch(
      new RegExp(`\\(api\\.example\\.com\\): the certificate expired on ${notAfter}T`),
    );
    // Each request tries once and fails the same way; nothing reached the upstreams.
    const again = await call(l.port(), { headers: { host: "old" } });
    expect(again.status).toBe(502);
    expect(unknown.seen.length + old.seen.length).toBe(0);
  });

  it("trusts the CAs of trustCertsBundle instead of the system's", async () => {
    const up = await startHttpsUpstream(stranger);
    const l = await startLintel(
      config(
        inet(up.port),
        `{tls: {commonName: api.example.com, trustCertsBundle: ca/stranger.pem}}`,
      ),
      caFiles(),
    );
    expect((await call(l.port(), { headers: { host: "api" } })).status).toBe(200);
  });

  it("with disableValidation accepts any certificate and logs a warning naming the client", async () => {
    const up = await startHttpsUpstream(stranger);
    const l = await startLintel(
      config(inet(up.port), `{tls: {commonName: wrong.example.com, disableValidation: true}}`),
    );
    expect((await call(l.port(), { headers: { host: "api" } })).status).toBe(200);
    expect((await call(l.port(), { headers: { host: "api" } })).status).toBe(200);
    const warnings = l.logs.filter((x) => x.includes("validation is DISABLED"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^\S+ WARN /);
    expect(warnings[0]).toContain(`client=/$/inet/127.0.0.1/${up.port}`);
  });

  it("presents clientAuth's certificate to an upstream that requires one", async () => {
    const tls: ServerOptions = {
      requestCert: true,
      rejectUnauthorized: true,
      ca: [clientRoot.certPem],
    };
    const up = await startHttpsUpstream(api, { tls });
    const withCert = await startLintel(
      config(
        inet(up.port),
        `{tls: {commonName: api.example.com, trustCerts: [ca/root.pem], clientAuth: {certPath: client/lintel.crt, keyPath: client/lintel.key}}}`,
      ),
      caFiles(),
    );
    expect((await call(withCert.port(), { headers: { host: "api" } })).status).toBe(200);
    expect(up.seen).toMatchObject([{ clientCn: "lintel-egress" }]);

    const without = await startLintel(
      config(inet(up.port), `{tls: {commonName: api.example.com, trustCerts: [ca/root.pem]}}`),
      caFiles(),
    );
    const r = await call(without.port(), { headers: { host: "api" } });
    expect(expectTlsError(r, without.logs)).toContain("certificate required");
  });

  it("resumes the TLS session on new connections to the same endpoint", async () => {
    const up = await startHttpsUpstream(api, { close: true });
    const l = await startLintel(
      config(inet(up.port), `{tls: {commonName: api.example.com, trustCerts: [ca/root.pem]}}`),
      caFiles(),
    );
    for (let i = 0; i < 4; i++)
      expect((await call(l.port(), { headers: { host: "api" } })).status).toBe(200);
    expect(up.seen.map((s) => s.reused)).toEqual([false, true, true, true]);
  });

  it("gives up on a handshake that never finishes after connectTimeoutMs: 502", async () => {
    const silent = createNetServer((s: Socket) => {
      s.on("error", () => {});
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    const held = new Set<Socket>();
    silent.on("connection", (s: Socket) => held.add(s));
    onCleanup(
      () =>
        new Promise<void>((r) => {
          for (const s of held) s.destroy();
          silent.close(() => r());
        }),
    );
    const port = (silent.address() as { port: number }).port;
    const l = await startLintel(
      config(
        inet(port),
        `{connectTimeoutMs: 400, tls: {commonName: api.example.com, trustCerts: [ca/root.pem]}}`,
      ),
      caFiles(),
    );
    const started = performance.now();
    const r = await call(l.port(), { headers: { host: "api" } });
    const took = performance.now() - started;
    expect(expectTlsError(r, l.logs)).toBe(
      `TLS to 127.0.0.1:${port} (api.example.com): no TLS handshake within 400 ms (connectTimeoutMs)`,
    );
    expect(took).toBeGreaterThanOrEqual(390);
    expect(took).toBeLessThan(1500);
  });
});

describe("TLS origination files", () => {
  const missingTrust = (port: number) =>
    config(
      inet(port),
      `
    kind: io.l5d.static
    configs:
    - prefix: /$/inet
      tls: {commonName: api.example.com, trustCerts: [ca/root.pem, ca/missing.pem]}`,
    );

  it("lintel check names the missing trustCerts file and its config path", async () => {
    const dir = tempDir();
    writeFiles(dir, { ...caFiles(), "lintel.yaml": missingTrust(1) });
    const file = join(dir, "lintel.yaml");
    const out: string[] = [];
    expect(await checkCommand([file], (s) => out.push(s))).toBe(1);
    expect(out).toEqual([
      `${file}: 1 error`,
      `  routers[0].client.configs[0].tls: ${join(dir, "ca/missing.pem")}: no such file (line 10)`,
    ]);
  });

  it("a trust file gone by startup stops it, leaving nothing listening", async () => {
    const dir = tempDir();
    const port = await freePort();
    const admin = await freePort();
    writeFiles(dir, {
      ...caFiles(),
      "ca/missing.pem": root.certPem,
      "lintel.yaml": `
admin: {ip: 127.0.0.1, port: ${admin}}
routers:
- protocol: http
  label: plain
  dtab: /svc => ${inet(1)}
  servers: [{ip: 127.0.0.1, port: ${port}}]
- protocol: http
  label: egress
  dtab: /svc => ${inet(1)}
  client: {tls: {commonName: api.example.com, trustCerts: [ca/missing.pem]}}
  servers: [{ip: 127.0.0.1, port: 0}]
`,
    });
    const loaded = await loadLintelConfig(join(dir, "lintel.yaml"));
    if (!loaded.ok) throw new Error(loaded.errors.map(formatConfigError).join("\n"));
    writeFiles(dir, { "ca/missing.pem": "garbage" });
    const started = Runtime.start(loaded.config, {
      log: createLogger({ sink: () => {} }),
      source: { file: loaded.file, text: loaded.text },
    });
    started.then((rt) => onCleanup(() => rt.shutdown(0))).catch(() => {});
    await expect(started).rejects.toThrow(
      `router egress (routers[1].client.tls): TLS: ${join(dir, "ca/missing.pem")}: no PEM certificate in it`,
    );
    expect(await isListening(port)).toBe(false);
    expect(await isListening(admin)).toBe(false);
  });

  it("lintel run (the built CLI) refuses to start on a bad trustCerts file", async () => {
    const dir = tempDir("lintel-child-");
    writeFiles(dir, { ...caFiles(), "lintel.yaml": missingTrust(1) });
    const run = runLintel(["run", join(dir, "lintel.yaml")], dir);
    expect(await within(run.exited, 10_000)).toBe(true);
    expect(run.exit()).toMatchObject({ code: 1, signal: null });
    expect(run.stdout()).toContain(
      `routers[0].client.configs[0].tls: ${join(dir, "ca/missing.pem")}: no such file`,
    );
  }, 20_000);

  it("trusts the system's roots by default, NODE_EXTRA_CA_CERTS included (built CLI)", async () => {
    const up = await startHttpsUpstream(api);
    const caDir = tempDir();
    writeFiles(caDir, { "extra.pem": root.certPem });
    const before = process.env.NODE_EXTRA_CA_CERTS;
    // The child inherits the environment when it is spawned.
    process.env.NODE_EXTRA_CA_CERTS = join(caDir, "extra.pem");
    let child: Awaited<ReturnType<typeof startChildLintel>>;
    try {
      child = await startChildLintel(
        (port, admin) => `
admin: {ip: 127.0.0.1, port: ${admin}}
routers:
- protocol: http
  dtab: /svc => ${inet(up.port)}
  client: {tls: {commonName: api.example.com}}
  servers: [{ip: 127.0.0.1, port: ${port}}]
`,
      );
    } finally {
      if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = before;
    }
    const r = await call(child.port, { headers: { host: "api" } });
    expect(r.status).toBe(200);
    expect(up.seen).toMatchObject([{ servername: "api.example.com" }]);
  }, 20_000);
});
