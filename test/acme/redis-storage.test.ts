// The redis ACME storage against a real redis-server: the conformance suite (a fresh key
// prefix per test on one server per file), then failing fast while Redis is away or hung,
// recovering once it is back, a password from the environment, and config decoding.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { redisStorage } from "../../gateway/acme/redis-storage.js";
import { silentLogger } from "../../gateway/log.js";
import type { AcmeStorage } from "../../tls/acme/storage.js";
import { decode, decodeIssues, problemText } from "../namers/helpers.js";
import { noServices } from "../support/plugin-services.js";
import { type RedisServer, redisServerBinary, startRedis } from "../support/redis.js";
import { storageConformance } from "./storage-conformance.js";

const binary = redisServerBinary("test/acme/redis-storage.test.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const opened: AcmeStorage[] = [];
const servers: RedisServer[] = [];

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close?.();
  for (const s of servers.splice(0)) await s.stop();
});

/** A redis storage from a config block as users write it (defaults applied), closed after the test. */
function openRedis(raw: Record<string, unknown>): AcmeStorage {
  const s = redisStorage.create(decode(redisStorage, raw), { ...noServices, log: silentLogger });
  opened.push(s);
  return s;
}

/** A server of this test's own (stopped after it), for tests that stop or pause it. */
async function ownServer(opts: { port?: number; password?: string } = {}): Promise<RedisServer> {
  const server = await startRedis(binary!, opts);
  servers.push(server);
  return server;
}

describe.skipIf(!binary)("redis storage", () => {
  let shared: RedisServer;
  let prefixes = 0;

  beforeAll(async () => {
    shared = await startRedis(binary!);
  });
  afterAll(async () => {
    await shared?.stop();
  });

  storageConformance("redis", () => {
    const prefix = `lintel:test${++prefixes}`;
    return { open: async () => openRedis({ url: shared.url, prefix }), shortTtlMs: 300 };
  });

  it("describes where it is, without the password", () => {
    const s = openRedis({ url: "redis://:hunter2@127.0.0.1:6390/3", prefix: "p" });
    expect(s.description).toBe("redis 127.0.0.1:6390/3 prefix p");
    expect(openRedis({}).description).toBe("redis 127.0.0.1:6379/0 prefix lintel:acme");
  });

  it("keeps its keys under its prefix, and a prefix's glob characters match only themselves", async () => {
    const a = openRedis({ url: shared.url, prefix: "glob*" });
    const b = openRedis({ url: shared.url, prefix: "globby" });
    await a.store("certs/ca/a.example.com/cert.pem", Buffer.from("a"));
    await b.store("certs/ca/b.example.com/cert.pem", Buffer.from("b"));
    expect(await a.list("certs")).toEqual(["certs/ca/a.example.com/cert.pem"]);
    expect(await b.list("certs")).toEqual(["certs/ca/b.example.com/cert.pem"]);
  });

  it("fails a command fast while Redis is down, and works again once it is back", async () => {
    const server = await ownServer();
    const s = openRedis({ url: server.url, commandTimeoutMs: 500 });
    await s.store("challenges/http-01/tok", Buffer.from("v"));
    await server.stop();

    for (const attempt of [() => s.load("challenges/http-01/tok"), () => s.tryLock("x", 1000)]) {
      const started = Date.now();
      await expect(attempt()).rejects.toThrow(
        new RegExp(
          `ACME storage redis 127.0.0.1:${server.port}/0 prefix lintel:acme: .*not connected`,
        ),
      );
      expect(Date.now() - started).toBeLessThan(500 + 250);
    }

    await ownServer({ port: server.port }); // a restart: empty, no persistence
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        expect(await s.load("challenges/http-01/tok")).toBeUndefined();
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
    await s.store("challenges/http-01/tok", Buffer.from("again"));
    expect((await s.load("challenges/http-01/tok"))?.toString()).toBe("again");
  });

  it("fails a command after commandTimeoutMs when Redis does not answer", async () => {
    const server = await ownServer();
    const s = openRedis({ url: server.url, commandTimeoutMs: 300 });
    await s.store("certs/ca/hung.example.com/cert.pem", Buffer.from("v"));
    process.kill(server.pid, "SIGSTOP"); // the server we started, paused: connected, silent
    try {
      const started = Date.now();
      await expect(s.load("certs/ca/hung.example.com/cert.pem")).rejects.toThrow(
        /GET lintel:acme:certs\/ca\/hung.example.com\/cert.pem: Command timed out/,
      );
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(250);
      expect(took).toBeLessThan(300 + 250);
    } finally {
      process.kill(server.pid, "SIGCONT");
    }
    expect((await s.load("certs/ca/hung.example.com/cert.pem"))?.toString()).toBe("v");
  });

  it("fails the first command within connectTimeoutMs plus commandTimeoutMs when nothing listens", async () => {
    const server = await ownServer();
    await server.stop(); // its port: nothing listens there now
    const s = openRedis({ url: server.url, connectTimeoutMs: 300, commandTimeoutMs: 300 });
    const started = Date.now();
    await expect(s.load("accounts/ca/key.pem")).rejects.toThrow(/not connected \(.*ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(600 + 250);
  });

  it("logs in with the password from passwordEnv", async () => {
    const server = await ownServer({ password: "s3cret-for-test" });
    process.env.LINTEL_TEST_REDIS_PASSWORD = "s3cret-for-test";
    try {
      const config = { url: server.url, passwordEnv: "LINTEL_TEST_REDIS_PASSWORD" };
      expect(redisStorage.validate!(decode(redisStorage, config))).toEqual([]);
      const s = openRedis(config);
      await s.store("accounts/ca/key.pem", Buffer.from("k"));
      expect((await s.load("accounts/ca/key.pem"))?.toString()).toBe("k");
      expect(s.description).not.toContain("s3cret");

      const anonymous = openRedis({ url: server.url });
      await expect(anonymous.load("accounts/ca/key.pem")).rejects.toThrow(/NOAUTH/);
    } finally {
      delete process.env.LINTEL_TEST_REDIS_PASSWORD;
    }
  });
});

describe("redis storage: config", () => {
  it("has defaults for everything", () => {
    expect(decode(redisStorage, {})).toEqual({
      url: "redis://127.0.0.1:6379",
      prefix: "lintel:acme",
      passwordEnv: undefined,
      connectTimeoutMs: 2000,
      commandTimeoutMs: 2000,
    });
  });

  it("says what is wrong with a field", () => {
    expect(decodeIssues(redisStorage, { url: "http://x" })).toEqual([
      "url: expected a redis:// URL such as redis://127.0.0.1:6379/0: expected a redis:// or rediss:// URL, got http://",
    ]);
    expect(decodeIssues(redisStorage, { url: "redis://h/abc" })).toEqual([
      'url: expected a redis:// URL such as redis://127.0.0.1:6379/0: the database "abc" is not a number',
    ]);
    expect(decodeIssues(redisStorage, { commandTimeoutMs: 0, prefix: "" })).toEqual([
      'prefix: expected a key prefix, got ""',
      "commandTimeoutMs: expected an integer of at least 1, got 0",
    ]);
    expect(decodeIssues(redisStorage, { password: "x" })).toEqual(["password: unknown key"]);
  });

  it("needs passwordEnv's variable to be set", () => {
    const config = decode(redisStorage, { passwordEnv: "LINTEL_TEST_NO_SUCH_VARIABLE" });
    expect(redisStorage.validate!(config).map(problemText)).toEqual([
      "passwordEnv the environment variable LINTEL_TEST_NO_SUCH_VARIABLE is not set",
    ]);
  });
});
