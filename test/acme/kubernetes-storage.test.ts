// The kubernetes ACME storage against the API stub: the conformance suite (each replica
// its own client), the Secrets and Leases it writes, a Lease another holder has, and an
// API that is down or too slow.

import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { kubernetesStorage } from "../../gateway/acme/kubernetes-storage.js";
import { type Clock, systemClock } from "../../gateway/clock.js";
import { DecodeContext } from "../../gateway/config/schema.js";
import { KubeClient } from "../../gateway/k8s/client.js";
import { openConnection } from "../../gateway/k8s/connection.js";
import type { ReflectorTiming } from "../../gateway/k8s/reflector.js";
import { silentLogger } from "../../gateway/log.js";
import type { AcmeStorage } from "../../tls/acme/storage.js";
import { fakeClock } from "../support/fake-kube.js";
import { type KubeApiStub, startKubeApiStub } from "../support/kube-api-stub.js";
import { lease, opaqueSecret } from "../support/kube-objects.js";
import { storageConformance } from "./storage-conformance.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const timing = (requestTimeoutMs: number): ReflectorTiming => ({
  pageSize: 2,
  requestTimeoutMs,
  watchSecs: [30, 30],
  idleTimeoutMs: 5000,
  backoffMinMs: 20,
  backoffMaxMs: 200,
});

async function startStub(): Promise<KubeApiStub> {
  const stub = await startKubeApiStub();
  cleanups.push(() => stub.close());
  return stub;
}

function decode(raw: Record<string, unknown>) {
  const cx = new DecodeContext(process.cwd());
  const config = kubernetesStorage.schema.decode(raw, "", cx);
  return { config, issues: cx.issues };
}

/** A replica's storage: its own client (connection) to the stub. */
function open(
  stub: KubeApiStub,
  opts: { raw?: Record<string, unknown>; clock?: Clock; requestTimeoutMs?: number } = {},
): AcmeStorage {
  const client = new KubeClient(
    openConnection({ mode: "proxy", host: "127.0.0.1", port: stub.port }),
    {
      clock: systemClock,
      random: () => 0.5,
      log: silentLogger,
      timing: timing(opts.requestTimeoutMs ?? 5000),
    },
  );
  cleanups.push(() => client.close());
  const { config } = decode(opts.raw ?? {});
  if (typeof config === "symbol") throw new Error("the test's config does not decode");
  return kubernetesStorage.create(config, {
    log: silentLogger,
    clock: opts.clock ?? systemClock,
    random: Math.random,
    kube: () => client,
  });
}

