// KubeApis, the process's Kubernetes clients: one per API endpoint, whichever kinds ask
// for it and however they name it, so that two consumers of one endpoint share one
// connection and one list+watch per resource and selector.

import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../gateway/clock.js";
import type { KubernetesConfig } from "../../gateway/config/kubernetes-schema.js";
import { KubeApis } from "../../gateway/k8s/kube-apis.js";
import type { ReflectorTiming } from "../../gateway/k8s/reflector.js";
import { Services } from "../../gateway/k8s/resources.js";
import { createLogger, silentLogger } from "../../gateway/log.js";
import { waitUntil } from "../namers/helpers.js";
import { type KubeApiStub, startKubeApiStub } from "../support/kube-api-stub.js";
import { service } from "../support/kube-objects.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const FAST: ReflectorTiming = {
  pageSize: 500,
  requestTimeoutMs: 1000,
  watchSecs: [30, 30],
  idleTimeoutMs: 5000,
  backoffMinMs: 20,
  backoffMaxMs: 200,
};

async function stub(): Promise<KubeApiStub> {
  const s = await startKubeApiStub();
  cleanups.push(() => s.close());
  return s;
}

/** The `kubernetes` block naming `s` as a kubectl proxy. */
const proxyAt = (s: KubeApiStub): KubernetesConfig => ({
  mode: "proxy",
  host: "127.0.0.1",
  port: s.port,
  kubeconfig: undefined,
  context: undefined,
  tokenFile: undefined,
  caFile: undefined,
  initialSyncTimeoutMs: 300,
});

function apis(cfg: KubernetesConfig, log = silentLogger): KubeApis {
  const a = new KubeApis(cfg, {
    log,
    clock: systemClock,
    random: () => 0.5,
    env: {},
    timing: FAST,
  });
  cleanups.push(() => a.close());
  return a;
}

const svc = (name: string) =>
  service({ namespace: "default", name, ports: [{ name: "http", port: 80 }] });
const lists = (s: KubeApiStub) =>
  s.requests.filter((r) => r.path.endsWith("/services") && !r.query.has("watch"));
const watches = (s: KubeApiStub) =>
  s.requests.filter((r) => r.path.endsWith("/services") && r.query.has("watch"));

describe("KubeApis", () => {
  it("gives every consumer of one API endpoint the same client, however it names it", async () => {
    const s = await stub();
    const a = apis(proxyAt(s));
    expect(a.used).toBe(false);
    // As the kinds ask: no ref (ingressSecrets), an empty one (io.l5d.ingress), a
    // Linkerd host/port left unset (io.l5d.k8s), and one naming the same proxy.
    const first = a.get();
    expect(a.get({})).toBe(first);
    expect(a.get({ host: undefined, port: undefined })).toBe(first);
    expect(a.get({ host: "127.0.0.1", port: s.port })).toBe(first);
    expect(a.used).toBe(true);
    expect(a.status()).toHaveLength(1);
    expect(a.status()[0]!.server).toBe(`http://127.0.0.1:${s.port}`);
  });

  it("shares one list and one watch between two consumers of the same resource", async () => {
    const s = await stub();
    s.apply(svc("a"));
    const a = apis(proxyAt(s));
    // Two kinds, each with its own subscription, e.g. a namer and a transformer.
    const w1 = a.get().watch(Services, { namespace: "default" });
    const w2 = a.get({ host: "127.0.0.1", port: s.port }).watch(Services, { namespace: "default" });
    expect(w2).toBe(w1);
    const seen1: string[] = [];
    const seen2: string[] = [];
    cleanups.push(
      w1.subscribe((c) => seen1.push(...(c ?? ["(list)"]))),
      w2.subscribe((c) => seen2.push(...(c ?? ["(list)"]))),
    );
    expect(await w1.whenSynced(2000)).toBe(true);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    s.apply(svc("b"));
    await waitUntil(
      () => seen1.includes("default/b") && seen2.includes("default/b"),
      "b reaches both",
    );
    expect(lists(s)).toHaveLength(1);
    expect(watches(s)).toHaveLength(1);
    expect(s.watchCount()).toBe(1);
    const st = a.status();
    expect(st).toHaveLength(1);
    expect(st[0]!.watches).toHaveLength(1);
    expect(st[0]!.watches[0]!).toMatchObject({ resource: "services", subscribers: 2, lists: 1 });
  });

  it("opens another client for another endpoint, and closes them all", async () => {
    const s1 = await stub();
    const s2 = await stub();
    s1.apply(svc("one"));
    s2.apply(svc("two"));
    const a = apis(proxyAt(s1));
    const c1 = a.get();
    const c2 = a.get({ host: "127.0.0.1", port: s2.port });
    expect(c2).not.toBe(c1);
    // A ref with only a port names a kubectl proxy on localhost: another endpoint by name.
    expect(a.get({ port: s2.port })).not.toBe(c2);
    const w1 = c1.watch(Services, { namespace: "default" });
    const w2 = c2.watch(Services, { namespace: "default" });
    cleanups.push(
      w1.subscribe(() => {}),
      w2.subscribe(() => {}),
    );
    await w1.whenSynced(2000);
    await w2.whenSynced(2000);
    expect([...w1.items.keys()]).toEqual(["default/one"]);
    expect([...w2.items.keys()]).toEqual(["default/two"]);
    expect(lists(s1)).toHaveLength(1);
    expect(lists(s2)).toHaveLength(1);
    expect(a.status().map((c) => c.server)).toEqual([
      `http://127.0.0.1:${s1.port}`,
      `http://127.0.0.1:${s2.port}`,
      `http://localhost:${s2.port}`,
    ]);
    await waitUntil(() => s1.watchCount() === 1 && s2.watchCount() === 1, "both watches open");
    a.close();
    await waitUntil(() => s1.watchCount() === 0 && s2.watchCount() === 0, "the watches closed");
    expect(a.used).toBe(false);
  });

  it("waits for the first lists at startup and names a watch that did not list", async () => {
    const s = await stub();
    s.unavailable();
    const logs: string[] = [];
    const a = apis(proxyAt(s), createLogger({ level: "warn", sink: (line) => logs.push(line) }));
    const w = a.get().watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    const t0 = Date.now();
    await a.waitForSync();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(logs.some((l) => l.includes("serving before this Kubernetes watch listed"))).toBe(true);
    s.up();
    expect(await w.whenSynced(2000)).toBe(true);
  });
});
