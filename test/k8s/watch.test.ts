// The Kubernetes watches against the API stub (no real API server can run here; the
// stub speaks the API's list/watch: resourceVersions, chunked lists, watch events,
// bookmarks, 410 Gone, dropped watches, an API that is down or slow).

import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../../gateway/clock.js";
import { systemClock } from "../../gateway/clock.js";
import { KubeClient } from "../../gateway/k8s/client.js";
import { openConnection } from "../../gateway/k8s/connection.js";
import type { ReflectorTiming } from "../../gateway/k8s/reflector.js";
import {
  EndpointSlices,
  type EndpointSliceView,
  Ingresses,
  Services,
} from "../../gateway/k8s/resources.js";
import { silentLogger } from "../../gateway/log.js";
import { waitUntil } from "../namers/helpers.js";
import { type KubeApiStub, startKubeApiStub } from "../support/kube-api-stub.js";
import { endpointSlice, ingress, service } from "../support/kube-objects.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Fast timings, so failures and retries happen within a test. */
const FAST: ReflectorTiming = {
  pageSize: 2,
  requestTimeoutMs: 1000,
  watchSecs: [30, 30],
  idleTimeoutMs: 5000,
  backoffMinMs: 20,
  backoffMaxMs: 200,
};

async function stub(opts: Parameters<typeof startKubeApiStub>[0] = {}): Promise<KubeApiStub> {
  const s = await startKubeApiStub(opts);
  cleanups.push(() => s.close());
  return s;
}

function client(s: KubeApiStub, timing: ReflectorTiming = FAST, clock: Clock = systemClock) {
  const c = new KubeClient(openConnection({ mode: "proxy", host: "127.0.0.1", port: s.port }), {
    clock,
    random: () => 0.5,
    log: silentLogger,
    timing,
    lingerMs: 50,
  });
  cleanups.push(() => c.close());
  return c;
}

function svc(name: string, port = 80, namespace = "default") {
  return service({ namespace, name, ports: [{ name: "http", port }] });
}

const lists = (s: KubeApiStub, plural: string) =>
  s.requests.filter((r) => r.path.endsWith(`/${plural}`) && !r.query.has("watch"));
const watchesOf = (s: KubeApiStub, plural: string) =>
  s.requests.filter((r) => r.path.endsWith(`/${plural}`) && r.query.has("watch"));

