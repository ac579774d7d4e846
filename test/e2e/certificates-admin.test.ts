// A folder of certificates as the admin server reports it: a key that turns out bad on a
// name's first handshake is that certificate's `error` in /admin/certificates.json, and
// each TLS server's certificate counters (indexed, loaded, failed, contexts built) and
// expiry gauges are metrics.

import { connect } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { TestCa } from "../tls/test-ca.js";
import { call, cleanup, metricsJson, startLintel } from "./harness.js";

afterEach(cleanup);

/** The serial of the certificate a handshake for `name` is given. */
function serialFor(port: number, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, servername: name, rejectUnauthorized: false });
    s.once("secureConnect", () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.once("error", reject);
  });
}

describe("a certificate folder on the admin server", () => {
  it("shows a key found bad on first use as the certificate's error, and counts it", async () => {
    const ca = await TestCa.root();
    const def = await ca.leaf({ dns: ["default.test"] });
    const good = await ca.leaf({ dns: ["good.test"] });
    const bad = await ca.leaf({ dns: ["bad.test"] });
    const other = await ca.leaf({ dns: ["other.test"] });
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/9
  servers:
  - ip: 127.0.0.1
    port: 0
    engine: net
    tls: {certPath: default.crt, keyPath: default.key, certs: [{dir: live}]}
`,
      {
        "default.crt": def.certPem,
        "default.key": def.keyPem(),
        "live/good.crt": good.certPem,
        "live/good.key": good.keyPem(),
        // bad.test's certificate with another certificate's key: readable, but no pair.
        "live/bad.crt": bad.certPem,
        "live/bad.key": other.keyPem(),
      },
    );
    expect(await serialFor(l.port(), "good.test")).toBe(good.serial);
    // The bad pair is found out now, and the default certificate answers instead.
    expect(await serialFor(l.port(), "bad.test")).toBe(def.serial);

    const view = JSON.parse((await call(l.adminPort, { path: "/admin/certificates.json" })).text);
    const certs = view.servers[0].certificates as { names: string[]; error?: string }[];
    const badView = certs.find((c) => c.names.includes("bad.test"))!;
    expect(badView.error).toMatch(/bad\.key/);
    expect(certs.find((c) => c.names.includes("good.test"))!.error).toBeUndefined();

    const m = await metricsJson(l);
    const store = `tls/store/127.0.0.1:${l.port()}`;
    expect(m[`${store}/indexed`]).toBe(2);
    expect(m[`${store}/failed`]).toBe(1);
    expect(m[`${store}/loaded`]).toBeGreaterThanOrEqual(1);
    expect(m[`${store}/contexts_built`]).toBeGreaterThanOrEqual(2);
    expect(m["tls/certificate/good.test/expiry_seconds"]).toBeGreaterThan(86_400);
  });
});
