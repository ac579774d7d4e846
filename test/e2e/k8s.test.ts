// lintel in a Kubernetes cluster, end to end against the API stub (no API server can run
// here; the stub speaks the API's list/watch): the edge → node proxy → pod path, scaling
// under load and the API going down (each served on the main thread, and on a worker
// thread fed by the control thread's snapshots), dtabs from a ConfigMap, and the admin
// server's view.
// Pods, node proxies and edges are real servers and lintels on loopback.

import { afterEach, describe, expect, it } from "vitest";
import type { ClientsView } from "../../gateway/admin/clients.js";
import { type KubeApiStub, startKubeApiStub } from "../support/kube-api-stub.js";
import { configMap, endpointSlice, service } from "../support/kube-objects.js";
import {
  call,
  cleanup,
  eventually,
  type Lintel,
  metricsJson,
  onCleanup,
  startLintel,
  startUpstream,
  type Upstream,
} from "./harness.js";

afterEach(cleanup);

async function kubeStub(): Promise<KubeApiStub> {
  const s = await startKubeApiStub();
  onCleanup(() => s.close());
  return s;
}

/** The `kubernetes` block pointing at the stub, like a kubectl proxy. */
const kubernetesAt = (s: KubeApiStub) =>
  `kubernetes: {mode: proxy, host: 127.0.0.1, port: ${s.port}, initialSyncTimeoutMs: 3000}`;

/** One pod (or node proxy) as its own EndpointSlice: on loopback, each has its own port. */
function podSlice(
  svc: string,
  name: string,
  up: { port: number },
  node: string,
  opts: { ready?: boolean; portName?: string; namespace?: string } = {},
) {
  return endpointSlice({
    namespace: opts.namespace ?? "default",
    service: svc,
    name,
    ports: [{ name: opts.portName ?? "http", port: up.port }],
    endpoints: [{ addresses: ["127.0.0.1"], nodeName: node, ready: opts.ready ?? true }],
  });
}

