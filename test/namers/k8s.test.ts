// io.l5d.k8s and io.l5d.k8s.external against an in-memory Kubernetes API: what a name
// binds to as Services and EndpointSlices come, change and go.

import { afterEach, describe, expect, it } from "vitest";
import type { EndpointSliceView, EndpointView } from "../../gateway/k8s/resources.js";
import { EndpointSlices, Services } from "../../gateway/k8s/resources.js";
import { k8sNamer } from "../../gateway/namers/k8s.js";
import { k8sExternalNamer } from "../../gateway/namers/k8s-external.js";
import {
  type Addr,
  type BoundName,
  type Name,
  type NameTree,
  Path,
  readPath,
  type State,
  type Var,
} from "../../gateway/naming/index.js";
import { FakeKube, pluginContext, serviceView } from "../support/fake-kube.js";
import { decode, fakeDns, fakeResolver, waitUntil } from "./helpers.js";

const stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
});

function ep(ip: string, opts: Partial<EndpointView> = {}): EndpointView {
  return {
    addresses: [ip],
    ready: true,
    terminating: false,
    nodeName: undefined,
    zone: undefined,
    ...opts,
  };
}

function slice(
  name: string,
  service: string,
  endpoints: EndpointView[],
  ports: { name: string; port: number }[] = [{ name: "http", port: 8080 }],
  namespace = "default",
): EndpointSliceView {
  return {
    namespace,
    name,
    service,
    addressType: "IPv4",
    ports: ports.map((p) => ({ ...p, protocol: "TCP" })),
    endpoints,
  };
}

function web(ports = [{ name: "http", port: 80, targetPort: 8080 as number | string }]) {
  return serviceView({
    namespace: "default",
    name: "web",
    type: "ClusterIP",
    labels: { version: "v1" },
    ports: ports.map((p) => ({ ...p, protocol: "TCP" })),
  });
}

/** Observes a Var for the rest of the test (namers start their watches when observed). */
function live<T>(v: Var<T>): Var<T> {
  stops.push(v.observe(() => {}));
  return v;
}

function namer(kube: FakeKube, config: Record<string, unknown> = {}) {
  return k8sNamer.create(decode(k8sNamer, config), {
    ...pluginContext({ kube }),
    prefix: Path.of("#", "io.l5d.k8s"),
    resolver: fakeResolver(fakeDns().lookup),
  });
}

function bound(s: State<NameTree<Name>>): BoundName {
  if (s.status !== "ok" || s.value.kind !== "leaf" || s.value.value.kind !== "bound") {
    throw new Error(`not bound: ${JSON.stringify(s)}`);
  }
  return s.value.value;
}

function addrs(a: Addr): string[] {
  if (a.kind !== "bound") return [a.kind];
  return a.addresses
    .map((x) => `${x.host}:${x.port}${x.meta.nodeName ? `@${x.meta.nodeName}` : ""}`)
    .sort();
}

function synced(kube: FakeKube) {
  kube.markSynced(Services);
  kube.markSynced(EndpointSlices);
}

