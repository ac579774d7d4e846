// The dir ACME storage: the conformance suite on a temp folder per test, then what only a
// folder shared by processes shows: a lock held by another process (respected, and taken
// over once that process is killed and the TTL passes), atomic stores, stale lock files.

import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { DirStorage, dirStorage } from "../../gateway/acme/dir-storage.js";
import { systemClock } from "../../gateway/clock.js";
import { silentLogger } from "../../gateway/log.js";
import type { AcmeStorage } from "../../tls/acme/storage.js";
import { decode, decodeIssues, problemText } from "../namers/helpers.js";
import { noServices } from "../support/plugin-services.js";
import { storageConformance } from "./storage-conformance.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "lintel-acme-dir-"));
  dirs.push(d);
  return d;
}

function openDir(path: string): AcmeStorage {
  return dirStorage.create({ path }, { ...noServices, log: silentLogger });
}

storageConformance("dir", () => {
  const path = tempDir();
  return { open: async () => openDir(path), shortTtlMs: 300 };
});

describe("dir storage: files", () => {
  it("keeps keys as files, private: folders 0700, files 0600", async () => {
    const root = tempDir();
    const s = openDir(root);
    await s.store("accounts/ca/key.pem", Buffer.from("secret"));
    expect(readFileSync(join(root, "accounts/ca/key.pem"), "utf8")).toBe("secret");
    expect(statSync(join(root, "accounts/ca/key.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, "accounts/ca")).mode & 0o777).toBe(0o700);
    expect(statSync(join(root, "accounts")).mode & 0o777).toBe(0o700);
    expect(s.description).toBe(`dir ${root}`);
  });

  it("stores atomically: a reader never sees part of a value being rewritten", async () => {
    const root = tempDir();
    const writer = openDir(root);
    const reader = openDir(root);
    const size = 4 << 20;
    const values = [Buffer.alloc(size, "a"), Buffer.alloc(size, "b")];
    await writer.store("certs/ca/big.example.com/cert.pem", values[0]!);
    let writing = true;
    const writes = (async () => {
      for (let i = 1; i <= 30; i++)
        await writer.store("certs/ca/big.example.com/cert.pem", values[i % 2]!);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const v = await reader.load("certs/ca/big.example.com/cert.pem");
      expect(v !== undefined && (v.equals(values[0]!) || v.equals(values[1]!))).toBe(true);
      reads++;
    }
    await writes;
    expect(reads).toBeGreaterThan(3);
    // No temp file is left behind, and none would be listed.
    expect(readdirSync(join(root, "certs/ca/big.example.com"))).toEqual(["cert.pem"]);
  });

  it("lists only keys, not temp files left by a crash", async () => {
    const root = tempDir();
    const s = openDir(root);
    await s.store("certs/ca/a.example.com/cert.pem", Buffer.from("a"));
    writeFileSync(join(root, "certs/ca/a.example.com/cert.pem~0123456789abcdef.tmp"), "half");
    expect(await s.list("certs")).toEqual(["certs/ca/a.example.com/cert.pem"]);
  });

  it("keeps locks/ for its locks: keys may not start with it", async () => {
    const s = openDir(tempDir());
    await expect(s.store("locks/x.lock", Buffer.from("x"))).rejects.toThrow(
      /invalid ACME storage key "locks\/x.lock": the dir storage keeps its locks under locks\//,
    );
    await expect(s.tryLock("a/b", 1000)).rejects.toThrow(/invalid ACME lock name "a\/b"/);
  });
});

describe("dir storage: locks held by other processes", () => {
  const moduleUrl = (p: string) => new URL(`../../dist/gateway/${p}`, import.meta.url).href;

  beforeAll(() => {
    // The children import the built module (the test command builds before vitest).
    const built = fileURLToPath(moduleUrl("acme/dir-storage.js"));
    if (!statSync(built, { throwIfNoEntry: false })) {
      throw new Error(`${built} is missing: run \`npm run -s build\` first`);
    }
  });

  /**
   * A node process trying lock `name` in `root` and, when it gets it, refreshing it every
   * ttl/5 until killed: the process, and the line it printed ("locked" or "busy").
   */
  async function holdInChild(
    root: string,
    name: string,
    ttlMs: number,
  ): Promise<{ child: ChildProcess; said: string }> {
    const code = `
      import { dirStorage } from ${JSON.stringify(moduleUrl("acme/dir-storage.js"))};
      import { systemClock } from ${JSON.stringify(moduleUrl("clock.js"))};
      import { silentLogger } from ${JSON.stringify(moduleUrl("log.js"))};
      const s = dirStorage.create({ path: process.env.LOCK_ROOT }, {
        log: silentLogger, clock: systemClock, random: Math.random, kube: () => { throw new Error("no kube"); },
      });
      const ttl = Number(process.env.LOCK_TTL_MS);
      const lock = await s.tryLock(process.env.LOCK_NAME, ttl);
      if (!lock) { console.log("busy"); process.exit(0); }
      setInterval(() => lock.refresh(), ttl / 5);
      console.log("locked");
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
      env: { ...process.env, LOCK_ROOT: root, LOCK_NAME: name, LOCK_TTL_MS: String(ttlMs) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    const said = await new Promise<string>((resolve, reject) => {
      child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
      child.once("exit", (c) => reject(new Error(`the lock holder exited (${c}) saying nothing`)));
    });
    return { child, said };
  }

  it("respects a live holder's lock, and takes it over once that holder is killed and its TTL passes", async () => {
    const root = tempDir();
    const ttlMs = 400;
    const { child, said } = await holdInChild(root, "proc.example.com", ttlMs);
    expect(said).toBe("locked");
    const held = JSON.parse(readFileSync(join(root, "locks/proc.example.com.lock"), "utf8"));
    expect(held.holder).toMatch(new RegExp(`:${child.pid}$`));

    const s = openDir(root);
    expect(await s.tryLock("proc.example.com", ttlMs)).toBeUndefined();
    await sleep(ttlMs * 2); // the child keeps refreshing: still held
    expect(await s.tryLock("proc.example.com", ttlMs)).toBeUndefined();

    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
    expect(await s.tryLock("proc.example.com", ttlMs)).toBeUndefined(); // its TTL runs on
    await sleep(ttlMs + 100);
    const lock = await s.tryLock("proc.example.com", ttlMs);
    expect(lock).toBeDefined();
    expect(
      JSON.parse(readFileSync(join(root, "locks/proc.example.com.lock"), "utf8")).holder,
    ).toMatch(new RegExp(`:${process.pid}$`));
    await lock!.release();
  });

  it("lets exactly one of many processes racing for a free lock win", async () => {
    const root = tempDir();
    const holders = await Promise.all(
      Array.from({ length: 4 }, () => holdInChild(root, "race.example.com", 5000)),
    );
    expect(holders.map((h) => h.said).sort()).toEqual(["busy", "busy", "busy", "locked"]);
  });
});

describe("dir storage: stale lock files", () => {
  const lockFile = (root: string, name: string) => join(root, "locks", `${name}.lock`);

  function writeLockFile(root: string, name: string, content: string, ageMs: number): void {
    mkdirSync(join(root, "locks"), { recursive: true });
    writeFileSync(lockFile(root, name), content);
    const t = (Date.now() - ageMs) / 1000;
    utimesSync(lockFile(root, name), t, t);
  }

  it("takes over a garbled lock file only once it is older than the TTL", async () => {
    const root = tempDir();
    const s = openDir(root);
    writeLockFile(root, "garbled.example.com", '{"tok', 0); // as if being written right now
    expect(await s.tryLock("garbled.example.com", 1000)).toBeUndefined();
    writeLockFile(root, "garbled.example.com", '{"tok', 2000); // its writer died
    const lock = await s.tryLock("garbled.example.com", 1000);
    expect(lock).toBeDefined();
    await lock!.release();
    expect(readdirSync(join(root, "locks"))).toEqual([]); // released, claims removed
  });

  it("waits for a takeover under way, and steps past one its process abandoned", async () => {
    const root = tempDir();
    const s = openDir(root);
    const stale = JSON.stringify({ token: "t", holder: "gone:1", expiresAt: Date.now() - 1000 });
    writeLockFile(root, "claimed.example.com", stale, 5000);
    // The claim on that content, as a process changing it leaves it (see dir-storage.ts).
    const sha = createHash("sha256").update(stale).digest("hex").slice(0, 32);
    const claim = `${lockFile(root, "claimed.example.com")}~${sha}~0`;
    writeFileSync(claim, "other:2\n");
    expect(await s.tryLock("claimed.example.com", 1000)).toBeUndefined();
    const t = (Date.now() - 60_000) / 1000;
    utimesSync(claim, t, t);
    const lock = await s.tryLock("claimed.example.com", 1000);
    expect(lock).toBeDefined();
    await lock!.release();
  });

  it("refreshes and releases only its own lock, whatever the file holds now", async () => {
    const root = tempDir();
    const a = new DirStorage(root, systemClock, silentLogger);
    const lock = await a.tryLock("mine.example.com", 30_000);
    expect(await lock!.refresh()).toBe(true);
    const other = JSON.stringify({ token: "x", holder: "other:3", expiresAt: Date.now() + 30_000 });
    writeLockFile(root, "mine.example.com", other, 0);
    expect(await lock!.refresh()).toBe(false);
    await lock!.release();
    expect(readFileSync(lockFile(root, "mine.example.com"), "utf8")).toBe(other);
  });
});

describe("dir storage: config", () => {
  it("needs a path", () => {
    expect(decodeIssues(dirStorage, {})).toEqual(["path: missing (expected a folder)"]);
    expect(decodeIssues(dirStorage, { path: 7 })).toEqual(["path: expected a folder, got 7"]);
    expect(decodeIssues(dirStorage, { path: "/x", pth: "/y" })).toEqual([
      'pth: unknown key (did you mean "path"?)',
    ]);
  });

  it("resolves a relative path against the config's folder, and refuses a file", () => {
    const root = tempDir();
    expect(decode(dirStorage, { path: "acme" }, root).path).toBe(join(root, "acme"));
    writeFileSync(join(root, "file"), "");
    const problems = dirStorage.validate!({ path: join(root, "file") }).map(problemText);
    expect(problems).toEqual([`path ${join(root, "file")} exists and is not a folder`]);
    expect(dirStorage.validate!({ path: join(root, "missing") })).toEqual([]);
  });
});
