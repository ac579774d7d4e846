// The Kubernetes client's object writes against the API stub: get (404 → undefined),
// create, replace under optimistic concurrency, delete, list page by page; conflicts
// typed, failures naming the object with the API's message, every call bounded in time.

import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../gateway/clock.js";
import { KubeApiError, KubeConflictError } from "../../gateway/k8s/api.js";
import { KubeClient } from "../../gateway/k8s/client.js";
import { openConnection } from "../../gateway/k8s/connection.js";
import type { ReflectorTiming } from "../../gateway/k8s/reflector.js";
import { ConfigMaps, Leases, Secrets } from "../../gateway/k8s/resources.js";
import { silentLogger } from "../../gateway/log.js";
import { startKubeApiStub } from "../support/kube-api-stub.js";
import { configMap, lease, microTime, opaqueSecret } from "../support/kube-objects.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TIMING: ReflectorTiming = {
  pageSize: 2,
  requestTimeoutMs: 300,
  watchSecs: [30, 30],
  idleTimeoutMs: 5000,
  backoffMinMs: 20,
  backoffMaxMs: 200,
};

async function setup(opts: Parameters<typeof startKubeApiStub>[0] = {}) {
  const stub = await startKubeApiStub(opts);
  cleanups.push(() => stub.close());
  const client = new KubeClient(
    openConnection({ mode: "proxy", host: "127.0.0.1", port: stub.port }),
    { clock: systemClock, random: () => 0.5, log: silentLogger, timing: TIMING },
  );
  cleanups.push(() => client.close());
  return { stub, writer: client.writer };
}

const cm = (name: string, data: Record<string, string> = { a: "1" }) => ({
  metadata: { name, namespace: "app" },
  data,
});

