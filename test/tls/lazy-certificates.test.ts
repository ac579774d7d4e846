// Many certificates in a folder: indexed at startup without their keys, read and checked
// on a name's first handshake (a bad key then serves the default certificate, logged once
// and counted), TLS contexts kept in a bounded LRU, and a file-system change reloading
// only the pair it names. Real TLS handshakes through the net engine's TlsServers.

import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import type { AddressInfo, Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer as createTlsServer, type TLSSocket } from "node:tls";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../gateway/log.js";
import { connectionFront, TlsServers } from "../../gateway/server/connection-front.js";
import type { ListenerTls } from "../../gateway/server/tls-listener.js";
import { CertificateStore } from "../../tls/certificate-store.js";
import { firstCertificateDer, summarizeCertificate } from "../../tls/der-summary.js";
import type { TlsLog } from "../../tls/errors.js";
import { LazyCertificate } from "../../tls/lazy-certificate.js";
import { certificateNames } from "../../tls/names.js";
import { type Issued, type KeyPair, newKeys, TestCa } from "./test-ca.js";

let ca: TestCa;
let keys: KeyPair;
let dir: string;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  ca = await TestCa.root("Lazy Test Root");
  keys = await newKeys("ec");
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lintel-lazy-"));
});

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  rmSync(dir, { recursive: true, force: true });
});

const leaf = (name: string, shared = true) =>
  ca.leaf({ dns: [name], keys: shared ? keys : undefined });

function writePair(name: string, c: Issued, key = c.keyPem()): void {
  writeFileSync(join(dir, `${name}.crt`), c.certPem);
  writeFileSync(join(dir, `${name}.key`), key);
}

/** Writes certificates h0 … h<n-1> for h<i>.lazy.test; returns them. */
async function writeFolder(n: number): Promise<Issued[]> {
  const out: Issued[] = [];
  for (let i = 0; i < n; i++) {
    const c = await leaf(`h${i}.lazy.test`);
    writePair(`h${String(i).padStart(5, "0")}`, c);
    out.push(c);
  }
  return out;
}

function newStore(): { store: CertificateStore; logs: Parameters<TlsLog>[] } {
  const logs: Parameters<TlsLog>[] = [];
  const store = new CertificateStore(
    { sources: [{ kind: "dir", dir }], checkIntervalMs: 60_000 },
    (...a) => logs.push(a),
  );
  cleanups.push(() => store.stop());
  return { store, logs };
}

/** A TLS listener over the store, as the net engine makes it, echoing what clients send. */
async function listen(
  store: CertificateStore,
  contextCacheSize?: number,
): Promise<{ port: number; servers: TlsServers<ReturnType<typeof createTlsServer>> }> {
  const tls: ListenerTls = {
    store,
    strictSni: false,
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.3",
    ciphers: undefined,
    clientCa: undefined,
    requireClientAuth: false,
    log: silentLogger,
    contextCacheSize,
  };
  const servers = new TlsServers(tls, (o) => {
    const s = createTlsServer(o);
    s.on("secureConnection", (socket: TLSSocket) => socket.pipe(socket));
    return s;
  });
  const front: NetServer = connectionFront({ tls: servers }, undefined);
  const sockets = new Set<import("node:net").Socket>();
  front.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    front.close();
  });
  return { port: (front.address() as AddressInfo).port, servers };
}

/** Connects with SNI `name`; the serial of the certificate presented, and the socket. */
function handshake(port: number, name: string): Promise<{ serial: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      servername: name,
      rejectUnauthorized: false,
    });
    socket.once("secureConnect", () =>
      resolve({ serial: socket.getPeerCertificate().serialNumber, socket }),
    );
    socket.once("error", reject);
    cleanups.push(() => socket.destroy());
  });
}

async function serialFor(port: number, name: string): Promise<string> {
  const { serial, socket } = await handshake(port, name);
  socket.destroy();
  return serial;
}

