// Loading what a client `tls` block trusts and presents: CA files (each may hold several
// certificates) that replace the system's roots, the client certificate, and every
// failure naming the file at fault.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientTrustFiles, loadClientTrust } from "../../tls/client-trust.js";
import { CertificateError } from "../../tls/errors.js";
import { chainPem, type Issued, TestCa, writeTlsFiles } from "./test-ca.js";

let dir: string;
let root: TestCa;
let other: TestCa;
let client: Issued;
let paths: Record<
  "root.pem" | "both.pem" | "garbled.pem" | "client.crt" | "client.key" | "other.key",
  string
>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lintel-client-trust-"));
  root = await TestCa.root();
  other = await TestCa.root("Other Root");
  client = await root.leaf({ cn: "lintel", client: true });
  paths = writeTlsFiles(dir, {
    "root.pem": root.certPem,
    "both.pem": chainPem(root, other),
    "garbled.pem": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    "client.crt": client.certPem,
    "client.key": client.keyPem("sec1"),
    "other.key": other.keyPem(),
  });
}, 20_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(files: ClientTrustFiles): CertificateError {
  try {
    loadClientTrust(files);
  } catch (e) {
    expect(e).toBeInstanceOf(CertificateError);
    return e as CertificateError;
  }
  throw new Error("expected a CertificateError");
}

describe("loadClientTrust", () => {
  it("trusts the system's roots when no CA file is given", () => {
    expect(loadClientTrust({})).toEqual({ ca: undefined, identity: undefined });
  });

  it("trusts every certificate of trustCerts and trustCertsBundle", () => {
    const t = loadClientTrust({
      trustCerts: [paths["root.pem"]],
      trustCertsBundle: paths["both.pem"],
    });
    expect(t.ca).toEqual([root.certPem.trim(), root.certPem.trim(), other.certPem.trim()]);
  });

  it("names a missing or garbled CA file", () => {
    const missing = join(dir, "nope.pem");
    expect(failure({ trustCerts: [paths["root.pem"], missing] }).message).toBe(
      `${missing}: no such file`,
    );
    const garbled = failure({ trustCertsBundle: paths["garbled.pem"] });
    expect(garbled.file).toBe(paths["garbled.pem"]);
    expect(garbled.reason).toMatch(/^certificate 1 in the file is not valid/);
    expect(failure({ trustCerts: [paths["client.key"]] }).reason).toMatch(
      /^no PEM certificate in it/,
    );
  });

  it("loads the client certificate and key, checking that they match", () => {
    const t = loadClientTrust({
      clientAuth: { certPath: paths["client.crt"], keyPath: paths["client.key"] },
    });
    expect(t.identity?.chainPem).toContain("BEGIN CERTIFICATE");
    expect(t.identity?.keyPem).toContain("BEGIN EC PRIVATE KEY");
    const wrongKey = failure({
      clientAuth: { certPath: paths["client.crt"], keyPath: paths["other.key"] },
    });
    expect(wrongKey.file).toBe(paths["other.key"]);
    expect(wrongKey.reason).toMatch(/the key does not match the certificate/);
  });
});