describe("object reads and writes", () => {
  it("gets an object as the API holds it, and undefined for one that is not there", async () => {
    const { stub, writer } = await setup();
    stub.apply(opaqueSecret({ namespace: "app", name: "s", data: { k: "v" } }));
    const got = await writer.get(Secrets, "app", "s");
    expect(got?.metadata?.resourceVersion).toBe(
      stub.get("Secret", "app", "s")?.metadata.resourceVersion,
    );
    expect(got?.data).toEqual({ k: Buffer.from("v").toString("base64") });
    expect(await writer.get(Secrets, "app", "nope")).toBeUndefined();
    expect(await writer.get(Secrets, "other", "s")).toBeUndefined();
  });

  it("creates an object with its type's apiVersion and kind; a taken name is an AlreadyExists conflict", async () => {
    const { stub, writer } = await setup();
    const created = await writer.create(ConfigMaps, "app", cm("c"));
    expect(created.apiVersion).toBe("v1");
    expect(created.kind).toBe("ConfigMap");
    expect(created.metadata?.uid).toBeTruthy();
    expect(stub.get("ConfigMap", "app", "c")?.data).toEqual({ a: "1" });
    const again = writer.create(ConfigMaps, "app", cm("c", { a: "2" }));
    await expect(again).rejects.toBeInstanceOf(KubeConflictError);
    await expect(again).rejects.toMatchObject({
      status: 409,
      reason: "AlreadyExists",
      message: 'creating ConfigMap app/c: HTTP 409: configmaps "c" already exists',
    });
    expect(stub.get("ConfigMap", "app", "c")?.data).toEqual({ a: "1" });
  });

  it("replaces at the version read; a stale version is a Conflict and changes nothing", async () => {
    const { stub, writer } = await setup();
    stub.apply(configMap({ namespace: "app", name: "c", data: { a: "1" } }));
    const read = (await writer.get(ConfigMaps, "app", "c"))!;
    const updated = await writer.replace(ConfigMaps, "app", "c", { ...read, data: { a: "2" } });
    expect(updated.data).toEqual({ a: "2" });
    expect(Number(updated.metadata?.resourceVersion)).toBeGreaterThan(
      Number(read.metadata?.resourceVersion),
    );
    const stale = writer.replace(ConfigMaps, "app", "c", { ...read, data: { a: "3" } });
    await expect(stale).rejects.toBeInstanceOf(KubeConflictError);
    await expect(stale).rejects.toMatchObject({ reason: "Conflict" });
    await expect(stale).rejects.toThrow(
      /^replacing ConfigMap app\/c: HTTP 409: Operation cannot be fulfilled on configmaps "c": the object has been modified/,
    );
    expect(stub.get("ConfigMap", "app", "c")?.data).toEqual({ a: "2" });
  });

  it("replacing an object that is gone fails naming it", async () => {
    const { writer } = await setup();
    const missing = writer.replace(ConfigMaps, "app", "gone", cm("gone"));
    await expect(missing).rejects.toBeInstanceOf(KubeApiError);
    await expect(missing).rejects.toMatchObject({ status: 404, reason: "NotFound" });
    await expect(missing).rejects.toThrow(
      'replacing ConfigMap app/gone: HTTP 404: configmaps "gone" not found',
    );
  });

  it("deletes, and deleting what is already gone is no error", async () => {
    const { stub, writer } = await setup();
    stub.apply(configMap({ namespace: "app", name: "c", data: {} }));
    await writer.delete(ConfigMaps, "app", "c");
    expect(stub.get("ConfigMap", "app", "c")).toBeUndefined();
    await writer.delete(ConfigMaps, "app", "c");
    expect(stub.requests.filter((r) => r.method === "DELETE")).toHaveLength(2);
  });

  it("lists one namespace by label selector, following every page", async () => {
    const { stub, writer } = await setup();
    for (const n of ["a", "b", "c", "d", "e"])
      stub.apply(configMap({ namespace: "app", name: n, data: {}, labels: { team: "x" } }));
    stub.apply(configMap({ namespace: "app", name: "f", data: {}, labels: { team: "y" } }));
    stub.apply(configMap({ namespace: "other", name: "g", data: {}, labels: { team: "x" } }));
    const items = await writer.list(ConfigMaps, "app", "team=x");
    expect(items.map((o) => o.metadata?.name)).toEqual(["a", "b", "c", "d", "e"]);
    const pages = stub.requests.filter((r) => r.path === "/api/v1/namespaces/app/configmaps");
    expect(pages.map((r) => r.query.get("limit"))).toEqual(["2", "2", "2"]);
    expect(pages.map((r) => r.query.get("labelSelector"))).toEqual(["team=x", "team=x", "team=x"]);
    expect(pages.slice(1).every((r) => r.query.get("continue"))).toBe(true);
    expect(await writer.list(ConfigMaps, "app")).toHaveLength(6);
    expect(await writer.list(ConfigMaps, "empty", "team=x")).toEqual([]);
  });

  it("reads and writes coordination.k8s.io Leases, whose MicroTimes have six fractional digits", async () => {
    const { stub, writer } = await setup();
    const at = new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 123));
    stub.apply(
      lease({
        namespace: "app",
        name: "l",
        holderIdentity: "a",
        leaseDurationSeconds: 5,
        renewTime: at,
      }),
    );
    const read = (await writer.get(Leases, "app", "l"))!;
    expect(read.apiVersion).toBe("coordination.k8s.io/v1");
    expect(read.spec).toMatchObject({
      holderIdentity: "a",
      renewTime: "2024-01-01T00:00:00.123000Z",
    });
    const renewed = await writer.replace(Leases, "app", "l", {
      ...read,
      spec: { ...(read.spec as object), renewTime: "2024-01-01T02:00:00.000001+02:00" },
    });
    expect((renewed.spec as { renewTime: string }).renewTime).toBe("2024-01-01T00:00:00.000001Z");
    // As the real API: Date's three digits do not parse as a MicroTime.
    const bad = writer.create(Leases, "app", {
      metadata: { name: "m" },
      spec: { holderIdentity: "b", renewTime: new Date().toISOString() },
    });
    await expect(bad).rejects.toMatchObject({ status: 400, reason: "BadRequest" });
    await expect(bad).rejects.toThrow(
      /^creating Lease app\/m: HTTP 400: Lease in version "v1" cannot be handled as a Lease: parsing time/,
    );
    await writer.create(Leases, "app", {
      metadata: { name: "m" },
      spec: { holderIdentity: "b", renewTime: microTime(at) },
    });
    expect(stub.get("Lease", "app", "m")?.spec).toEqual({
      holderIdentity: "b",
      renewTime: "2024-01-01T00:00:00.123000Z",
    });
  });
});

describe("object write failures", () => {
  it("say what the API refused, and what a 401 means", async () => {
    const { writer } = await setup({ token: "t0ken" });
    await expect(writer.get(Secrets, "app", "s")).rejects.toThrow(
      "reading Secret app/s: HTTP 401 (the API did not accept lintel's credentials): Unauthorized",
    );
    await expect(writer.list(Secrets, "app", "a=b")).rejects.toThrow(
      /^listing secrets in namespace app matching a=b: HTTP 401/,
    );
  });

  it("name the object and the API's message when it is unavailable", async () => {
    const { stub, writer } = await setup();
    stub.unavailable();
    await expect(writer.create(ConfigMaps, "app", cm("c"))).rejects.toMatchObject({
      status: 503,
      message:
        "creating ConfigMap app/c: HTTP 503: the server is currently unable to handle the request",
    });
  });

  it("reject at once when the API refuses connections", async () => {
    const { stub, writer } = await setup();
    stub.down();
    await expect(writer.delete(Secrets, "app", "s")).rejects.toThrow(
      /^deleting Secret app\/s: DELETE http:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/app\/secrets\/s: /,
    );
  });

  it("reject after the request timeout when the API does not answer", async () => {
    const { stub, writer } = await setup();
    stub.setLatency(3000);
    const started = Date.now();
    await expect(writer.get(Secrets, "app", "s")).rejects.toThrow(
      /^reading Secret app\/s: the API at http:\/\/127\.0\.0\.1:\d+ did not answer within 300 ms$/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
