// The io.l5d.ingress identifier through its schema, on a fake Kubernetes API: loading,
// following changes, the namespace option, and publishing status.loadBalancer.

import { afterEach, describe, expect, it } from "vitest";
import type { RequestView } from "../../gateway/identifiers/identifier.js";
import { type IngressIdentifier, ingressIdentifier } from "../../gateway/identifiers/ingress.js";
import {
  Ingresses,
  type IngressView,
  type LoadBalancerIngress,
  Services,
} from "../../gateway/k8s/resources.js";
import { createLogger } from "../../gateway/log.js";
import { Path } from "../../gateway/naming/index.js";
import { decode, decodeIssues, problemText } from "../namers/helpers.js";
import {
  backend,
  FakeKube,
  fakeClock,
  ingressView,
  path,
  pluginContext,
  rule,
  serviceView,
} from "../support/fake-kube.js";

const open: IngressIdentifier[] = [];
afterEach(() => {
  for (const i of open.splice(0)) i.close();
});

interface Setup {
  kube: FakeKube;
  clock: ReturnType<typeof fakeClock>;
  logs: string[];
  ident: IngressIdentifier;
  /** Where a request for `host` and `url` goes: the service name or `unidentified: reason`. */
  route(host: string | undefined, url: string): string;
}

function setup(raw: unknown = {}, kube = new FakeKube()): Setup {
  const clock = fakeClock();
  const logs: string[] = [];
  const log = createLogger({ level: "debug", sink: (line) => logs.push(line) });
  const ctx = { ...pluginContext({ kube, clock, log }), dstPrefix: Path.of("svc") };
  const ident = ingressIdentifier.create(decode(ingressIdentifier, raw), ctx) as IngressIdentifier;
  open.push(ident);
  const route = (host: string | undefined, url: string) => {
    const r = ident.identify(request(host, url));
    return r.ok ? r.dst.show : `unidentified: ${r.reason}`;
  };
  return { kube, clock, logs, ident, route };
}

function request(host: string | undefined, url: string): RequestView {
  return {
    method: "GET",
    url,
    httpVersion: "1.1",
    header: (name) => (name === "host" ? host : undefined),
  };
}

const web = (over: Partial<IngressView> = {}) =>
  ingressView({
    name: "web",
    rules: [rule("shop.example.com", path("Prefix", "/", backend("web", "http")))],
    ...over,
  });

/** Lets the writes in flight settle (the fake writer answers in a microtask). */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe("config", () => {
  it("has Linkerd's defaults plus lintel's", () => {
    expect(decode(ingressIdentifier, {})).toEqual({
      namespace: undefined,
      host: undefined,
      port: undefined,
      ignoreDefaultBackends: false,
      ingressClassAnnotation: "linkerd",
      claimUnclassed: true,
      publishService: undefined,
      publishAddresses: undefined,
    });
  });

  it("rejects a publishService that is not namespace/name", () => {
    expect(decodeIssues(ingressIdentifier, { publishService: "lintel" })).toEqual([
      'publishService: expected a Service as namespace/name, got "lintel"',
    ]);
  });

  it("rejects an address that is neither an IP nor a host name, and an empty list", () => {
    expect(decodeIssues(ingressIdentifier, { publishAddresses: ["not an address"] })).toEqual([
      'publishAddresses[0]: expected an IP address or host name, got "not an address"',
    ]);
    expect(decodeIssues(ingressIdentifier, { publishAddresses: [] })).toEqual([
      "publishAddresses: expected at least 1 item(s)",
    ]);
  });

  it("rejects an unknown key with a suggestion", () => {
    const issues = decodeIssues(ingressIdentifier, { ignoreDefaultBackend: true });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toContain("ignoreDefaultBackends");
  });

  it("validate() refuses publishService and publishAddresses together", () => {
    const both = decode(ingressIdentifier, {
      publishService: "lintel/lb",
      publishAddresses: ["203.0.113.7"],
    });
    expect(ingressIdentifier.validate?.(both).map(problemText)).toEqual([
      "publishAddresses set publishService or publishAddresses, not both",
    ]);
    const one = decode(ingressIdentifier, { publishService: "lintel/lb" });
    expect(ingressIdentifier.validate?.(one)).toEqual([]);
  });

  it("asks for the API at host/port only as given", () => {
    const kube = new FakeKube();
    setup({}, kube);
    setup({ host: "localhost", port: 8001 }, kube);
    setup({ port: 8002 }, kube);
    expect(kube.refs).toEqual([{}, { host: "localhost", port: 8001 }, { port: 8002 }]);
  });
});

