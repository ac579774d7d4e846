// The `redis` ACME storage: values are Redis strings under a prefix, listed with SCAN;
// a lock is a `SET NX PX` key holding its holder's token, which only that token refreshes
// or deletes. Commands fail fast while Redis is away; the client reconnects by itself.

import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { type AcmeLock, type AcmeStorage, checkKey, KEY_SEGMENT } from "../../tls/acme/storage.js";
import { def, integer, nonEmptyString, object, opt, refine, string } from "../config/schema.js";
import type { Logger } from "../log.js";
import { definePlugin } from "../plugins/registry.js";

/** Extends the lock's expiry only while it still holds the caller's token. */
const REFRESH_SCRIPT = `if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`;

/** Deletes the lock only while it still holds the caller's token. */
const RELEASE_SCRIPT = `if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`;

/** Reconnect attempts back off to one a second: a restarted Redis is used again within a second. */
const MAX_RECONNECT_DELAY_MS = 1000;

/** Keys asked for per SCAN step: a few round trips for thousands of certificates. */
const SCAN_COUNT = 500;

/** Where a redis:// URL points, without its password: host, port and database. */
function redisAddress(url: string): { host: string; port: number; db: number } {
  const u = new URL(url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new Error(`expected a redis:// or rediss:// URL, got ${u.protocol}//`);
  }
  if (!u.hostname) throw new Error("the URL names no host");
  const db = u.pathname === "" || u.pathname === "/" ? "0" : u.pathname.slice(1);
  if (!/^\d+$/.test(db)) throw new Error(`the database "${db}" is not a number`);
  return { host: u.hostname, port: u.port === "" ? 6379 : Number(u.port), db: Number(db) };
}

const redisUrl = () =>
  refine(string("a redis:// URL"), (v) => {
    try {
      redisAddress(v);
      return undefined;
    } catch (e) {
      return `expected a redis:// URL such as redis://127.0.0.1:6379/0: ${(e as Error).message}`;
    }
  });

/** Escapes Redis glob characters, so that a prefix matches only itself in SCAN MATCH. */
const globLiteral = (s: string) => s.replace(/[*?[\]\\]/g, "\\$&");

export interface RedisStorageOptions {
  readonly url: string;
  readonly prefix: string;
  readonly password: string | undefined;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
}

export class RedisStorage implements AcmeStorage {
  readonly description: string;
  private readonly client: Redis;
  private readonly prefix: string;
  /** The first connection under way (the client connects on first use). */
  private connecting: Promise<void> | undefined;
  /** Why the connection is down, while it is. */
  private lastError: string | undefined;
  /** close() was called: the connection closing is no news. */
  private closed = false;

