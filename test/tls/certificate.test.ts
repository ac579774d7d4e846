// Loading one certificate and key (every key format, passphrases, chains) and every way
// it can fail, each naming the file at fault; and choosing a certificate by server name.

import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CertificateFiles, loadCertificate } from "../../tls/certificate.js";
import { CertificateSet } from "../../tls/certificate-set.js";
import { CertificateError } from "../../tls/errors.js";
import { chainPem, DAYS, type Issued, TestCa, writeTlsFiles } from "./test-ca.js";

let dir: string;
let root: TestCa;
let inter: TestCa;
let ecLeaf: Issued;
let rsaLeaf: Issued;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lintel-cert-"));
  root = await TestCa.root();
  inter = await root.intermediate();
  ecLeaf = await inter.leaf({ dns: ["ec.example.com", "*.ec.example.com"] });
  rsaLeaf = await inter.leaf({ dns: ["rsa.example.com"], alg: "rsa" });
}, 20_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a cert and key (unique names) and returns their paths. */
function files(cert: string, key: string, extra: Partial<CertificateFiles> = {}): CertificateFiles {
  n++;
  const p = writeTlsFiles(dir, { [`c${n}.crt`]: cert, [`c${n}.key`]: key });
  return { certPath: p[`c${n}.crt`]!, keyPath: p[`c${n}.key`]!, ...extra };
}

/** The CertificateError loadCertificate throws for `f`. */
function failure(f: CertificateFiles): CertificateError {
  try {
    loadCertificate(f);
  } catch (e) {
    expect(e).toBeInstanceOf(CertificateError);
    return e as CertificateError;
  }
  throw new Error("loadCertificate did not fail");
}

describe("loadCertificate: key formats", () => {
  const PASS = "s3cret pass";
  const cases = [
    ["PKCS#1 RSA", "rsa", "pkcs1", undefined],
    ["PKCS#8 RSA", "rsa", "pkcs8", undefined],
    ["PKCS#8 EC", "ec", "pkcs8", undefined],
    ["SEC1 EC", "ec", "sec1", undefined],
    ["encrypted PKCS#8 RSA", "rsa", "pkcs8-enc", PASS],
    ["encrypted PKCS#8 EC", "ec", "pkcs8-enc", PASS],
    ["encrypted traditional PKCS#1 RSA", "rsa", "pkcs1-enc", PASS],
    ["encrypted traditional SEC1 EC", "ec", "sec1-enc", PASS],
  ] as const;
  it.each(cases)("loads a %s key", (_name, alg, format, passphrase) => {
    const leaf = alg === "rsa" ? rsaLeaf : ecLeaf;
    const f = files(chainPem(leaf, inter), leaf.keyPem(format, passphrase), { passphrase });
    const c = loadCertificate(f);
    expect(c.names).toEqual(
      alg === "rsa" ? ["rsa.example.com"] : ["ec.example.com", "*.ec.example.com"],
    );
    expect(c.leaf.serialNumber).toBe(leaf.serial);
    expect(c.key.asymmetricKeyType).toBe(alg);
    expect(c.chainPem).toContain(inter.certPem.trim());
    expect(c.files).toBe(f);
    expect(c.notAfter.getTime()).toBe(new Date(leaf.cert.notAfter).getTime());
  });

  it("reads names from the CN when the certificate has no subjectAltName", async () => {
    const leaf = await inter.leaf({ cn: "Legacy.Example.com" });
    const c = loadCertificate(files(chainPem(leaf, inter), leaf.keyPem()));
    expect(c.names).toEqual(["legacy.example.com"]);
  });

  it("prefers subjectAltNames over the CN, lower-cased", async () => {
    const leaf = await inter.leaf({
      cn: "cn.example.com",
      dns: ["WWW.Example.COM", "api.example.com"],
    });
    const c = loadCertificate(files(chainPem(leaf, inter), leaf.keyPem()));
    expect(c.names).toEqual(["www.example.com", "api.example.com"]);
  });

  it("gives a different fingerprint to a renewed certificate, the same to the same files", async () => {
    const a = loadCertificate(files(chainPem(ecLeaf, inter), ecLeaf.keyPem()));
    const again = loadCertificate(files(chainPem(ecLeaf, inter), ecLeaf.keyPem()));
    const renewed = await inter.leaf({ dns: ["ec.example.com"], keys: ecLeaf.keys });
    const b = loadCertificate(files(chainPem(renewed, inter), renewed.keyPem()));
    expect(again.fingerprint).toBe(a.fingerprint);
    expect(b.fingerprint).not.toBe(a.fingerprint);
  });
});

