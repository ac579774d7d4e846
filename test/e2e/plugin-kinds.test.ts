// User plugins adding the kinds around a listener, through a running lintel: a
// certificate source whose certificate a real TLS client receives by SNI, and a server
// layer that refuses requests and answers some itself before anything is routed.

import { X509Certificate } from "node:crypto";
import { request } from "node:https";
import { createRequire } from "node:module";
import { connect, type PeerCertificate } from "node:tls";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { call, cleanup, ENGINES, eventually, startLintel, startUpstream } from "./harness.js";

afterEach(cleanup);

/** A package of lintel's node_modules as a URL, for a plugin module written to a temp dir. */
const nodeModule = (name: string) =>
  JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve(name)).href);

/** `test.selfSigned`: makes a self-signed certificate for `name` and serves it once made. */
const CERT_PLUGIN = `import ${nodeModule("reflect-metadata")};
import { KeyObject, webcrypto } from "node:crypto";
import * as x509 from ${nodeModule("@peculiar/x509")};

x509.cryptoProvider.set(webcrypto);
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

async function selfSigned(name) {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "2a",
    name: "CN=" + name,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: name }])],
  });
  const keyPem = KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" });
  return { certPem: cert.toString("pem"), keyPem };
}

export default (lintel) => lintel.definePlugin({
  category: "certSource",
  kind: "test.selfSigned",
  schema: lintel.schema.object({ name: lintel.schema.req(lintel.schema.nonEmptyString()) }),
  create(config, ctx) {
    const origin = "test.selfSigned " + config.name;
    const listeners = new Set();
    let pairs = new Map();
    void selfSigned(config.name).then((pair) => {
      pairs = new Map([[origin, pair]]);
      ctx.log.info("certificate made", { name: config.name });
      for (const l of listeners) l();
    });
    return {
      kind: "live",
      source: {
        description: "test.selfSigned",
        required: false,
        current: () => pairs,
        onChange(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
      },
    };
  },
});
`;

/** `test.gate`: refuses requests without `header`, and answers /hello itself. */
const LAYER_PLUGIN = `export default (lintel) => lintel.definePlugin({
  category: "serverLayer",
  kind: "test.gate",
  schema: lintel.schema.object({ header: lintel.schema.req(lintel.schema.nonEmptyString()) }),
  create(config) {
    return {
      name: "test.gate",
      arrive(req, answerer) {
        if (lintel.getHeader(req.ex.headers, config.header) === undefined)
          throw new lintel.ProxyError("LINTEL_FORBIDDEN", config.header + " is required here");
        if (req.ex.url !== "/hello") return false;
        answerer.answer(req, 200, ["content-type", "text/plain"], Buffer.from("hello from test.gate\\n"));
        return true;
      },
    };
  },
});
`;

/** The certificate lintel presents for `servername` (not verified: the test looks at it). */
function presented(port: number, servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
    s.setTimeout(5000, () => s.destroy(new Error("handshake timed out")));
    s.on("secureConnect", () => {
      resolve(s.getPeerCertificate());
      s.end();
    });
    s.on("error", reject);
  });
}

/** A GET over HTTPS to `servername`, trusting `ca` only. */
function httpsGet(port: number, servername: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, servername, ca, path: "/", headers: { host: servername } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("a user plugin's certificate source", () => {
  it("serves the certificate it makes to a TLS client asking for its name (node)", async () => {
    const upstream = await startUpstream("u");
    const l = await startLintel(
      `plugins: [self-signed.mjs]
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${upstream.port}
  servers:
  - ip: 127.0.0.1
    port: 0
    engine: net
    tls:
      checkIntervalMs: 100
      certs:
      - {kind: test.selfSigned, name: plugin.test}
`,
      { "self-signed.mjs": CERT_PLUGIN },
    );
    const port = l.port();
    // Its certificate comes and goes (required: false) and comes first: until it is
    // made, and for other names, lintel's generated default answers.
    await eventually(
      async () => (await presented(port, "plugin.test")).subject.CN === "plugin.test",
      10_000,
      "the plugin's certificate",
    );
    const cert = await presented(port, "plugin.test");
    expect(cert.subjectaltname).toBe("DNS:plugin.test");
    expect((await presented(port, "other.test")).subjectaltname).toBe("DNS:lintel-default.invalid");
    // Trusting that certificate alone, a client verifies it and its request is routed.
    const pem = new X509Certificate(cert.raw).toString();
    expect(await httpsGet(port, "plugin.test", pem)).toBe(200);
    expect(upstream.seen).toHaveLength(1);
  });
});

describe.each(ENGINES)("a user plugin's server layer (%s)", (engine) => {
  it("refuses requests without its header with 403 and l5d-err, and answers /hello itself, before admission", async () => {
    let release = () => {};
    const upstream = await startUpstream("u", (_req, res) => {
      release = () => res.end("done\n");
    });
    const l = await startLintel(
      `plugins: [gate.mjs]
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${upstream.port}
  servers:
  - ip: 127.0.0.1
    port: 0
    engine: ${engine}
    maxConcurrentRequests: 1
    layers:
    - {kind: test.gate, header: x-pass}
`,
      { "gate.mjs": LAYER_PLUGIN },
    );
    const port = l.port();
    // One routed request holds the server's only admission slot.
    const held = call(port, { path: "/held", headers: { host: "web", "x-pass": "1" } });
    await eventually(() => upstream.seen.length === 1, 5000, "the held request upstream");

    const refused = await call(port, { headers: { host: "web" } });
    expect(refused.status).toBe(403);
    expect(decodeURIComponent(String(refused.headers["l5d-err"]))).toBe("x-pass is required here");
    const hello = await call(port, { path: "/hello", headers: { host: "web", "x-pass": "1" } });
    expect(hello.status).toBe(200);
    expect(hello.text).toBe("hello from test.gate\n");
    // What the layer lets through meets admission after it.
    const overloaded = await call(port, { path: "/more", headers: { host: "web", "x-pass": "1" } });
    expect(overloaded.status).toBe(503);

    release();
    expect((await held).status).toBe(200);
    expect(upstream.seen.map((r) => r.url)).toEqual(["/held"]);
  });
});
