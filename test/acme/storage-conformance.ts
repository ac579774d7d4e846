// What every ACME storage kind must do, as one suite each kind's test file runs against
// its own storage (dir, redis, kubernetes): values stored whole, keys listed by prefix,
// and a lock that one holder has at a time, that expires, and that only its holder
// releases. `open` gives a fresh handle on the same shared storage, as another replica
// would have; `afterEach` closing is the caller's.

import { describe, expect, it } from "vitest";
import type { AcmeStorage } from "../../tls/acme/storage.js";

export interface StorageUnderTest {
  /** A new handle on the same storage (another replica's view). */
  open(): Promise<AcmeStorage>;
  /** A TTL short enough for the expiry tests, long enough for a slow machine's round trips. */
  readonly shortTtlMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storageConformance(name: string, sut: () => StorageUnderTest): void {
  describe(`${name} storage: values`, () => {
    it("stores, loads, overwrites and deletes", async () => {
      const s = await sut().open();
      expect(await s.load("certs/ca/a.example.com/cert.pem")).toBeUndefined();
      await s.store("certs/ca/a.example.com/cert.pem", Buffer.from("one"));
      expect((await s.load("certs/ca/a.example.com/cert.pem"))?.toString()).toBe("one");
      await s.store("certs/ca/a.example.com/cert.pem", Buffer.from("two"));
      expect((await s.load("certs/ca/a.example.com/cert.pem"))?.toString()).toBe("two");
      await s.delete("certs/ca/a.example.com/cert.pem");
      expect(await s.load("certs/ca/a.example.com/cert.pem")).toBeUndefined();
      await s.delete("certs/ca/a.example.com/cert.pem"); // absent: no error
    });

    it("keeps binary values byte for byte", async () => {
      const s = await sut().open();
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await s.store("accounts/ca/key.der", bytes);
      expect((await s.load("accounts/ca/key.der"))?.equals(bytes)).toBe(true);
    });

    it("lists the keys under a prefix of whole segments", async () => {
      const s = await sut().open();
      await s.store("certs/ca/a.example.com/cert.pem", Buffer.from("a"));
      await s.store("certs/ca/a.example.com/key.pem", Buffer.from("a"));
      await s.store("certs/ca/_wildcard_.example.com/cert.pem", Buffer.from("w"));
      await s.store("certs/ca2/b.example.com/cert.pem", Buffer.from("b"));
      await s.store("challenges/http-01/tok", Buffer.from("t"));
      expect((await s.list("certs/ca")).sort()).toEqual([
        "certs/ca/_wildcard_.example.com/cert.pem",
        "certs/ca/a.example.com/cert.pem",
        "certs/ca/a.example.com/key.pem",
      ]);
      expect(await s.list("nothing/here")).toEqual([]);
    });

    it("shows one replica's writes to another", async () => {
      const u = sut();
      const a = await u.open();
      const b = await u.open();
      await a.store("challenges/http-01/abc", Buffer.from("key-authz"));
      expect((await b.load("challenges/http-01/abc"))?.toString()).toBe("key-authz");
    });

    it("refuses keys that are not plain segments", async () => {
      const s = await sut().open();
      await expect(s.store("../etc/passwd", Buffer.from("x"))).rejects.toThrow(
        /invalid ACME storage key/,
      );
      await expect(s.load("a//b")).rejects.toThrow(/invalid ACME storage key/);
    });
  });

  describe(`${name} storage: the lock`, () => {
    it("is held by one replica at a time, and free again once released", async () => {
      const u = sut();
      const a = await u.open();
      const b = await u.open();
      const la = await a.tryLock("issue-a.example.com", 30_000);
      expect(la).toBeDefined();
      expect(await b.tryLock("issue-a.example.com", 30_000)).toBeUndefined();
      expect(await a.tryLock("issue-a.example.com", 30_000)).toBeUndefined(); // not reentrant
      const other = await b.tryLock("issue-b.example.com", 30_000); // another name: free
      expect(other).toBeDefined();
      await la!.release();
      const lb = await b.tryLock("issue-a.example.com", 30_000);
      expect(lb).toBeDefined();
      await lb!.release();
      await other!.release();
    });

    it("lets exactly one of many replicas racing for it win", async () => {
      const u = sut();
      const replicas = await Promise.all(Array.from({ length: 6 }, () => u.open()));
      const locks = await Promise.all(
        replicas.map((r) => r.tryLock("issue-race.example.com", 30_000)),
      );
      expect(locks.filter((l) => l !== undefined)).toHaveLength(1);
      await locks.find((l) => l !== undefined)!.release();
    });

    it("expires: a holder that stops refreshing loses it to another after its TTL", async () => {
      const u = sut();
      const a = await u.open();
      const b = await u.open();
      const la = await a.tryLock("issue-dead.example.com", u.shortTtlMs);
      expect(la).toBeDefined();
      expect(await b.tryLock("issue-dead.example.com", u.shortTtlMs)).toBeUndefined();
      await sleep(u.shortTtlMs + 200);
      const lb = await b.tryLock("issue-dead.example.com", 30_000);
      expect(lb).toBeDefined();
      // The old holder learns it lost the lock, and its release does not free the new holder's.
      expect(await la!.refresh()).toBe(false);
      await la!.release();
      expect(await a.tryLock("issue-dead.example.com", 30_000)).toBeUndefined();
      await lb!.release();
    });

    it("stays held while its holder refreshes it", async () => {
      const u = sut();
      const a = await u.open();
      const b = await u.open();
      const la = await a.tryLock("issue-live.example.com", u.shortTtlMs);
      for (let i = 0; i < 3; i++) {
        await sleep(u.shortTtlMs / 2);
        expect(await la!.refresh()).toBe(true);
      }
      expect(await b.tryLock("issue-live.example.com", u.shortTtlMs)).toBeUndefined();
      await la!.release();
    });
  });
}