describe("a watch", () => {
  it("lists in pages, then follows events, telling subscribers which keys changed", async () => {
    const s = await stub();
    for (const n of ["a", "b", "c", "d", "e"]) s.apply(svc(n));
    const w = client(s).watch(Services, { namespace: "default" });
    const changes: (string[] | "all")[] = [];
    cleanups.push(w.subscribe((c) => changes.push(c ? [...c] : "all")));
    expect(await w.whenSynced(2000)).toBe(true);
    expect([...w.items.keys()].sort()).toEqual([
      "default/a",
      "default/b",
      "default/c",
      "default/d",
      "default/e",
    ]);
    const pages = lists(s, "services");
    expect(pages.map((r) => r.query.get("limit"))).toEqual(["2", "2", "2"]);
    expect(pages[1]!.query.get("continue")).toBeTruthy();
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    s.apply(svc("f"));
    s.apply(svc("a", 8080));
    s.remove("Service", "default", "b");
    await waitUntil(
      () => changes.length >= 4,
      () => `changes: ${JSON.stringify(changes)}`,
    );
    expect(changes).toEqual(["all", ["default/f"], ["default/a"], ["default/b"]]);
    expect(w.items.get("default/a")?.ports[0]?.port).toBe(8080);
    expect(w.items.has("default/b")).toBe(false);
    const watch = watchesOf(s, "services")[0]!;
    expect(watch.query.get("allowWatchBookmarks")).toBe("true");
    expect(Number(watch.query.get("resourceVersion"))).toBeGreaterThan(0);
  });

  it("does not announce a change that alters nothing it keeps", async () => {
    const s = await stub();
    s.apply(svc("a"));
    const w = client(s).watch(Services, { namespace: "default" });
    let changes = 0;
    cleanups.push(w.subscribe(() => changes++));
    await w.whenSynced(2000);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    const stored = s.get("Service", "default", "a")!;
    s.apply({ ...stored, metadata: { ...stored.metadata, annotations: { touched: "yes" } } });
    s.apply(svc("b"));
    await waitUntil(() => w.items.has("default/b"), "b arrives");
    expect(changes).toBe(2); // the list, and b
  });

  it("resumes a dropped watch from its last version, without listing again", async () => {
    const s = await stub();
    s.apply(svc("a"));
    const w = client(s).watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    await w.whenSynced(2000);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    s.apply(svc("b"));
    await waitUntil(() => w.items.has("default/b"), "b arrives");
    const seenVersion = s.resourceVersion;
    s.dropWatches();
    s.apply(svc("c")); // while no watch is open
    await waitUntil(() => w.items.has("default/c"), "c arrives after the reconnect");
    expect(lists(s, "services")).toHaveLength(1);
    const again = watchesOf(s, "services");
    expect(again.length).toBeGreaterThanOrEqual(2);
    expect(again.at(-1)!.query.get("resourceVersion")).toBe(seenVersion);
  });

  it("lists again after 410 Gone, and then knows of deletions it missed", async () => {
    const s = await stub();
    s.apply(svc("a"));
    s.apply(svc("b"));
    const w = client(s).watch(Services, { namespace: "default" });
    const changes: (string[] | "all")[] = [];
    cleanups.push(w.subscribe((c) => changes.push(c ? [...c] : "all")));
    await w.whenSynced(2000);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    s.dropWatches();
    s.remove("Service", "default", "a");
    s.apply(svc("z"));
    s.compact(); // the history the watch would resume from is gone
    await waitUntil(() => w.items.has("default/z"), "z arrives after the relist");
    expect(w.items.has("default/a")).toBe(false);
    expect(lists(s, "services").length).toBeGreaterThanOrEqual(2);
    expect(changes.filter((c) => c === "all").length).toBeGreaterThanOrEqual(2);
  });

  it("keeps its objects while the API is down, backs off, and catches up when it returns", async () => {
    const s = await stub();
    s.apply(svc("a"));
    const delays: number[] = [];
    // Real time, but every wait is recorded and shortened.
    const clock: Clock = {
      now: () => Date.now(),
      setTimeout: (fn, ms) => {
        if (ms < 1000) delays.push(ms);
        return setTimeout(fn, Math.min(ms, 5));
      },
      clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
    };
    const c = client(s, { ...FAST, backoffMinMs: 100, backoffMaxMs: 400 }, clock);
    const w = c.watch(Services, { namespace: "default" });
    let emptied = false;
    cleanups.push(
      w.subscribe(() => {
        if (w.items.size === 0) emptied = true;
      }),
    );
    await w.whenSynced(2000);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    s.down();
    await waitUntil(
      () => delays.length >= 5,
      () => `backoff delays: ${delays}`,
    );
    expect(w.items.has("default/a")).toBe(true);
    expect(emptied).toBe(false);
    // Doubling from 100 ms up to 400 ms, with jitter (random 0.5: three quarters of each step).
    expect(delays.slice(0, 5)).toEqual([75, 150, 300, 300, 300]);
    const st = c.status().watches[0]!;
    expect(st.errors).toBeGreaterThanOrEqual(5);
    expect(st.lastError?.message).toBeTruthy();
    s.up();
    s.apply(svc("b"));
    await waitUntil(() => w.items.has("default/b"), "b arrives once the API is back");
  });

  it("starts unsynced when the API is unreachable, and syncs once it is there", async () => {
    const s = await stub();
    s.apply(svc("a"));
    s.unavailable();
    const c = client(s);
    const w = c.watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    expect(await w.whenSynced(150)).toBe(false);
    expect(c.status().watches[0]!.lastError?.message).toContain("HTTP 503");
    s.up();
    expect(await w.whenSynced(2000)).toBe(true);
    expect(w.items.has("default/a")).toBe(true);
  });

  it("gives up on a slow API after the request timeout, and syncs once it answers in time", async () => {
    const s = await stub();
    s.apply(svc("a"));
    s.setLatency(1500);
    const c = client(s, { ...FAST, requestTimeoutMs: 200 });
    const w = c.watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    expect(await w.whenSynced(600)).toBe(false);
    expect(c.status().watches[0]!.lastError?.message).toMatch(/: no response in 200 ms$/);
    s.setLatency(0);
    expect(await w.whenSynced(3000)).toBe(true);
    expect(w.items.has("default/a")).toBe(true);
  });

  it("gives up on a watch that goes silent and opens another", async () => {
    const s = await stub({ bookmarkIntervalMs: 60_000 });
    const c = client(s, { ...FAST, idleTimeoutMs: 150 });
    const w = c.watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    await w.whenSynced(2000);
    await waitUntil(() => watchesOf(s, "services").length >= 3, "watches reopened");
    expect(c.status().watches[0]!.lastError?.message).toBe("the watch went silent");
    s.apply(svc("late"));
    await waitUntil(() => w.items.has("default/late"), "events still arrive");
  });

  it("moves its resourceVersion on bookmarks alone, so it resumes after a compaction without a list", async () => {
    const s = await stub({ bookmarkIntervalMs: 30 });
    s.apply(svc("a"));
    const c = client(s);
    const w = c.watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    await w.whenSynced(2000);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    const listed = c.status().watches[0]!.resourceVersion;
    // Writes the watch does not see (another namespace): only bookmarks tell it the
    // version moved on.
    for (let i = 0; i < 5; i++) s.apply(svc(`elsewhere-${i}`, 80, "other"));
    const latest = s.resourceVersion;
    expect(Number(latest)).toBeGreaterThan(Number(listed));
    await waitUntil(
      () => c.status().watches[0]!.resourceVersion === latest,
      () => `the bookmarked version: ${c.status().watches[0]!.resourceVersion}, stub at ${latest}`,
    );
    expect(w.items.size).toBe(1);
    // The history up to now is forgotten: the version from the list is too old now, the
    // bookmarked one is not.
    s.dropWatches();
    s.compact();
    s.apply(svc("after"));
    await waitUntil(() => w.items.has("default/after"), "the change after the compaction arrives");
    expect(lists(s, "services")).toHaveLength(1);
    const resumed = watchesOf(s, "services");
    expect(resumed.length).toBeGreaterThanOrEqual(2);
    expect(resumed[1]!.query.get("resourceVersion")).toBe(latest);
    expect(c.status().watches[0]!.lists).toBe(1);
  });

  it("is kept alive past its idle timeout by bookmarks", async () => {
    // A watch with no events for 4 idle timeouts; bookmarks every 25 ms reset the timer.
    // (The timeout is long enough that a busy machine's pauses do not end the watch.)
    const s = await stub({ bookmarkIntervalMs: 25 });
    s.apply(svc("a"));
    const c = client(s, { ...FAST, idleTimeoutMs: 400 });
    const w = c.watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    await w.whenSynced(2000);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    await new Promise((r) => setTimeout(r, 1600));
    expect(watchesOf(s, "services")).toHaveLength(1);
    expect(s.watchCount()).toBe(1);
    const st = c.status().watches[0]!;
    expect(st).toMatchObject({ watches: 1, errors: 0, phase: "watching" });
    expect(st.lastError).toBeUndefined();
    // The one watch still carries events.
    s.apply(svc("b"));
    await waitUntil(() => w.items.has("default/b"), "b arrives on the same watch");
    expect(watchesOf(s, "services")).toHaveLength(1);
  });

  it("is shared: two kinds asking for one selector make one list and one watch", async () => {
    const s = await stub();
    s.apply(svc("a"));
    const c = client(s);
    const w1 = c.watch(Services, { namespace: "default" });
    const w2 = c.watch(Services, { namespace: "default" });
    expect(w1).toBe(w2);
    cleanups.push(w1.subscribe(() => {}));
    cleanups.push(w2.subscribe(() => {}));
    await w1.whenSynced(2000);
    expect(lists(s, "services")).toHaveLength(1);
    // A different selector is another watch.
    const w3 = c.watch(Services, { namespace: "other" });
    cleanups.push(w3.subscribe(() => {}));
    await w3.whenSynced(2000);
    expect(lists(s, "services")).toHaveLength(2);
  });

  it("stops a while after its last subscriber leaves", async () => {
    const s = await stub();
    const c = client(s);
    const w = c.watch(Services, { namespace: "default" });
    const stop = w.subscribe(() => {});
    await w.whenSynced(2000);
    await waitUntil(() => s.watchCount() === 1, "the watch is open");
    stop();
    await waitUntil(() => s.watchCount() === 0, "the watch closed after the linger");
    expect(c.status().watches[0]!.phase).toBe("stopped");
  });

  it("reads EndpointSlices and Ingresses as the API returns them", async () => {
    const s = await stub();
    s.apply(
      endpointSlice({
        namespace: "shop",
        service: "cart",
        name: "cart-abcde",
        ports: [{ name: "http", port: 8080 }],
        endpoints: [
          { addresses: ["10.1.0.5"], nodeName: "node-1" },
          { addresses: ["10.1.0.6"], ready: false },
        ],
      }),
    );
    s.apply(
      ingress({
        namespace: "shop",
        name: "web",
        className: "lintel",
        rules: [
          {
            host: "shop.example",
            paths: [{ path: "/cart", pathType: "Prefix", service: "cart", port: "http" }],
          },
        ],
        tls: [{ hosts: ["shop.example"], secretName: "shop-tls" }],
      }),
    );
    const c = client(s);
    const slices = c.watch(EndpointSlices, { namespace: "shop" });
    const ings = c.watch(Ingresses);
    cleanups.push(
      slices.subscribe(() => {}),
      ings.subscribe(() => {}),
    );
    await slices.whenSynced(2000);
    await ings.whenSynced(2000);
    const view: EndpointSliceView = slices.items.get("shop/cart-abcde")!;
    expect(view).toEqual({
      namespace: "shop",
      name: "cart-abcde",
      service: "cart",
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: [
        {
          addresses: ["10.1.0.5"],
          ready: true,
          terminating: false,
          nodeName: "node-1",
          zone: undefined,
        },
        {
          addresses: ["10.1.0.6"],
          ready: false,
          terminating: false,
          nodeName: undefined,
          zone: undefined,
        },
      ],
    });
    const ing = ings.items.get("shop/web")!;
    expect(ing.className).toBe("lintel");
    expect(ing.rules).toEqual([
      {
        host: "shop.example",
        paths: [{ path: "/cart", pathType: "Prefix", backend: { service: "cart", port: "http" } }],
      },
    ]);
    expect(ing.tls).toEqual([{ hosts: ["shop.example"], secretName: "shop-tls" }]);
  });

  it("writes an object's status with a merge patch", async () => {
    const s = await stub();
    s.apply(ingress({ namespace: "shop", name: "web", rules: [] }));
    const c = client(s);
    await c.writer.patchStatus(Ingresses, "shop", "web", {
      loadBalancer: { ingress: [{ ip: "203.0.113.9" }] },
    });
    const stored = s.get("Ingress", "shop", "web") as { status?: unknown };
    expect(stored.status).toEqual({ loadBalancer: { ingress: [{ ip: "203.0.113.9" }] } });
    await expect(
      c.writer.patchStatus(Ingresses, "shop", "nope", { loadBalancer: {} }),
    ).rejects.toThrow(/HTTP 404/);
  });

  it("reports a refusal by the API in its state, with what it means", async () => {
    const s = await stub({ token: "t0ken" });
    const c = client(s);
    const w = c.watch(Services, { namespace: "default" });
    cleanups.push(w.subscribe(() => {}));
    expect(await w.whenSynced(200)).toBe(false);
    expect(c.status().watches[0]!.lastError?.message).toMatch(
      /HTTP 401 \(the API did not accept lintel's credentials\)/,
    );
  });
});