const hash20 = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 20);
/** A DNS subdomain (RFC 1123), as Secret and Lease names must be. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

storageConformance("kubernetes", () => {
  let stub: Promise<KubeApiStub> | undefined;
  return {
    open: async () => {
      stub ??= startStub();
      return open(await stub);
    },
    shortTtlMs: 1000,
  };
});

describe("kubernetes storage: config", () => {
  it("defaults to namespace lintel and prefix lintel-acme, and says where it is", async () => {
    const { config } = decode({});
    expect(config).toEqual({
      namespace: "lintel",
      prefix: "lintel-acme",
      host: undefined,
      port: undefined,
    });
    const stub = await startStub();
    expect(open(stub).description).toBe(
      `kubernetes Secrets and Leases in lintel (prefix lintel-acme) at http://127.0.0.1:${stub.port}`,
    );
  });

  it("refuses a namespace or prefix that cannot name Kubernetes objects", () => {
    expect(decode({ namespace: "Lintel", prefix: "acme_" }).issues).toEqual([
      {
        path: "namespace",
        message:
          "expected a namespace: up to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (got \"Lintel\")",
      },
      {
        path: "prefix",
        message:
          "expected a Secret and Lease name prefix: up to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (got \"acme_\")",
      },
    ]);
    expect(decode({ prefix: "a".repeat(64) }).issues).toHaveLength(1);
  });
});

describe("kubernetes storage: what it writes", () => {
  it("one Opaque Secret per key, named from the key's hash, labelled, the key in an annotation", async () => {
    const stub = await startStub();
    const s = open(stub, { raw: { namespace: "acme", prefix: "edge" } });
    const key = "certs/acme-v02.api.letsencrypt.org-directory/_wildcard_.example.com/cert.pem";
    await s.store(key, Buffer.from("PEM"));
    const long = `certs/${"x".repeat(250)}/${"y".repeat(250)}/key.pem`;
    await s.store(long, Buffer.from([0, 255]));
    const secrets = stub.list("Secret");
    expect(secrets.map((o) => o.metadata.name).sort()).toEqual(
      [`edge-${hash20(key)}`, `edge-${hash20(long)}`].sort(),
    );
    for (const o of secrets) {
      expect(o.metadata.namespace).toBe("acme");
      expect(o.metadata.name.length).toBeLessThanOrEqual(253);
      expect(o.metadata.name).toMatch(DNS_SUBDOMAIN);
      expect(o.type).toBe("Opaque");
      expect(o.metadata.labels).toEqual({
        "app.kubernetes.io/managed-by": "lintel",
        "lintel.dev/acme-storage": "edge",
      });
    }
    const one = stub.get("Secret", "acme", `edge-${hash20(key)}`)!;
    expect(one.metadata.annotations).toEqual({ "lintel.dev/acme-key": key });
    expect(one.data).toEqual({ value: Buffer.from("PEM").toString("base64") });
    expect(await s.list("certs")).toHaveLength(2);
  });

  it("keeps labels and annotations others added when it replaces a value", async () => {
    const stub = await startStub();
    const s = open(stub);
    await s.store("accounts/ca/key.der", Buffer.from("one"));
    const name = `lintel-acme-${hash20("accounts/ca/key.der")}`;
    const stored = stub.get("Secret", "lintel", name)!;
    stub.apply({
      ...stored,
      metadata: { ...stored.metadata, labels: { ...stored.metadata.labels, backup: "yes" } },
    });
    await s.store("accounts/ca/key.der", Buffer.from("two"));
    expect(stub.get("Secret", "lintel", name)?.metadata.labels).toMatchObject({ backup: "yes" });
    expect((await s.load("accounts/ca/key.der"))?.toString()).toBe("two");
  });

  it("lets replicas storing one key at once all succeed, one value winning whole", async () => {
    const stub = await startStub();
    // Five: each conflict a store meets is another's success, so five always all land.
    const replicas = Array.from({ length: 5 }, () => open(stub));
    await Promise.all(
      replicas.map((r, i) => r.store("challenges/http-01/t", Buffer.from(`v${i}`))),
    );
    expect((await replicas[0]!.load("challenges/http-01/t"))?.toString()).toMatch(/^v[0-4]$/);
    expect(stub.list("Secret")).toHaveLength(1);
  });

  it("lists only its own prefix's keys", async () => {
    const stub = await startStub();
    await open(stub, { raw: { prefix: "one" } }).store("certs/ca/a/cert.pem", Buffer.from("1"));
    await open(stub, { raw: { prefix: "two" } }).store("certs/ca/b/cert.pem", Buffer.from("2"));
    expect(await open(stub, { raw: { prefix: "one" } }).list("certs/ca")).toEqual([
      "certs/ca/a/cert.pem",
    ]);
  });

  it("refuses a Secret at a key's name that is not that key's", async () => {
    const stub = await startStub();
    const name = `lintel-acme-${hash20("certs/ca/a/cert.pem")}`;
    stub.apply(opaqueSecret({ namespace: "lintel", name, data: { value: "x" } }));
    const s = open(stub);
    await expect(s.load("certs/ca/a/cert.pem")).rejects.toThrow(
      `Secret lintel/${name} is where ACME key "certs/ca/a/cert.pem" goes, but it is not that key's (annotation lintel.dev/acme-key: undefined); something else uses the prefix "lintel-acme": choose another prefix, or delete the Secret`,
    );
    await expect(s.store("certs/ca/a/cert.pem", Buffer.from("y"))).rejects.toThrow(
      /not that key's/,
    );
  });

  it("a Lease per lock: holder, duration in whole seconds, MicroTimes; released by clearing its holder", async () => {
    const stub = await startStub();
    const s = open(stub);
    const lock = await s.tryLock("issue-a.example.com", 1500);
    const name = `lintel-acme-lock-${hash20("issue-a.example.com")}`;
    expect(name).toMatch(DNS_SUBDOMAIN);
    const held = stub.get("Lease", "lintel", name)!;
    expect(held.metadata.labels).toEqual({
      "app.kubernetes.io/managed-by": "lintel",
      "lintel.dev/acme-storage": "lintel-acme",
    });
    expect(held.metadata.annotations).toEqual({ "lintel.dev/acme-lock": "issue-a.example.com" });
    const spec = held.spec as Record<string, unknown>;
    expect(spec.holderIdentity).toMatch(
      new RegExp(
        `^${hostname().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-${process.pid}-[0-9a-f]{12}$`,
      ),
    );
    expect(spec.leaseDurationSeconds).toBe(2);
    expect(spec.leaseTransitions).toBe(0);
    expect(spec.acquireTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(spec.renewTime).toBe(spec.acquireTime);
    await lock!.release();
    const released = stub.get("Lease", "lintel", name)!;
    expect((released.spec as Record<string, unknown>).holderIdentity).toBeUndefined();
    expect(await open(stub).tryLock("issue-a.example.com", 500)).toBeDefined();
    const taken = stub.get("Lease", "lintel", name)!.spec as Record<string, unknown>;
    expect(taken.leaseDurationSeconds).toBe(1);
    expect(taken.leaseTransitions).toBe(1);
  });

  it("waits out a Lease another holder has until its renewTime + duration has passed", async () => {
    const stub = await startStub();
    const clock = fakeClock(Date.UTC(2024, 0, 1));
    const name = `lintel-acme-lock-${hash20("issue-b.example.com")}`;
    stub.apply(
      lease({
        namespace: "lintel",
        name,
        holderIdentity: "another-gateway",
        leaseDurationSeconds: 30,
        renewTime: new Date(clock.now()),
      }),
    );
    const s = open(stub, { clock });
    clock.advance(29_999);
    expect(await s.tryLock("issue-b.example.com", 60_000)).toBeUndefined();
    expect(
      (stub.get("Lease", "lintel", name)!.spec as Record<string, unknown>).holderIdentity,
    ).toBe("another-gateway");
    clock.advance(1);
    const lock = await s.tryLock("issue-b.example.com", 60_000);
    expect(lock).toBeDefined();
    const spec = stub.get("Lease", "lintel", name)!.spec as Record<string, unknown>;
    expect(spec.holderIdentity).not.toBe("another-gateway");
    expect(spec.renewTime).toBe("2024-01-01T00:00:30.000000Z");
    expect(spec.leaseTransitions).toBe(1);
    clock.advance(5_000);
    expect(await lock!.refresh()).toBe(true);
    expect((stub.get("Lease", "lintel", name)!.spec as Record<string, unknown>).renewTime).toBe(
      "2024-01-01T00:00:35.000000Z",
    );
  });
});

describe("kubernetes storage: an API outage", () => {
  it("makes store and tryLock reject, naming the object, when the API refuses connections", async () => {
    const stub = await startStub();
    const s = open(stub);
    stub.down();
    const secret = `lintel-acme-${hash20("certs/ca/a/cert.pem")}`;
    await expect(s.store("certs/ca/a/cert.pem", Buffer.from("x"))).rejects.toThrow(
      `reading Secret lintel/${secret}: GET http://127.0.0.1:${stub.port}/api/v1/namespaces/lintel/secrets/${secret}: `,
    );
    await expect(s.tryLock("issue-a.example.com", 30_000)).rejects.toThrow(
      /^reading Lease lintel\/lintel-acme-lock-[0-9a-f]{20}: GET /,
    );
  });

  it("makes them reject within the request timeout when the API does not answer", async () => {
    const stub = await startStub();
    const s = open(stub, { requestTimeoutMs: 300 });
    stub.setLatency(5000);
    const started = Date.now();
    const results = await Promise.allSettled([
      s.store("certs/ca/a/cert.pem", Buffer.from("x")),
      s.tryLock("issue-a.example.com", 30_000),
      s.list("certs"),
    ]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    for (const r of results)
      expect(String((r as PromiseRejectedResult).reason)).toMatch(
        new RegExp(`the API at http://127\\.0\\.0\\.1:${stub.port} did not answer within 300 ms$`),
      );
  });
});
