// The certificate store over real files: startup errors, folders of pairs (certbot's
// layout included), reloads that replace, add and remove certificates, bad reloads that
// keep the previous certificate serving, watching, and key passphrases.

import {
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { CertificateSet } from "../../tls/certificate-set.js";
import {
  type CertificateSource,
  CertificateStore,
  type CertificateStoreSpec,
  pairsInDir,
  type StoredCertificate,
} from "../../tls/certificate-store.js";
import { CertificateError, type TlsLog } from "../../tls/errors.js";
import { chainPem, DAYS, type Issued, type KeyPair, TestCa, writeTlsFiles } from "./test-ca.js";

let root: TestCa;
let inter: TestCa;
let dir: string;
const stores: CertificateStore[] = [];

beforeAll(async () => {
  root = await TestCa.root();
  inter = await root.intermediate();
}, 20_000);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lintel-store-"));
});

afterEach(() => {
  for (const s of stores.splice(0)) s.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Logged = { level: string; message: string; fields?: Record<string, string | number> };

/** A store over `sources` whose log lines are collected in `logs`. */
function store(
  sources: CertificateSource[],
  more: Partial<CertificateStoreSpec> = {},
): { store: CertificateStore; logs: Logged[] } {
  const logs: Logged[] = [];
  const log: TlsLog = (level, message, fields) => logs.push({ level, message, fields });
  const s = new CertificateStore({ sources, ...more }, log);
  stores.push(s);
  return { store: s, logs };
}

const leaf = (dns: string[], keys?: KeyPair) => inter.leaf({ dns, keys });
const chain = (c: Issued) => chainPem(c, inter);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rewrites files in place, a little later than their last write (so the mtime moves). */
async function rewrite(files: Record<string, string>): Promise<void> {
  await sleep(20);
  for (const [path, text] of Object.entries(files)) writeFileSync(path, text);
}

/** The cert+key of `c` as `<name>.crt` / `<name>.key` in `d`; returns the "files" source. */
function pair(d: string, name: string, c: Issued, ext = "crt") {
  const p = writeTlsFiles(d, { [`${name}.${ext}`]: chain(c), [`${name}.key`]: c.keyPem() });
  return {
    kind: "files" as const,
    certPath: p[`${name}.${ext}`]!,
    keyPath: p[`${name}.key`]!,
  };
}

const serial = (set: CertificateSet<StoredCertificate>, name: string) =>
  set.match(name)?.leaf.serialNumber;

describe("loading at startup", () => {
  it("throws the first CertificateError when a certificate does not load", async () => {
    const ok = pair(dir, "ok", await leaf(["ok.example.com"]));
    const bad1 = {
      ...pair(dir, "bad1", await leaf(["b1.example.com"])),
      keyPath: join(dir, "none.key"),
    };
    const expired = await inter.leaf({
      dns: ["old.example.com"],
      notBefore: new Date(Date.now() - 10 * DAYS),
      notAfter: new Date(Date.now() - DAYS),
    });
    const bad2 = pair(dir, "bad2", expired);
    let err: unknown;
    try {
      store([ok, bad1, bad2]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CertificateError);
    expect((err as CertificateError).file).toBe(join(dir, "none.key"));
    expect((err as CertificateError).reason).toBe("no such file");
  });

  it("throws for a folder that does not exist, and for a folder without pairs", () => {
    expect(() => store([{ kind: "dir", dir: join(dir, "absent") }])).toThrow(
      `${join(dir, "absent")}: no such folder`,
    );
    mkdirSync(join(dir, "empty"));
    expect(() => store([{ kind: "dir", dir: join(dir, "empty") }])).toThrow(/no certificate found/);
  });

  it("logs the warnings of the certificates it loads", async () => {
    const c = await leaf(["w.example.com"]);
    const p = writeTlsFiles(dir, { "w.crt": c.certPem, "w.key": c.keyPem() });
    const { logs } = store([{ kind: "files", certPath: p["w.crt"]!, keyPath: p["w.key"]! }]);
    expect(logs).toEqual([
      {
        level: "warn",
        message: expect.stringMatching(/Lintel Test Intermediate/),
        fields: { file: p["w.crt"] },
      },
    ]);
  });
});

describe("folders", () => {
  it("finds X.crt+X.key, X.pem+X.key and certbot's fullchain.pem+privkey.pem, ignoring the unpaired", async () => {
    const a = await leaf(["a.example.com"]);
    const b = await leaf(["b.example.com"]);
    const c = await leaf(["c.example.com"]);
    const orphan = await leaf(["orphan.example.com"]);
    pair(dir, "a", a, "crt");
    pair(dir, "b", b, "pem");
    writeTlsFiles(dir, {
      "live/c.example.com/fullchain.pem": chain(c),
      "live/c.example.com/privkey.pem": c.keyPem(),
      "live/c.example.com/cert.pem": c.certPem,
      "live/c.example.com/chain.pem": inter.certPem,
      "orphan.crt": chain(orphan),
      "lonely.key": orphan.keyPem(),
      "notes.txt": "not a certificate",
    });
    const { store: s } = store([{ kind: "dir", dir }]);
    const set = s.current;
    expect([...set.names.keys()].sort()).toEqual(["a.example.com", "b.example.com"]);
    expect(set.defaultCert.names).toEqual(["a.example.com"]);

    const live = store([{ kind: "dir", dir: join(dir, "live") }]).store.current;
    expect([...live.names.keys()]).toEqual(["c.example.com"]);
    expect(live.defaultCert.files.certPath).toBe(join(dir, "live/c.example.com/fullchain.pem"));
    expect(pairsInDir(join(dir, "live/c.example.com"))).toEqual([
      {
        certPath: join(dir, "live/c.example.com/fullchain.pem"),
        keyPath: join(dir, "live/c.example.com/privkey.pem"),
      },
    ]);
  });

  it("picks up a pair added to a folder and drops a pair removed from it", async () => {
    pair(dir, "a", await leaf(["a.example.com"]));
    const { store: s, logs } = store([{ kind: "dir", dir }]);
    const seen: CertificateSet[] = [];
    s.onChange((set) => seen.push(set));
    expect(s.check()).toBe(false);

    const b = await leaf(["b.example.com"]);
    pair(dir, "b", b);
    expect(s.check()).toBe(true);
    expect(serial(s.current, "b.example.com")).toBe(b.serial);
    expect(seen).toHaveLength(1);
    expect(logs.some((l) => l.message === "certificate added")).toBe(true);

    unlinkSync(join(dir, "b.crt"));
    unlinkSync(join(dir, "b.key"));
    expect(s.check()).toBe(true);
    expect(s.current.match("b.example.com")).toBeUndefined();
    expect(s.current.match("a.example.com")).toBeDefined();
    expect(seen).toHaveLength(2);
    expect(logs.some((l) => l.message === "certificate removed")).toBe(true);
  });

  it("follows a certbot renewal (the live/ symlinks move to new archive files)", async () => {
    const one = await leaf(["c.example.com"]);
    const two = await leaf(["c.example.com"]);
    writeTlsFiles(dir, {
      "archive/c/fullchain1.pem": chain(one),
      "archive/c/privkey1.pem": one.keyPem(),
      "archive/c/fullchain2.pem": chain(two),
      "archive/c/privkey2.pem": two.keyPem(),
    });
    const live = join(dir, "live/c");
    mkdirSync(live, { recursive: true });
    symlinkSync("../../archive/c/fullchain1.pem", join(live, "fullchain.pem"));
    symlinkSync("../../archive/c/privkey1.pem", join(live, "privkey.pem"));
    const { store: s } = store([{ kind: "dir", dir: join(dir, "live") }]);
    expect(serial(s.current, "c.example.com")).toBe(one.serial);
    // certbot replaces each symlink with a rename.
    for (const f of ["fullchain", "privkey"]) {
      symlinkSync(`../../archive/c/${f}2.pem`, join(live, `${f}.new`));
      renameSync(join(live, `${f}.new`), join(live, `${f}.pem`));
    }
    expect(s.check()).toBe(true);
    expect(serial(s.current, "c.example.com")).toBe(two.serial);
  });
});

describe("reloading", () => {
  it("serves a replaced certificate after check(), and tells the listeners", async () => {
    const old = await leaf(["app.example.com"]);
    const src = pair(dir, "app", old);
    const { store: s, logs } = store([src]);
    const before = s.current;
    const seen: CertificateSet[] = [];
    s.onChange((set) => seen.push(set));

    const renewed = await leaf(["app.example.com"]);
    await rewrite({ [src.certPath]: chain(renewed), [src.keyPath]: renewed.keyPem() });
    expect(s.check()).toBe(true);
    expect(serial(s.current, "app.example.com")).toBe(renewed.serial);
    expect(s.current.fingerprint).not.toBe(before.fingerprint);
    expect(s.current.defaultCert.fingerprint).not.toBe(before.defaultCert.fingerprint);
    expect(seen).toEqual([s.current]);
    expect(logs.find((l) => l.message === "certificate reloaded")?.fields).toMatchObject({
      file: src.certPath,
      names: "app.example.com",
    });
    // Nothing changed since: no reload, no call.
    expect(s.check()).toBe(false);
    expect(seen).toHaveLength(1);
  });

  it("reloads a certificate renewed with the same key (only the certificate file changes)", async () => {
    const old = await leaf(["app.example.com"]);
    const src = pair(dir, "app", old);
    const { store: s } = store([src]);
    const renewed = await leaf(["app.example.com"], old.keys);
    await rewrite({ [src.certPath]: chain(renewed) });
    expect(s.check()).toBe(true);
    expect(serial(s.current, "app.example.com")).toBe(renewed.serial);
  });

  it("keeps the old certificate serving while the new certificate waits for its key", async () => {
    const old = await leaf(["app.example.com"]);
    const src = pair(dir, "app", old);
    const { store: s, logs } = store([src]);
    const renewed = await leaf(["app.example.com"]);
    await rewrite({ [src.certPath]: chain(renewed) });
    expect(s.check()).toBe(false);
    expect(serial(s.current, "app.example.com")).toBe(old.serial);
    expect(logs.filter((l) => l.level === "error")).toHaveLength(1);
    await rewrite({ [src.keyPath]: renewed.keyPem() });
    expect(s.check()).toBe(true);
    expect(serial(s.current, "app.example.com")).toBe(renewed.serial);
  });

  it("keeps the old certificate serving when the replacement is garbled, and logs an error", async () => {
    const old = await leaf(["app.example.com"]);
    const src = pair(dir, "app", old);
    const other = pair(dir, "other", await leaf(["other.example.com"]));
    const { store: s, logs } = store([src, other]);
    const seen: CertificateSet[] = [];
    s.onChange((set) => seen.push(set));
    const before = s.current.fingerprint;

    await rewrite({
      [src.certPath]: "-----BEGIN CERTIFICATE-----\nZ2FyYmxlZA==\n-----END CERTIFICATE-----\n",
    });
    expect(s.check()).toBe(false);
    expect(s.current.fingerprint).toBe(before);
    expect(serial(s.current, "app.example.com")).toBe(old.serial);
    expect(seen).toHaveLength(0);
    const errors = logs.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/previous one keeps serving/);
    expect(String(errors[0]!.fields?.error)).toContain(
      `${src.certPath}: certificate 1 in the file is not valid`,
    );
    // Not logged again while the file stays as it is.
    expect(s.check()).toBe(false);
    expect(logs.filter((l) => l.level === "error")).toHaveLength(1);

    // A good file later is picked up.
    const fixed = await leaf(["app.example.com"]);
    await rewrite({ [src.certPath]: chain(fixed), [src.keyPath]: fixed.keyPem() });
    expect(s.check()).toBe(true);
    expect(serial(s.current, "app.example.com")).toBe(fixed.serial);
  });

  it("keeps a configured certificate serving when its files vanish", async () => {
    const c = await leaf(["app.example.com"]);
    const src = pair(dir, "app", c);
    const { store: s, logs } = store([src]);
    unlinkSync(src.certPath);
    expect(s.check()).toBe(false);
    expect(serial(s.current, "app.example.com")).toBe(c.serial);
    expect(
      logs.some((l) => l.level === "error" && String(l.fields?.error).includes("no such file")),
    ).toBe(true);
  });

  it("start() picks up a change by itself (file events or the periodic check)", async () => {
    const old = await leaf(["app.example.com"]);
    const src = pair(dir, "app", old);
    const { store: s } = store([src], { checkIntervalMs: 100 });
    const changed = new Promise<CertificateSet>((resolve) => s.onChange(resolve));
    s.start();
    const renewed = await leaf(["app.example.com"]);
    await rewrite({ [src.certPath]: chain(renewed), [src.keyPath]: renewed.keyPem() });
    const set = await Promise.race([changed, sleep(2500).then(() => undefined)]);
    expect(set, "no reload within 2.5 s").toBeDefined();
    expect(serial(s.current, "app.example.com")).toBe(renewed.serial);
    s.stop();
  });

  it("start() with a long interval still reloads on file-system events", async () => {
    const old = await leaf(["app.example.com"]);
    const src = pair(dir, "app", old);
    const { store: s } = store([src], { checkIntervalMs: 60_000 });
    s.start();
    const renewed = await leaf(["app.example.com"]);
    await rewrite({ [src.certPath]: chain(renewed), [src.keyPath]: renewed.keyPem() });
    const end = Date.now() + 2500;
    while (serial(s.current, "app.example.com") !== renewed.serial && Date.now() < end)
      await sleep(20);
    expect(serial(s.current, "app.example.com")).toBe(renewed.serial);
  });

  it("after stop() nothing reloads", async () => {
    const old = await leaf(["app.example.com"]);
    const src = pair(dir, "app", old);
    const { store: s } = store([src], { checkIntervalMs: 100 });
    s.start();
    s.stop();
    const renewed = await leaf(["app.example.com"]);
    await rewrite({ [src.certPath]: chain(renewed), [src.keyPath]: renewed.keyPem() });
    await sleep(500);
    expect(serial(s.current, "app.example.com")).toBe(old.serial);
  });
});

describe("passphrases", () => {
  it("reads the passphrase from passphraseFile (one trailing newline removed)", async () => {
    const c = await leaf(["enc.example.com"]);
    const p = writeTlsFiles(dir, {
      "enc.crt": chain(c),
      "enc.key": c.keyPem("pkcs8-enc", "file pass"),
      "pass.txt": "file pass\n",
    });
    const { store: s } = store([
      {
        kind: "files",
        certPath: p["enc.crt"]!,
        keyPath: p["enc.key"]!,
        passphraseFile: p["pass.txt"],
      },
    ]);
    expect(serial(s.current, "enc.example.com")).toBe(c.serial);
    expect(s.current.defaultCert.files.passphrase).toBe("file pass");
  });

  it("reads the passphrase from passphraseEnv, in the store's environment", async () => {
    const c = await leaf(["enc.example.com"]);
    const p = writeTlsFiles(dir, {
      "enc.crt": chain(c),
      "enc.key": c.keyPem("sec1-enc", "env pass"),
    });
    const src = {
      kind: "files" as const,
      certPath: p["enc.crt"]!,
      keyPath: p["enc.key"]!,
      passphraseEnv: "TLS_PASS",
    };
    const { store: s } = store([src], { env: { TLS_PASS: "env pass" } });
    expect(serial(s.current, "enc.example.com")).toBe(c.serial);
    expect(() => store([src], { env: {} })).toThrow(
      "$TLS_PASS: the passphrase environment variable is not set",
    );
    expect(() => store([src], { env: { TLS_PASS: "nope" } })).toThrow(/wrong passphrase/);
  });

  it("names an unreadable passphrase file", async () => {
    const c = await leaf(["enc.example.com"]);
    const p = writeTlsFiles(dir, { "enc.crt": chain(c), "enc.key": c.keyPem("pkcs8-enc", "x") });
    const missing = join(dir, "missing-pass.txt");
    expect(() =>
      store([
        { kind: "files", certPath: p["enc.crt"]!, keyPath: p["enc.key"]!, passphraseFile: missing },
      ]),
    ).toThrow(`${missing}: cannot read the passphrase file (ENOENT)`);
  });

  it("applies a folder's passphrase to every pair in it", async () => {
    const a = await leaf(["a.example.com"]);
    const b = await leaf(["b.example.com"]);
    const certs = join(dir, "certs");
    writeTlsFiles(certs, {
      "a.crt": chain(a),
      "a.key": a.keyPem("pkcs8-enc", "dir pass"),
      "b.crt": chain(b),
      "b.key": b.keyPem("sec1-enc", "dir pass"),
    });
    const p = writeTlsFiles(dir, { "pass.txt": "dir pass" });
    const { store: s } = store([{ kind: "dir", dir: certs, passphraseFile: p["pass.txt"] }]);
    expect([...s.current.names.keys()].sort()).toEqual(["a.example.com", "b.example.com"]);
  });

  it("keeps a folder's certificates serving when its passphrase file is briefly unreadable", async () => {
    const a = await leaf(["a.example.com"]);
    const certs = join(dir, "certs");
    writeTlsFiles(certs, { "a.crt": chain(a), "a.key": a.keyPem("pkcs8-enc", "pw") });
    const p = writeTlsFiles(dir, { "pass.txt": "pw" });
    const fallback = pair(dir, "fallback", await leaf(["fallback.example.com"]));
    const { store: s, logs } = store([
      fallback,
      { kind: "dir", dir: certs, passphraseFile: p["pass.txt"] },
    ]);
    unlinkSync(p["pass.txt"]!);
    s.check();
    expect(logs.some((l) => /previous certificates keep serving/.test(l.message))).toBe(true);
    expect(serial(s.current, "a.example.com")).toBe(a.serial);
  });

  it("keeps the default certificate the default when its passphrase file is briefly unreadable", async () => {
    const d = await leaf(["default.example.com"]);
    const p = writeTlsFiles(dir, {
      "d.crt": chain(d),
      "d.key": d.keyPem("pkcs8-enc", "pw"),
      "pass.txt": "pw",
    });
    const other = pair(dir, "other", await leaf(["other.example.com"]));
    const { store: s } = store([
      { kind: "files", certPath: p["d.crt"]!, keyPath: p["d.key"]!, passphraseFile: p["pass.txt"] },
      other,
    ]);
    expect(s.current.defaultCert.leaf.serialNumber).toBe(d.serial);
    unlinkSync(p["pass.txt"]!);
    s.check();
    expect(s.current.defaultCert.leaf.serialNumber).toBe(d.serial);
  });
});