function echo(socket: TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once("data", (d: Buffer) => resolve(d.toString()));
    socket.once("error", reject);
    socket.write(text);
  });
}

/** Resolves at the store's next change. */
const nextChange = (store: CertificateStore) =>
  new Promise<void>((resolve) => {
    const off = store.onChange(() => {
      off();
      resolve();
    });
  });

describe("reading a certificate's summary without OpenSSL", () => {
  it("agrees with X509Certificate on names, dates, issuer and serial", async () => {
    const inter = await ca.intermediate("Lazy Test Intermediate", "rsa");
    const certs = [
      await ca.leaf({ dns: ["a.example.com", "*.Example.com"] }),
      await ca.leaf({ cn: "only-cn.example.com" }),
      await inter.leaf({ dns: ["rsa.example.com"], alg: "rsa" }),
      await (await TestCa.root("x", "ec", "C=DE, O=Lintel, OU=Edge, CN=Org Root")).leaf({
        dns: ["org.example.com"],
      }),
    ];
    for (const c of certs) {
      const s = summarizeCertificate(firstCertificateDer(c.certPem)!)!;
      const x = new X509Certificate(c.certPem);
      expect(s).toBeDefined();
      expect(s.names).toEqual(certificateNames(x));
      expect(s.issuer).toBe(x.issuer);
      expect(s.serialNumber).toBe(x.serialNumber);
      expect(s.notBefore.getTime()).toBe(new Date(x.validFrom).getTime());
      expect(s.notAfter.getTime()).toBe(new Date(x.validTo).getTime());
    }
  });
});

