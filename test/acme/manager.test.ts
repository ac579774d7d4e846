// The ACME manager's own decisions, on an in-memory storage and without a CA (the CA's
// address refuses connections): an on-demand name refused by a cap is forgotten rather
// than ordered later; a handshake for a name another replica is ordering waits (bounded)
// for that replica's certificate in storage; a storage that cannot be read or locked is
// the name's last error in the admin view, and no longer once it answers again.

import { Agent } from "node:https";
import { afterEach, describe, expect, it, vi } from "vitest";
import { systemClock } from "../../gateway/clock.js";
import { httpGet } from "../../tls/acme/http-get.js";
import { type AcmeEvents, AcmeManager } from "../../tls/acme/manager.js";
import { type OnDemandConfig, OnDemandPolicy } from "../../tls/acme/on-demand.js";
import type { AcmeLock, AcmeStorage } from "../../tls/acme/storage.js";
import { type FakeClock, fakeClock } from "../support/fake-kube.js";
import { TestCa } from "../tls/test-ca.js";

/** Nothing listens there: any CA call fails at once. */
const NO_CA = "https://127.0.0.1:1/dir";

/** Shared state as the replicas see it, with failures and another replica's lock on demand. */
class MemoryStorage implements AcmeStorage {
  readonly description = "memory";
  readonly values = new Map<string, Buffer>();
  /** Keys asked for: where the manager looks for a name's certificate. */
  readonly loaded = new Set<string>();
  failLoad: string | undefined;
  failLock: string | undefined;
  /** Another replica holds every lock. */
  lockedElsewhere = false;
  /** Tries to take a name's lock (the account's lock not counted). */
  lockTries = 0;