describe("loadCertificate: chains", () => {
  it("accepts intermediates in a separate intermediateCertsPath file", () => {
    const p = writeTlsFiles(dir, { "sep-inter.pem": chainPem(inter, root) });
    const f = files(ecLeaf.certPem, ecLeaf.keyPem(), { intermediateCertsPath: p["sep-inter.pem"] });
    const c = loadCertificate(f);
    expect(c.warnings).toEqual([]);
    const served = c.chainPem.match(/BEGIN CERTIFICATE/g) ?? [];
    expect(served).toHaveLength(3);
    expect(c.chainPem.indexOf(ecLeaf.certPem.trim())).toBe(0);
  });

  it("refuses a chain with a gap (leaf + root, no intermediate): missing intermediate", () => {
    const f = files(chainPem(ecLeaf, root), ecLeaf.keyPem());
    const e = failure(f);
    expect(e.file).toBe(f.certPath);
    expect(e.reason).toMatch(/missing intermediate/);
    expect(e.reason).toContain("Lintel Test Intermediate");
    expect(e.message).toBe(`${f.certPath}: ${e.reason}`);
  });

  it("names the intermediates file when the gap is in it", () => {
    const other = writeTlsFiles(dir, { "gap-inter.pem": root.certPem });
    const f = files(ecLeaf.certPem, ecLeaf.keyPem(), {
      intermediateCertsPath: other["gap-inter.pem"],
    });
    const e = failure(f);
    expect(e.file).toBe(other["gap-inter.pem"]);
    expect(e.reason).toMatch(/missing intermediate/);
  });

  it("warns (does not fail) when the chain ends at an issuer it does not include", () => {
    const c = loadCertificate(files(ecLeaf.certPem, ecLeaf.keyPem()));
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toMatch(/Lintel Test Intermediate/);
    expect(c.warnings[0]).toMatch(/not trust/);
  });

  it("warns that a private root is not known to clients, when the chain stops below it", () => {
    const c = loadCertificate(files(chainPem(ecLeaf, inter), ecLeaf.keyPem()));
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toContain('issued by "CN=Lintel Test Root"');
  });

  it("does not warn for a chain that ends at a self-signed root", () => {
    const c = loadCertificate(files(chainPem(ecLeaf, inter, root), ecLeaf.keyPem()));
    expect(c.warnings).toEqual([]);
  });

  it("refuses an intermediate of the right name (and key identifier) whose key did not sign the leaf", async () => {
    for (const sameKeyId of [true, false]) {
      const twin = await inter.twin(root, sameKeyId);
      const f = files(chainPem(ecLeaf, twin, root), ecLeaf.keyPem());
      const e = failure(f);
      expect(e.file).toBe(f.certPath);
      expect(e.reason).toContain(
        'certificate 1 in the chain ("CN=ec.example.com") is not signed by the next one',
      );
      expect(e.reason).toContain('named "CN=Lintel Test Intermediate"');
      expect(e.reason).toMatch(/key does not verify its signature/);
    }
  });

  it("names the intermediates file and the certificate when a signature in it does not verify", async () => {
    const twinRoot = await root.twin(undefined, true);
    const p = writeTlsFiles(dir, { "twin-root.pem": chainPem(inter, twinRoot) });
    const f = files(ecLeaf.certPem, ecLeaf.keyPem(), { intermediateCertsPath: p["twin-root.pem"] });
    const e = failure(f);
    expect(e.file).toBe(p["twin-root.pem"]);
    expect(e.reason).toContain(
      'certificate 2 in the chain ("CN=Lintel Test Intermediate") is not signed by the next one',
    );
  });

  it("refuses a chain whose next certificate signed it but may not issue certificates", async () => {
    // A leaf's key signing another certificate: the signature verifies, the key usage does not allow it.
    const leafAsCa = new TestCa(ecLeaf.cert, ecLeaf.keys, ecLeaf.alg);
    const below = await leafAsCa.leaf({ dns: ["below.example.com"] });
    const e = failure(files(chainPem(below, ecLeaf, inter), below.keyPem()));
    expect(e.reason).toContain("is signed by the next one");
    expect(e.reason).toMatch(/may not issue it/);
  });

  it("warns when the chain's last issuer is named like a known root CA that did not sign it", async () => {
    const known = new X509Certificate(rootCertificates[0]!);
    const impostor = await TestCa.root("", "ec", known.subject.split("\n").join(", "));
    expect(impostor.cert.subject).toBeTruthy();
    const fakeInter = await impostor.intermediate("Impostor Intermediate");
    const leaf = await fakeInter.leaf({ dns: ["x.example.com"] });
    const c = loadCertificate(files(chainPem(leaf, fakeInter), leaf.keyPem()));
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toContain(`issued by "${known.subject.split("\n").join(", ")}"`);
    expect(c.warnings[0]).toMatch(/no known root CA of that name signed it/);
  });
});