/** Requests in a loop until stopped: how many went where, and what failed. */
function requestLoop(port: number, host: string, concurrency = 4) {
  let stopped = false;
  const by = new Map<string, number>();
  const failures: string[] = [];
  const worker = async () => {
    while (!stopped) {
      try {
        const r = await call(port, { headers: { host } });
        if (r.status !== 200) failures.push(`${r.status} ${r.headers["l5d-err"] ?? r.text}`);
        const who = String(r.headers["x-upstream"]);
        by.set(who, (by.get(who) ?? 0) + 1);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    by,
    failures,
    count: (who: string) => by.get(who) ?? 0,
    total: () => [...by.values()].reduce((a, b) => a + b, 0) + failures.length,
    async stop() {
      stopped = true;
      await Promise.all(workers);
    },
  };
}

/** Waits until `who` has answered at least `n` more requests of the loop. */
async function reaches(loop: ReturnType<typeof requestLoop>, who: string, n = 5) {
  const start = loop.count(who);
  await eventually(() => loop.count(who) >= start + n, 5000, `requests to reach ${who}`);
}

function webService(s: KubeApiStub, namespace = "default") {
  s.apply(
    service({ namespace, name: "web", ports: [{ name: "http", port: 80, targetPort: 8080 }] }),
  );
}

/**
 * Where the edge serves requests: the main thread (the net engine, `workers: 0`), or a
 * worker thread (the uws engine, the only one that runs in workers), which gets every
 * endpoint change as a snapshot from the control thread's watch.
 */
interface Placement {
  readonly label: string;
  readonly workers: number;
  /** Extra keys of the server. */
  readonly server: string;
}

const PLACEMENTS: readonly Placement[] = [
  { label: "main thread, net engine", workers: 0, server: "" },
  { label: "worker thread, uws engine", workers: 1, server: ", engine: uws" },
];

async function edge(
  s: KubeApiStub,
  opts: { extra?: string; placement?: Placement } = {},
): Promise<Lintel> {
  const p = opts.placement ?? PLACEMENTS[0]!;
  const l = await startLintel(`
workers: ${p.workers}
${kubernetesAt(s)}
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.k8s
routers:
- protocol: http
  label: edge
  dtab: /svc => /#/io.l5d.k8s/default/http;
${opts.extra ?? ""}
  servers:
  - {ip: 127.0.0.1, port: 0, clearContext: true${p.server}}
`);
  // The placement asked for is the one serving.
  expect(l.runtime.pool !== undefined).toBe(p.workers > 0);
  return l;
}

/**
 * With workers, waits until they report (every second) having served all of the
 * loop's `requests`: the requests took the worker path, not the control thread's.
 */
async function servedOnWorkers(e: Lintel, p: Placement, requests: number): Promise<void> {
  if (p.workers === 0) return;
  const served = () => e.runtime.pool!.stats.reduce((n, w) => n + w.requests, 0);
  await eventually(
    () => served() >= requests,
    3000,
    `the workers to have served ${requests} requests (they report ${served()})`,
  );
}

/**
 * Waits until the balancers of every thread that serves (the control thread's, or each
 * worker's) hold endpoints, none of them the one on `port`.
 */
async function leftTheBalancers(e: Lintel, port: number): Promise<void> {
  const gone = async () => {
    const view = JSON.parse(
      (await call(e.adminPort, { path: "/admin/clients.json" })).text,
    ) as ClientsView;
    return (
      view.threads.length > 0 &&
      view.threads.every((t) => {
        if (!("routers" in t)) return false;
        const addresses = t.routers.flatMap((r) =>
          r.clients.flatMap((c) => c.endpoints.map((x) => x.address)),
        );
        return addresses.length > 0 && !addresses.includes(`127.0.0.1:${port}`);
      })
    );
  };
  await eventually(gone, 5000, `127.0.0.1:${port} to leave every thread's balancer`);
}

describe("the edge to node proxy to pod path", () => {
  it("sends each request to the node proxy on its pod's node, which delivers to the pod", async () => {
    const s = await kubeStub();
    const pod1 = await startUpstream("pod-1");
    const pod2 = await startUpstream("pod-2");
    webService(s);
    s.apply(podSlice("web", "web-node-1", pod1, "node-1"));
    s.apply(podSlice("web", "web-node-2", pod2, "node-2"));

    // A node proxy per node (Linkerd's incoming router with io.l5d.k8s.localnode).
    const proxies: Lintel[] = [];
    for (const node of ["node-1", "node-2"]) {
      process.env.NODE_NAME = node;
      proxies.push(
        await startLintel(`
${kubernetesAt(s)}
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.k8s
routers:
- protocol: http
  label: incoming
  dtab: /svc => /#/io.l5d.k8s/default/http;
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.k8s.localnode
      hostNetwork: true
  servers:
  - {ip: 127.0.0.1, port: 0}
`),
      );
    }
    delete process.env.NODE_NAME;
    s.apply(
      service({ namespace: "lintel", name: "l5d", ports: [{ name: "incoming", port: 4141 }] }),
    );
    for (const [i, p] of proxies.entries()) {
      s.apply(
        podSlice("l5d", `l5d-node-${i + 1}`, { port: p.port() }, `node-${i + 1}`, {
          portName: "incoming",
          namespace: "lintel",
        }),
      );
    }

    const e = await edge(s, {
      extra: `  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.k8s.daemonset
      namespace: lintel
      service: l5d
      port: incoming
      hostNetwork: true`,
    });
    const replies = await Promise.all(
      Array.from({ length: 20 }, () => call(e.port(), { headers: { host: "web" } })),
    );
    expect(replies.map((r) => `${r.status} ${r.headers["l5d-err"] ?? ""}`)).toEqual(
      Array(20).fill("200 "),
    );
    // Each pod's requests came through the node proxy on its node, and no other.
    const served = (p: Lintel) =>
      metricsJson(p).then((m) => m["rt/incoming/service/svc/web/requests"] ?? 0);
    expect(await served(proxies[0]!)).toBe(pod1.seen.length);
    expect(await served(proxies[1]!)).toBe(pod2.seen.length);
    expect(pod1.seen.length).toBeGreaterThan(0);
    expect(pod2.seen.length).toBeGreaterThan(0);
    expect(pod1.seen[0]!.headers["l5d-dst-client"]).toBe(
      "/%/io.l5d.k8s.localnode/#/io.l5d.k8s/default/http/web",
    );
    // Two proxies on the way: two Via entries.
    expect(String(pod1.seen[0]!.headers.via).split(",")).toHaveLength(2);
  });
});

/** Scales Service web from one pod to three and back to two under a request loop. */
async function scalingLosesNoRequest(p: Placement): Promise<void> {
  const s = await kubeStub();
  const pods: Upstream[] = [];
  for (const n of [1, 2, 3]) pods.push(await startUpstream(`pod-${n}`));
  webService(s);
  s.apply(podSlice("web", "web-1", pods[0]!, "node-1"));
  const e = await edge(s, { placement: p });
  const loop = requestLoop(e.port(), "web");
  onCleanup(() => loop.stop());
  await reaches(loop, "pod-1");
  // Up: two more pods.
  s.apply(podSlice("web", "web-2", pods[1]!, "node-1"));
  s.apply(podSlice("web", "web-3", pods[2]!, "node-2"));
  await reaches(loop, "pod-2");
  await reaches(loop, "pod-3");
  // Down, as Kubernetes does it: the endpoint turns not ready, then the pod ends.
  s.apply(podSlice("web", "web-1", pods[0]!, "node-1", { ready: false }));
  // Once the change is in every balancer (and the requests already sent to pod-1 have
  // their answers), pod-1 gets nothing more.
  await leftTheBalancers(e, pods[0]!.port);
  await new Promise((r) => setTimeout(r, 100));
  const before = loop.count("pod-1");
  await reaches(loop, "pod-2", 20);
  expect(loop.count("pod-1")).toBe(before);
  await new Promise<void>((r) => pods[0]!.server.close(() => r()));
  s.remove("EndpointSlice", "default", "web-1");
  await reaches(loop, "pod-3", 20);
  await loop.stop();
  expect(loop.failures).toEqual([]);
  expect(loop.count("pod-2") + loop.count("pod-3")).toBeGreaterThan(40);
  await servedOnWorkers(e, p, loop.total());
}

/** The API goes down under a request loop, then comes back with a new pod. */
async function apiDownKeepsTrafficFlowing(p: Placement): Promise<void> {
  const s = await kubeStub();
  const pod1 = await startUpstream("pod-1");
  const pod2 = await startUpstream("pod-2");
  webService(s);
  s.apply(podSlice("web", "web-1", pod1, "node-1"));
  const e = await edge(s, { placement: p });
  const loop = requestLoop(e.port(), "web", 2);
  onCleanup(() => loop.stop());
  await reaches(loop, "pod-1");
  s.down();
  await new Promise((r) => setTimeout(r, 1500));
  await reaches(loop, "pod-1", 20);
  const k8s = (await call(e.adminPort, { path: "/admin/kubernetes.json" })).text;
  expect(k8s).toContain('"lastError"');
  s.up();
  s.apply(podSlice("web", "web-2", pod2, "node-2"));
  await reaches(loop, "pod-2");
  await loop.stop();
  expect(loop.failures).toEqual([]);
  await servedOnWorkers(e, p, loop.total());
}

describe("endpoints that change under load", () => {
  it.each(PLACEMENTS)("scaling the Service up and down loses no request ($label)", (p) =>
    scalingLosesNoRequest(p),
  );

  it.each(PLACEMENTS)(
    "keeps routing with what it knew while the API is down, and catches up when it is back ($label)",
    (p) => apiDownKeepsTrafficFlowing(p),
  );
});

describe("dtabs from a ConfigMap", () => {
  it("routes by the ConfigMap's dtab and re-routes when it changes, keeping the last good one", async () => {
    const s = await kubeStub();
    const a = await startUpstream("a");
    const b = await startUpstream("b");
    const dtab = (port: number) => `/svc => /$/inet/127.0.0.1/${port};`;
    s.apply(
      configMap({ namespace: "routing", name: "dtabs", data: { "edge.dtab": dtab(a.port) } }),
    );
    const l = await startLintel(`
${kubernetesAt(s)}
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  interpreter:
    kind: io.l5d.k8s.configMap
    namespace: routing
    name: dtabs
    filename: edge.dtab
  servers:
  - {ip: 127.0.0.1, port: 0}
`);
    expect((await call(l.port(), { headers: { host: "x" } })).headers["x-upstream"]).toBe("a");
    s.apply(
      configMap({ namespace: "routing", name: "dtabs", data: { "edge.dtab": dtab(b.port) } }),
    );
    await eventually(
      async () => (await call(l.port(), { headers: { host: "x" } })).headers["x-upstream"] === "b",
      5000,
      "the new dtab to route",
    );
    s.apply(configMap({ namespace: "routing", name: "dtabs", data: { "edge.dtab": "/svc =>" } }));
    await eventually(
      () => l.logs.some((x) => x.includes("dtab edit rejected; keeping the last good dtab")),
      5000,
      "the bad edit to be logged",
    );
    expect((await call(l.port(), { headers: { host: "x" } })).headers["x-upstream"]).toBe("b");
  });
});

describe("the admin server", () => {
  it("shows the namer's watches at /namer_state and every watch at /admin/kubernetes.json", async () => {
    const s = await kubeStub();
    const pod = await startUpstream("pod");
    webService(s);
    s.apply(podSlice("web", "web-1", pod, "node-1"));
    const e = await edge(s);
    expect((await call(e.port(), { headers: { host: "web" } })).status).toBe(200);
    const state = JSON.parse(
      (await call(e.adminPort, { path: "/namer_state/io.l5d.k8s.json" })).text,
    );
    expect(state.api).toBe(`http://127.0.0.1:${s.port}`);
    expect(state.namespaces.default.endpointslices).toMatchObject({
      resource: "endpointslices.discovery.k8s.io",
      namespace: "default",
      synced: true,
      objects: 1,
      phase: "watching",
    });
    expect(state.namespaces.default.services.synced).toBe(true);
    const all = JSON.parse((await call(e.adminPort, { path: "/admin/kubernetes.json" })).text);
    expect(all).toHaveLength(1);
    expect(all[0].auth).toBe("none");
    expect(all[0].watches.map((w: { resource: string }) => w.resource).sort()).toEqual([
      "endpointslices.discovery.k8s.io",
      "services",
    ]);
    const missing = await call(e.adminPort, { path: "/namer_state/io.l5d.nope.json" });
    expect(missing.status).toBe(404);
    expect(missing.text).toContain("/namer_state/io.l5d.k8s.json");
  });
});