describe("a folder of certificates", () => {
  it("indexes certificates at startup and reads one on its name's first handshake", async () => {
    const certs = await writeFolder(20);
    const { store } = newStore();
    // The default (the folder's first pair) is loaded in full; the others only indexed.
    expect(store.counters).toMatchObject({ indexed: 19, loaded: 0 });
    expect(store.current.match("h7.lazy.test")).toBeInstanceOf(LazyCertificate);
    const { port } = await listen(store);

    expect(await serialFor(port, "h7.lazy.test")).toBe(certs[7]!.serial);
    expect(store.counters).toMatchObject({ loaded: 1, contextsBuilt: 1 });
    expect(await serialFor(port, "H7.Lazy.Test")).toBe(certs[7]!.serial);
    expect(await serialFor(port, "h13.lazy.test")).toBe(certs[13]!.serial);
    expect(store.counters).toMatchObject({ loaded: 2, contextsBuilt: 2, failed: 0 });
  });

  it("serves the default for a name whose key turns out bad, logs it once, counts it and shows it", async () => {
    const certs = await writeFolder(3);
    const other = await newKeys("ec");
    const bad = await ca.leaf({ dns: ["bad.lazy.test"] });
    // A key that does not match the certificate: a folder is not read in full at startup.
    writePair("zz-bad", bad, (await ca.leaf({ dns: ["x"], keys: other })).keyPem());
    const { store, logs } = newStore();
    const { port } = await listen(store);

    for (let i = 0; i < 3; i++)
      expect(await serialFor(port, "bad.lazy.test")).toBe(certs[0]!.serial);
    const failures = logs.filter(
      ([level, message]) => level === "error" && /cannot be served/.test(message),
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]![2]).toMatchObject({
      file: join(dir, "zz-bad.key"),
      names: "bad.lazy.test",
    });
    expect(store.counters.failed).toBe(1);
    const shown = store.certificates().find((c) => c.cert.names.includes("bad.lazy.test"));
    expect(shown?.cert).toBeInstanceOf(LazyCertificate);
    expect((shown!.cert as LazyCertificate).error).toMatch(/zz-bad\.key: the key does not match/);
    // The other names still serve.
    expect(await serialFor(port, "h1.lazy.test")).toBe(certs[1]!.serial);
  });

  it("keeps a connection open on a removed certificate; new handshakes no longer get it", async () => {
    const certs = await writeFolder(5);
    const { store } = newStore();
    store.start();
    const { port } = await listen(store);
    const open = await handshake(port, "h3.lazy.test");
    expect(open.serial).toBe(certs[3]!.serial);
    expect(await echo(open.socket, "before")).toBe("before");

    const changed = nextChange(store);
    unlinkSync(join(dir, "h00003.crt"));
    unlinkSync(join(dir, "h00003.key"));
    await changed;
    expect(store.current.match("h3.lazy.test")).toBeUndefined();
    expect(await serialFor(port, "h3.lazy.test")).toBe(certs[0]!.serial);
    expect(await echo(open.socket, "after")).toBe("after");
  });

  it("reloads only the pair a change names, however many the folder holds", async () => {
    const certs = await writeFolder(200);
    const { store, logs } = newStore();
    store.start();
    const { port } = await listen(store);
    expect(await serialFor(port, "h50.lazy.test")).toBe(certs[50]!.serial);
    const untouched = store.current.match("h50.lazy.test");
    const before = { ...store.counters };

    const renewed = await leaf("h120.lazy.test");
    const changed = nextChange(store);
    writePair("h00120", renewed);
    await changed;

    // One certificate read and checked, nothing indexed again, no context rebuilt.
    expect(store.counters.loaded - before.loaded).toBe(1);
    expect(store.counters.indexed).toBe(before.indexed);
    expect(store.current.match("h50.lazy.test")).toBe(untouched);
    expect(await serialFor(port, "h50.lazy.test")).toBe(certs[50]!.serial);
    expect(store.counters.contextsBuilt).toBe(before.contextsBuilt);
    expect(await serialFor(port, "h120.lazy.test")).toBe(renewed.serial);
    expect(logs.filter(([, m]) => m === "certificate reloaded")).toHaveLength(1);

    // A pair added, placed by the paths an event names (without a look at the others).
    const added = await leaf("new.lazy.test");
    writePair("new", added);
    expect(store.checkPaths(new Set([join(dir, "new.crt"), join(dir, "new.key")]))).toBe(true);
    expect(await serialFor(port, "new.lazy.test")).toBe(added.serial);
    expect(store.counters.loaded - before.loaded).toBe(2);
    expect(store.current.names.size).toBe(201);
    // A path it cannot place (an event without a name) is left to the full check.
    expect(store.checkPaths(new Set([""]))).toBe(false);
  });

  it("keeps at most contextCacheSize TLS contexts, dropping the least recently used, and counts evictions", async () => {
    const certs = await writeFolder(6);
    const { store } = newStore();
    const { port, servers } = await listen(store, 3);
    for (const i of [1, 2, 3]) await serialFor(port, `h${i}.lazy.test`);
    expect(servers.cached).toBe(3);
    expect(store.counters.contextsEvicted).toBe(0);
    await serialFor(port, "h1.lazy.test"); // most recent again: h2 is now the oldest
    expect(await serialFor(port, "h4.lazy.test")).toBe(certs[4]!.serial);
    expect(servers.cached).toBe(3);
    expect(store.counters).toMatchObject({ contextsBuilt: 4, contextsEvicted: 1 });
    await serialFor(port, "h1.lazy.test"); // still cached
    expect(store.counters.contextsBuilt).toBe(4);
    expect(await serialFor(port, "h2.lazy.test")).toBe(certs[2]!.serial); // evicted: built again
    expect(store.counters).toMatchObject({ contextsBuilt: 5, contextsEvicted: 2 });
  });

  it("starts on 2,000 certificates without reading their keys, in well under the time loading them takes", async () => {
    await writeFolder(2000);
    const t0 = performance.now();
    const { store } = newStore();
    const ms = performance.now() - t0;
    expect(store.current.names.size).toBe(2000);
    expect(store.counters).toMatchObject({ indexed: 1999, loaded: 0 });
    // Reading and checking every key took about 3.5 s here; indexing takes about 0.1 s.
    expect(ms).toBeLessThan(2000);
  }, 120_000);
});