describe("loadCertificate: errors name the file and the reason", () => {
  it("a key that does not match its certificate (names the key file)", () => {
    const f = files(chainPem(ecLeaf, inter), rsaLeaf.keyPem());
    const e = failure(f);
    expect(e.file).toBe(f.keyPath);
    expect(e.reason).toMatch(/does not match the certificate/);
    expect(e.reason).toContain(f.certPath);
  });

  it("an expired certificate", async () => {
    const leaf = await inter.leaf({
      dns: ["old.example.com"],
      notBefore: new Date(Date.now() - 30 * DAYS),
      notAfter: new Date(Date.now() - DAYS),
    });
    const f = files(chainPem(leaf, inter), leaf.keyPem());
    const e = failure(f);
    expect(e.file).toBe(f.certPath);
    expect(e.reason).toMatch(/expired on \d{4}-\d\d-\d\dT/);
  });

  it("a certificate not yet valid", async () => {
    const leaf = await inter.leaf({
      dns: ["future.example.com"],
      notBefore: new Date(Date.now() + DAYS),
      notAfter: new Date(Date.now() + 30 * DAYS),
    });
    const f = files(chainPem(leaf, inter), leaf.keyPem());
    const e = failure(f);
    expect(e.file).toBe(f.certPath);
    expect(e.reason).toMatch(/not valid before \d{4}-/);
  });

  it("a certificate file with no PEM certificate in it", () => {
    const f = files("this is not a certificate\n", ecLeaf.keyPem());
    const e = failure(f);
    expect(e.file).toBe(f.certPath);
    expect(e.reason).toMatch(/no PEM certificate/);
  });

  it("a certificate file whose PEM is garbled", () => {
    const garbled = ecLeaf.certPem.replace(/(-----\n)[A-Za-z0-9+/]{20}/, "$1AAAAAAAAAAAAAAAAAAAA");
    const f = files(
      `-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n`,
      ecLeaf.keyPem(),
    );
    const e = failure(f);
    expect(e.file).toBe(f.certPath);
    expect(e.reason).toMatch(/certificate 1 in the file is not valid/);
    const g = files(garbled, ecLeaf.keyPem());
    expect(failure(g).file).toBe(g.certPath);
  });

  it("a key file with no PEM key in it", () => {
    const f = files(ecLeaf.certPem, "garbage\n");
    const e = failure(f);
    expect(e.file).toBe(f.keyPath);
    expect(e.reason).toMatch(/no PEM private key/);
  });

  it("a key file whose PEM is garbled", () => {
    const f = files(
      ecLeaf.certPem,
      "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n",
    );
    const e = failure(f);
    expect(e.file).toBe(f.keyPath);
    expect(e.reason).toMatch(/not a valid private key/);
  });

  it.each(["pkcs8-enc", "pkcs1-enc"] as const)(
    "an encrypted key (%s) without a passphrase",
    (format) => {
      const f = files(rsaLeaf.certPem, rsaLeaf.keyPem(format, "pw"));
      const e = failure(f);
      expect(e.file).toBe(f.keyPath);
      expect(e.reason).toMatch(/encrypted: give its passphrase/);
    },
  );

  it.each(["pkcs8-enc", "sec1-enc"] as const)(
    "an encrypted key (%s) with the wrong passphrase",
    (format) => {
      const f = files(ecLeaf.certPem, ecLeaf.keyPem(format, "right"), { passphrase: "wrong" });
      const e = failure(f);
      expect(e.file).toBe(f.keyPath);
      expect(e.reason).toMatch(/wrong passphrase/);
    },
  );

  it("a missing certificate file, key file or intermediates file", () => {
    const ok = files(ecLeaf.certPem, ecLeaf.keyPem());
    const nowhere = join(dir, "nowhere.pem");
    for (const f of [
      { ...ok, certPath: nowhere },
      { ...ok, keyPath: nowhere },
      { ...ok, intermediateCertsPath: nowhere },
    ]) {
      const e = failure(f);
      expect(e.file).toBe(nowhere);
      expect(e.reason).toBe("no such file");
      expect(e.message).toBe(`${nowhere}: no such file`);
    }
  });
});