describe("routing", () => {
  it("says the rules are not loaded before the first list", () => {
    const { kube, route } = setup();
    kube.set(Ingresses, web());
    expect(route("shop.example.com", "/")).toBe(
      "unidentified: Ingress rules are not loaded yet from the Kubernetes API (fake Kubernetes API)",
    );
  });

  it("routes once the watch has listed", () => {
    const { kube, route } = setup();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    expect(route("shop.example.com", "/cart?id=1")).toBe("/svc/default/http/web");
  });

  it("routes with a watch another kind had already listed", () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses, {});
    expect(setup({}, kube).route("shop.example.com", "/")).toBe("/svc/default/http/web");
  });

  it("names the host and path it could not match", () => {
    const { kube, route } = setup();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    expect(route("Other.Example.com:8080", "/x?y")).toBe(
      'unidentified: no Ingress rule matches host "other.example.com" and path "/x"',
    );
    expect(route(undefined, "/x")).toBe(
      'unidentified: no Ingress rule matches path "/x" (the request has no Host header)',
    );
  });

  it("follows changes without a new identifier", () => {
    const { kube, route } = setup();
    kube.markSynced(Ingresses);
    expect(route("shop.example.com", "/")).toMatch(/^unidentified: no Ingress rule/);
    kube.set(Ingresses, web());
    expect(route("shop.example.com", "/")).toBe("/svc/default/http/web");
    kube.set(
      Ingresses,
      web({ rules: [rule("shop.example.com", path("Prefix", "/", backend("web-v2", 8080)))] }),
    );
    expect(route("shop.example.com", "/")).toBe("/svc/default/8080/web-v2");
  });

  it("drops the routes of a deleted Ingress", () => {
    const { kube, route } = setup();
    kube.set(Ingresses, web());
    kube.set(
      Ingresses,
      ingressView({
        name: "fallback",
        defaultBackend: backend("fallback"),
        created: "2025-01-01T00:00:00Z",
      }),
    );
    kube.markSynced(Ingresses);
    expect(route("shop.example.com", "/")).toBe("/svc/default/http/web");
    kube.delete(Ingresses, "default/web");
    expect(route("shop.example.com", "/")).toBe("/svc/default/80/fallback");
    kube.delete(Ingresses, "default/fallback");
    expect(route("shop.example.com", "/")).toMatch(/^unidentified: no Ingress rule/);
  });

  it("watches one namespace with `namespace`", () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web({ namespace: "shop" }));
    kube.set(
      Ingresses,
      web({ rules: [rule("blog.example.com", path("Prefix", "/", backend("blog")))] }),
    );
    const { route } = setup({ namespace: "shop" }, kube);
    kube.markSynced(Ingresses);
    expect(route("shop.example.com", "/")).toBe("/svc/shop/http/web");
    expect(route("blog.example.com", "/")).toMatch(/^unidentified: no Ingress rule/);
    expect(kube.watch(Ingresses, { namespace: "shop" }).subscribers).toBe(1);
    expect(kube.watch(Ingresses).subscribers).toBe(0);
  });

  it("applies ingressClassAnnotation, claimUnclassed and ignoreDefaultBackends", () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web({ className: "edge" }));
    kube.set(Ingresses, ingressView({ name: "unclassed", defaultBackend: backend("any") }));
    kube.markSynced(Ingresses);
    const edge = setup({ ingressClassAnnotation: "edge", claimUnclassed: false }, kube);
    expect(edge.route("shop.example.com", "/")).toBe("/svc/default/http/web");
    expect(edge.route("other", "/")).toMatch(/^unidentified/);
    const linkerd = setup({}, kube);
    expect(linkerd.route("shop.example.com", "/")).toBe("/svc/default/80/any");
    const strict = setup({ ignoreDefaultBackends: true }, kube);
    expect(strict.route("shop.example.com", "/")).toMatch(/^unidentified/);
  });

  it("logs an invalid regular expression once, not at every rebuild", () => {
    const { kube, logs } = setup();
    const broken = web({
      rules: [rule(undefined, path("ImplementationSpecific", "/(", backend("web")))],
    });
    kube.set(Ingresses, broken);
    kube.markSynced(Ingresses);
    kube.set(Ingresses, ingressView({ name: "other" }));
    kube.set(Ingresses, { ...broken });
    const warnings = logs.filter((l) => l.includes("WARN"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('Ingress default/web: path "/(" (ImplementationSpecific)');
  });

  it("close() unsubscribes from the watch", () => {
    const { kube, ident } = setup();
    expect(kube.watch(Ingresses).subscribers).toBe(1);
    ident.close();
    expect(kube.watch(Ingresses).subscribers).toBe(0);
  });
});