  constructor(
    opts: RedisStorageOptions,
    private readonly log: Logger,
  ) {
    const { host, port, db } = redisAddress(opts.url);
    this.prefix = opts.prefix;
    this.description = `redis ${host}:${port}/${db} prefix ${opts.prefix}`;
    this.client = new Redis(opts.url, {
      password: opts.password,
      lazyConnect: true,
      connectTimeout: opts.connectTimeoutMs,
      commandTimeout: opts.commandTimeoutMs,
      // A command while Redis is away fails at once instead of waiting in a queue, and one
      // cut off by a lost connection fails instead of being sent again later, when its
      // caller has given up (a late lock SET would hold a lock nobody knows of). The ACME
      // manager retries on its own.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    });
    this.client.on("error", (e: Error) => {
      if (!this.closed) this.down(e.message);
    });
    this.client.on("close", () => {
      // After an error, that error says more than the close it causes.
      if (!this.closed && this.lastError === undefined) this.down("the connection closed");
    });
    this.client.on("ready", () => {
      if (this.lastError !== undefined) {
        this.log.info("ACME storage: Redis reachable again", { storage: this.description });
      }
      this.lastError = undefined;
    });
  }

  async load(key: string): Promise<Buffer | undefined> {
    const k = this.key(key);
    return (await this.run(`GET ${k}`, (c) => c.getBuffer(k))) ?? undefined;
  }

  async store(key: string, value: Buffer): Promise<void> {
    const k = this.key(key);
    await this.run(`SET ${k}`, (c) => c.set(k, value));
  }

  async delete(key: string): Promise<void> {
    const k = this.key(key);
    await this.run(`DEL ${k}`, (c) => c.del(k));
  }

  async list(prefix: string): Promise<string[]> {
    const pattern = `${globLiteral(this.key(prefix))}/*`;
    const strip = this.prefix.length + 1;
    const keys = new Set<string>(); // SCAN may return a key more than once
    let cursor = "0";
    do {
      const [next, batch] = await this.run(`SCAN MATCH ${pattern}`, (c) =>
        c.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT),
      );
      for (const k of batch) keys.add(k.slice(strip));
      cursor = next;
    } while (cursor !== "0");
    return [...keys];
  }

  async tryLock(name: string, ttlMs: number): Promise<AcmeLock | undefined> {
    if (!KEY_SEGMENT.test(name)) throw new Error(`invalid ACME lock name "${name}"`);
    const key = `${this.prefix}:lock:${name}`;
    const token = randomUUID();
    const set = await this.run(`SET ${key} NX`, (c) => c.set(key, token, "PX", ttlMs, "NX"));
    if (set !== "OK") return undefined;
    return {
      refresh: async () =>
        (await this.run(`refresh ${key}`, (c) => c.eval(REFRESH_SCRIPT, 1, key, token, ttlMs))) ===
        1,
      release: async () => {
        await this.run(`release ${key}`, (c) => c.eval(RELEASE_SCRIPT, 1, key, token));
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.client.status === "ready") {
      await this.client.quit().catch(() => this.client.disconnect());
    } else {
      this.client.disconnect();
    }
  }

  /** Notes why Redis is unreachable; logs once per outage (the client retries every second). */
  private down(why: string): void {
    if (this.lastError === undefined) {
      this.log.warn("ACME storage: cannot reach Redis; retrying", {
        storage: this.description,
        error: why,
      });
    }
    this.lastError = why;
  }

  /** The Redis key of a storage key (`<prefix>:<key>`; a key has no `:`, so no lock's). */
  private key(key: string): string {
    checkKey(key);
    return `${this.prefix}:${key}`;
  }

  /** Runs one command, connecting first on first use; errors say where and why. */
  private async run<T>(what: string, command: (c: Redis) => Promise<T>): Promise<T> {
    try {
      if (this.client.status === "wait") {
        this.connecting = this.client.connect().finally(() => {
          this.connecting = undefined;
        });
      }
      await this.connecting;
      return await command(this.client);
    } catch (e) {
      // A socket just closed may still show "ready" for a moment: ask the socket too.
      const connected = this.client.status === "ready" && this.client.stream?.writable === true;
      const why = connected
        ? (e as Error).message
        : `not connected (${this.lastError ?? "the connection closed"})`;
      throw new Error(`ACME storage ${this.description}: ${what}: ${why}`, { cause: e });
    }
  }
}

export const redisStorage = definePlugin({
  category: "acmeStorage",
  kind: "redis",
  schema: object({
    url: def(redisUrl(), "redis://127.0.0.1:6379"),
    /** Every key starts with `<prefix>:`, so that several installations share one Redis. */
    prefix: def(nonEmptyString("a key prefix"), "lintel:acme"),
    /** The environment variable holding the password, so that it stays out of the config. */
    passwordEnv: opt(nonEmptyString("an environment variable name")),
    connectTimeoutMs: def(integer({ min: 1 }), 2000),
    /** A command fails after this long without an answer. */
    commandTimeoutMs: def(integer({ min: 1 }), 2000),
  }),
  validate(config) {
    if (config.passwordEnv !== undefined && process.env[config.passwordEnv] === undefined) {
      return [
        {
          field: "passwordEnv",
          message: `the environment variable ${config.passwordEnv} is not set`,
        },
      ];
    }
    return [];
  },
  create(config, ctx) {
    const password = config.passwordEnv === undefined ? undefined : process.env[config.passwordEnv];
    return new RedisStorage({ ...config, password }, ctx.log);
  },
});