  async load(key: string): Promise<Buffer | undefined> {
    if (this.failLoad) throw new Error(this.failLoad);
    this.loaded.add(key);
    return this.values.get(key);
  }
  async store(key: string, value: Buffer): Promise<void> {
    this.values.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
  async list(prefix: string): Promise<string[]> {
    return [...this.values.keys()].filter((k) => k.startsWith(`${prefix}/`));
  }
  async tryLock(name: string): Promise<AcmeLock | undefined> {
    if (name.startsWith("issue-")) this.lockTries++;
    if (this.failLock) throw new Error(this.failLock);
    if (this.lockedElsewhere) return undefined;
    return { refresh: async () => true, release: async () => {} };
  }
}

const agents: Agent[] = [];
const managers: AcmeManager[] = [];
afterEach(() => {
  for (const m of managers.splice(0)) m.close();
  for (const a of agents.splice(0)) a.destroy();
});

function setup(
  o: {
    storage?: MemoryStorage;
    clock?: FakeClock | typeof systemClock;
    names?: string[];
    onDemand?: Partial<OnDemandConfig>;
  } = {},
) {
  const storage = o.storage ?? new MemoryStorage();
  const clock = o.clock ?? systemClock;
  const agent = new Agent();
  agents.push(agent);
  const counted: string[] = [];
  const events: AcmeEvents = {
    order: (kind, ok) => counted.push(`order ${kind} ${ok}`),
    challengeFailed: (type) => counted.push(`challenge ${type}`),
    onDemand: (outcome) => counted.push(`on-demand ${outcome}`),
  };
  const policy =
    o.onDemand &&
    new OnDemandPolicy(
      {
        allow: ["*.allowed.test"],
        ask: undefined,
        maxPerMinute: 10,
        maxConcurrent: 4,
        waitMs: 5000,
        ...o.onDemand,
      },
      httpGet(agent, 1000),
      clock,
    );
  const logs: string[] = [];
  const manager = new AcmeManager({
    directoryUrl: NO_CA,
    email: undefined,
    eab: undefined,
    keyType: "ec256",
    challenges: ["http-01"],
    dns: undefined,
    storage,
    names: o.names ?? [],
    onDemand: policy,
    agent,
    lockTtlMs: 60_000,
    retryMinMs: 1000,
    checkIntervalMs: 600_000,
    clock,
    random: () => 0.5,
    log: (level, message, fields) => logs.push(`${level} ${message} ${JSON.stringify(fields)}`),
    events,
  });
  managers.push(manager);
  return { manager, storage, policy, counted, logs };
}

/** A certificate for `name` as the manager stores it. */
async function storedCert(name: string): Promise<{ json: Buffer; certPem: string }> {
  const leaf = await (await TestCa.root()).leaf({ dns: [name] });
  const json = Buffer.from(
    JSON.stringify({ certPem: leaf.certPem, keyPem: leaf.keyPem(), issuedAt: Date.now() }),
  );
  return { json, certPem: leaf.certPem };
}

describe("on-demand names refused by a cap", () => {
  it("are forgotten: no retry, no order later, and the next handshake asks again", async () => {
    const clock = fakeClock(Date.now());
    const { manager, storage, policy, counted } = setup({ clock, onDemand: { maxPerMinute: 1 } });
    // The minute's one order is taken (by another name).
    expect(policy!.begin()).toBe(true);
    policy!.done();
    expect(await manager.ensure("x.allowed.test")).toBeUndefined();
    expect(counted).toEqual(["on-demand refused"]);
    expect(manager.status()).toEqual([]);
    const tries = storage.lockTries;
    // Minutes go by (the budget comes back): nothing is tried for the name in the background.
    clock.advance(120_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(storage.lockTries).toBe(tries);
    expect(counted).toEqual(["on-demand refused"]);
    expect(clock.pending).toBe(0);
    // A handshake asks again, within the caps: an order starts (and fails: no CA here).
    await manager.ensure("x.allowed.test");
    expect(storage.lockTries).toBe(tries + 1);
    expect(counted).toEqual(["on-demand refused", "order new false"]);
  });

  it("under maxConcurrent are forgotten too", async () => {
    const clock = fakeClock(Date.now());
    const { manager, policy, counted } = setup({ clock, onDemand: { maxConcurrent: 1 } });
    expect(policy!.begin()).toBe(true); // an order under way
    expect(await manager.ensure("y.allowed.test")).toBeUndefined();
    clock.advance(60_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(counted).toEqual(["on-demand refused"]);
    expect(manager.status()).toEqual([]);
  });
});

describe("a handshake for a name another replica is ordering", () => {
  it("waits for that replica's certificate to appear in storage", async () => {
    const storage = new MemoryStorage();
    storage.lockedElsewhere = true;
    const { manager } = setup({ storage, onDemand: { waitMs: 5000 } });
    const { json, certPem } = await storedCert("z.allowed.test");
    // The other replica stores its certificate 600 ms after the handshake began.
    setTimeout(() => {
      const key = [...storage.loaded].find((k) => k.endsWith("/z.allowed.test/certificate.json"));
      if (key) storage.values.set(key, json);
    }, 600);
    const started = Date.now();
    const pem = await manager.ensure("z.allowed.test");
    const took = Date.now() - started;
    expect(pem?.certPem).toBe(certPem);
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(3000);
  });

  it("gets the default once waitMs has passed", async () => {
    const storage = new MemoryStorage();
    storage.lockedElsewhere = true;
    const { manager } = setup({ storage, onDemand: { waitMs: 400 } });
    const started = Date.now();
    expect(await manager.ensure("w.allowed.test")).toBeUndefined();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(350);
    expect(took).toBeLessThan(1500);
  });
});

describe("storage failures", () => {
  it("show as the name's last error while the storage cannot be read, and no longer after", async () => {
    const clock = fakeClock(Date.now());
    const storage = new MemoryStorage();
    const { json } = await storedCert("kept.test");
    const { manager } = setup({ storage, clock, names: ["kept.test"] });
    storage.failLoad = "connection refused";
    await manager.load();
    const [down] = manager.status();
    expect(down!.state).toBe("failing");
    expect(down!.lastError!.message).toBe(
      "the ACME storage (memory) cannot be read: connection refused",
    );
    // It answers again (another replica is ordering the name), then has its certificate.
    storage.failLoad = undefined;
    storage.lockedElsewhere = true;
    manager.start();
    await vi.waitFor(() => expect(manager.status()[0]!.state).toBe("missing"));
    expect(manager.status()[0]!.lastError).toBeUndefined();
    const stored = [...storage.loaded].find((k) => k.endsWith("/kept.test/certificate.json"))!;
    storage.values.set(stored, json);
    clock.advance(5000);
    await vi.waitFor(() => expect(manager.status()[0]!.state).toBe("valid"));
    expect(manager.status()[0]!.lastError).toBeUndefined();
  });

  it("show as the name's last error when the storage cannot be locked", async () => {
    const storage = new MemoryStorage();
    storage.failLock = "READONLY You can't write against a read only replica.";
    const { manager } = setup({ storage, clock: fakeClock(Date.now()), names: ["locked.test"] });
    await manager.load();
    expect(manager.status()[0]!.lastError).toBeUndefined();
    manager.start();
    await vi.waitFor(() =>
      expect(manager.status()[0]!.lastError?.message).toBe(
        "the ACME storage (memory) cannot be locked: READONLY You can't write against a read only replica.",
      ),
    );
    expect(manager.status()[0]!.state).toBe("failing");
  });
});