describe("io.l5d.k8s", () => {
  it("is pending until the namespace is listed, then binds the ready endpoints", () => {
    const kube = new FakeKube();
    const n = namer(kube);
    const act = live(n.lookup(readPath("/default/http/web/users/1")));
    expect(act.sample().status).toBe("pending");
    kube.set(Services, web());
    kube.set(
      EndpointSlices,
      slice("web-a", "web", [
        ep("10.0.1.5", { nodeName: "node-1" }),
        ep("10.0.2.7", { ready: false }),
      ]),
    );
    kube.set(EndpointSlices, slice("web-b", "web", [ep("10.0.3.9")]));
    synced(kube);
    const b = bound(act.sample());
    expect(b.id.show).toBe("/#/io.l5d.k8s/default/http/web");
    expect(b.residual.show).toBe("/users/1");
    expect(addrs(live(b.addr).sample())).toEqual(["10.0.1.5:8080@node-1", "10.0.3.9:8080"]);
  });

  it("is neg for a Service that does not exist and an empty set for one without endpoints", () => {
    const kube = new FakeKube();
    const n = namer(kube);
    kube.set(Services, web());
    synced(kube);
    expect(live(n.lookup(readPath("/default/http/nobody"))).sample()).toEqual({
      status: "ok",
      value: { kind: "neg" },
    });
    const b = bound(live(n.lookup(readPath("/default/http/web"))).sample());
    expect(live(b.addr).sample()).toEqual({ kind: "bound", addresses: [] });
  });

  it("maps a port number to the Service port's endpoints, and is neg for an unknown port", () => {
    const kube = new FakeKube();
    const n = namer(kube);
    kube.set(Services, web([{ name: "http", port: 80, targetPort: "web" }]));
    kube.set(
      EndpointSlices,
      slice("web-a", "web", [ep("10.0.1.5")], [{ name: "http", port: 9000 }]),
    );
    synced(kube);
    const b = bound(live(n.lookup(readPath("/default/80/web"))).sample());
    expect(addrs(live(b.addr).sample())).toEqual(["10.0.1.5:9000"]);
    expect(live(n.lookup(readPath("/default/81/web"))).sample()).toEqual({
      status: "ok",
      value: { kind: "neg" },
    });
    expect(live(n.lookup(readPath("/default/admin/web"))).sample()).toEqual({
      status: "ok",
      value: { kind: "neg" },
    });
  });

  it("follows endpoint changes on the same bound name (balancers keep their Var)", () => {
    const kube = new FakeKube();
    const n = namer(kube);
    kube.set(Services, web());
    kube.set(EndpointSlices, slice("web-a", "web", [ep("10.0.1.5")]));
    synced(kube);
    const act = live(n.lookup(readPath("/default/http/web")));
    const b = bound(act.sample());
    const addr = live(b.addr);
    const seen: string[][] = [];
    stops.push(addr.observe((a) => seen.push(addrs(a))));
    kube.set(EndpointSlices, slice("web-a", "web", [ep("10.0.1.5"), ep("10.0.1.6")]));
    kube.set(EndpointSlices, slice("web-b", "web", [ep("10.0.2.1")]));
    kube.delete(EndpointSlices, "default/web-a");
    expect(seen).toEqual([
      ["10.0.1.5:8080", "10.0.1.6:8080"],
      ["10.0.1.5:8080", "10.0.1.6:8080", "10.0.2.1:8080"],
      ["10.0.2.1:8080"],
    ]);
    expect(bound(act.sample())).toBe(b);
    // Another Service's slices do not disturb this one.
    kube.set(EndpointSlices, slice("db-a", "db", [ep("10.0.9.9")]));
    expect(seen).toHaveLength(3);
    kube.delete(Services, "default/web");
    expect(act.sample()).toEqual({ status: "ok", value: { kind: "neg" } });
  });

  it("matches names without regard to case, as Linkerd did", () => {
    const kube = new FakeKube();
    const n = namer(kube);
    kube.set(Services, web());
    synced(kube);
    expect(bound(live(n.lookup(readPath("/Default/HTTP/Web"))).sample()).id.show).toBe(
      "/#/io.l5d.k8s/default/http/web",
    );
  });

  it("with labelSelector, names carry the label value the Service must have", () => {
    const kube = new FakeKube();
    const n = namer(kube, { labelSelector: "version" });
    kube.set(Services, web());
    kube.set(EndpointSlices, slice("web-a", "web", [ep("10.0.1.5")]));
    synced(kube);
    const b = bound(live(n.lookup(readPath("/default/http/web/v1/x"))).sample());
    expect(b.id.show).toBe("/#/io.l5d.k8s/default/http/web/v1");
    expect(b.residual.show).toBe("/x");
    expect(live(n.lookup(readPath("/default/http/web/v2"))).sample()).toEqual({
      status: "ok",
      value: { kind: "neg" },
    });
    expect(n.lookup(readPath("/default/http/web")).sample()).toEqual({
      status: "ok",
      value: { kind: "neg" },
    });
  });

  it("asks for the API its host and port name, else the process's", () => {
    const kube = new FakeKube();
    namer(kube, { host: "127.0.0.1", port: 8001 });
    namer(kube);
    expect(kube.refs).toEqual([
      { host: "127.0.0.1", port: 8001 },
      { host: undefined, port: undefined },
    ]);
  });

  it("stops watching when no name of the namespace is observed", () => {
    const kube = new FakeKube();
    const n = namer(kube);
    synced(kube);
    const stop = n.lookup(readPath("/default/http/web")).observe(() => {});
    expect(kube.watch(Services, { namespace: "default" }).subscribers).toBe(1);
    stop();
    expect(kube.watch(Services, { namespace: "default" }).subscribers).toBe(0);
    expect(kube.watch(EndpointSlices, { namespace: "default" }).subscribers).toBe(0);
  });
});

describe("io.l5d.k8s.external", () => {
  function external(kube: FakeKube) {
    const dns = fakeDns();
    dns.set("lb.example.com", ["198.51.100.7"]);
    return k8sExternalNamer.create(decode(k8sExternalNamer, {}), {
      ...pluginContext({ kube }),
      prefix: Path.of("#", "io.l5d.k8s.external"),
      resolver: fakeResolver(dns.lookup),
    });
  }

  it("binds a Service's load balancer addresses on its port", async () => {
    const kube = new FakeKube();
    const n = external(kube);
    kube.set(
      Services,
      serviceView({
        namespace: "shop",
        name: "api",
        ports: [{ name: "https", port: 443, targetPort: 8443, protocol: "TCP" }],
        loadBalancer: [{ ip: "203.0.113.10" }],
      }),
    );
    kube.markSynced(Services);
    const b = bound(live(n.lookup(readPath("/shop/https/api"))).sample());
    expect(b.id.show).toBe("/#/io.l5d.k8s.external/shop/https/api");
    const addr = live(b.addr);
    expect(addrs(addr.sample())).toEqual(["203.0.113.10:443"]);
    kube.set(
      Services,
      serviceView({
        namespace: "shop",
        name: "api",
        ports: [{ name: "https", port: 443, targetPort: 8443, protocol: "TCP" }],
        loadBalancer: [{ hostname: "lb.example.com" }],
      }),
    );
    await waitUntil(
      () => addrs(addr.sample())[0] === "198.51.100.7:443",
      "the LB host name resolved",
    );
    expect(live(n.lookup(readPath("/shop/http/api"))).sample()).toEqual({
      status: "ok",
      value: { kind: "neg" },
    });
    expect(live(n.lookup(readPath("/shop/443/none"))).sample()).toEqual({
      status: "ok",
      value: { kind: "neg" },
    });
  });
});