describe("status.loadBalancer", () => {
  const writes = (kube: FakeKube) =>
    kube.writer!.calls.map((c) => ({
      ingress: `${c.namespace}/${c.name}`,
      status: c.status,
      failed: c.failed,
    }));

  /** What the API server would do after a write: the watch shows the new status. */
  const echo = (kube: FakeKube, ing: IngressView, lb: LoadBalancerIngress[]) =>
    kube.set(Ingresses, { ...ing, loadBalancer: lb });

  it("publishes publishAddresses into served Ingresses that show something else", async () => {
    const kube = new FakeKube();
    const same = web({
      name: "same",
      loadBalancer: [{ hostname: "lb.example.com" }, { ip: "203.0.113.7" }],
    });
    kube.set(Ingresses, web());
    kube.set(Ingresses, same);
    kube.set(Ingresses, web({ name: "nginx", className: "nginx" }));
    setup({ publishAddresses: ["203.0.113.7", "lb.example.com"] }, kube);
    expect(kube.writer!.calls).toEqual([]);
    kube.markSynced(Ingresses);
    await settle();
    const wanted = [{ ip: "203.0.113.7" }, { hostname: "lb.example.com" }];
    expect(writes(kube)).toEqual([
      { ingress: "default/web", status: { loadBalancer: { ingress: wanted } }, failed: false },
    ]);
    expect(kube.writer!.calls[0]!.type).toBe("ingresses");

    // A change before the write shows in the watch does not write again; nor does the echo.
    kube.set(Ingresses, ingressView({ name: "unrelated", className: "nginx" }));
    echo(kube, web(), wanted);
    kube.set(Ingresses, web({ loadBalancer: wanted, rules: [] }));
    await settle();
    expect(kube.writer!.calls).toHaveLength(1);

    // Someone else overwrites it: written back.
    kube.set(Ingresses, web({ loadBalancer: [{ ip: "10.0.0.1" }] }));
    await settle();
    expect(writes(kube).map((w) => w.ingress)).toEqual(["default/web", "default/web"]);
  });

  it("leaves alone Ingresses that stop being served", async () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    setup({ publishAddresses: ["203.0.113.7"] }, kube);
    await settle();
    echo(kube, web(), [{ ip: "203.0.113.7" }]);
    kube.set(Ingresses, web({ className: "nginx", loadBalancer: [{ ip: "10.9.9.9" }] }));
    await settle();
    expect(writes(kube).map((w) => w.ingress)).toEqual(["default/web"]);
  });

  it("follows the publishService's load balancer", async () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    setup({ publishService: "lintel/edge" }, kube);
    const selector = { namespace: "lintel", fieldSelector: "metadata.name=edge" };
    expect(kube.watch(Services, selector).subscribers).toBe(1);

    // Not listed yet, then listed without the Service: nothing to publish.
    await settle();
    kube.markSynced(Services, selector);
    await settle();
    expect(kube.writer!.calls).toEqual([]);

    const first = [{ ip: "198.51.100.1" }];
    kube.set(Services, serviceView({ namespace: "lintel", name: "edge", loadBalancer: first }));
    await settle();
    expect(writes(kube)).toEqual([
      { ingress: "default/web", status: { loadBalancer: { ingress: first } }, failed: false },
    ]);
    echo(kube, web(), first);

    const moved = [{ hostname: "edge.elb.example.com" }];
    kube.set(Services, serviceView({ namespace: "lintel", name: "edge", loadBalancer: moved }));
    await settle();
    expect(writes(kube).map((w) => w.status)).toEqual([
      { loadBalancer: { ingress: first } },
      { loadBalancer: { ingress: moved } },
    ]);
  });

  it("writes nothing without a writer (a worker thread)", async () => {
    const kube = new FakeKube({ writer: false });
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    const { route } = setup({ publishService: "lintel/edge" }, kube);
    await settle();
    expect(route("shop.example.com", "/")).toBe("/svc/default/http/web");
    expect(
      kube.watch(Services, { namespace: "lintel", fieldSelector: "metadata.name=edge" })
        .subscribers,
    ).toBe(0);
  });

  it("writes nothing without publishService or publishAddresses", async () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    setup({}, kube);
    await settle();
    expect(kube.writer!.calls).toEqual([]);
  });

  it("logs a failed write and tries again after the backoff", async () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web({ namespace: "shop" }));
    kube.markSynced(Ingresses);
    kube.writer!.failNext();
    const { clock, logs } = setup({ publishAddresses: ["203.0.113.7"] }, kube);
    await settle();
    expect(writes(kube).map((w) => w.failed)).toEqual([true]);
    const warning = logs.find((l) => l.includes("could not write the Ingress status"));
    expect(warning).toContain("ingress=shop/web");
    expect(warning).toContain('error="fake API: write refused"');

    clock.advance(999);
    await settle();
    expect(kube.writer!.calls).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(writes(kube).map((w) => w.failed)).toEqual([true, false]);
    expect(clock.pending).toBe(0);
  });

  it("tries a failed write again on the next change", async () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    kube.writer!.failNext();
    setup({ publishAddresses: ["203.0.113.7"] }, kube);
    await settle();
    kube.set(Ingresses, ingressView({ name: "another", className: "nginx" }));
    await settle();
    expect(writes(kube).map((w) => w.failed)).toEqual([true, false]);
  });

  it("backs off longer after repeated failures", async () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    kube.writer!.failNext(2);
    const { clock } = setup({ publishAddresses: ["203.0.113.7"] }, kube);
    await settle();
    clock.advance(1000);
    await settle();
    expect(kube.writer!.calls).toHaveLength(2);
    clock.advance(1999);
    await settle();
    expect(kube.writer!.calls).toHaveLength(2);
    clock.advance(1);
    await settle();
    expect(writes(kube).map((w) => w.failed)).toEqual([true, true, false]);
  });

  it("close() stops the status writes and the retry timer", async () => {
    const kube = new FakeKube();
    kube.set(Ingresses, web());
    kube.markSynced(Ingresses);
    kube.writer!.failNext();
    const { clock, ident } = setup({ publishAddresses: ["203.0.113.7"] }, kube);
    await settle();
    ident.close();
    expect(clock.pending).toBe(0);
    kube.set(Ingresses, web({ rules: [] }));
    await settle();
    expect(kube.writer!.calls).toHaveLength(1);
  });
});