describe("CertificateSet", () => {
  let set: CertificateSet;
  let def: ReturnType<typeof loadCertificate>;
  let exact: ReturnType<typeof loadCertificate>;
  let wild: ReturnType<typeof loadCertificate>;

  beforeAll(async () => {
    const load = async (dns: string[]) => {
      const leaf = await inter.leaf({ dns });
      return loadCertificate(files(chainPem(leaf, inter), leaf.keyPem()));
    };
    def = await load(["default.test"]);
    wild = await load(["*.example.com"]);
    exact = await load(["www.example.com", "Api.Example.com"]);
    set = new CertificateSet(def, [wild, exact]);
  });

  it("an exact name beats a wildcard", () => {
    expect(set.match("www.example.com")).toBe(exact);
    expect(set.match("api.example.com")).toBe(exact);
    expect(set.match("other.example.com")).toBe(wild);
  });

  it("a wildcard covers one label only", () => {
    expect(set.match("a.b.example.com")).toBeUndefined();
    expect(set.match("example.com")).toBeUndefined();
  });

  it("matches case-insensitively", () => {
    expect(set.match("WWW.EXAMPLE.COM")).toBe(exact);
    expect(set.match("Other.Example.Com")).toBe(wild);
    expect(set.match("DEFAULT.test")).toBe(def);
  });

  it("returns undefined for an unknown name", () => {
    expect(set.match("unknown.test")).toBeUndefined();
    expect(set.match("")).toBeUndefined();
  });

  it("the default is the first certificate; names come from the certificates", () => {
    expect(set.defaultCert).toBe(def);
    expect([...set.names.keys()].sort()).toEqual(
      ["*.example.com", "api.example.com", "default.test", "www.example.com"].sort(),
    );
    expect(set.all).toEqual([def, wild, exact]);
  });

  it("an earlier certificate keeps a name a later one also has", async () => {
    const leaf = await inter.leaf({ dns: ["www.example.com"] });
    const later = loadCertificate(files(chainPem(leaf, inter), leaf.keyPem()));
    const s = new CertificateSet(def, [exact, later]);
    expect(s.match("www.example.com")).toBe(exact);
    expect(s.fingerprint).not.toBe(new CertificateSet(def, [later, exact]).fingerprint);
  });
});
