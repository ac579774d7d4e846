// The io.l5d.ingress routing table, table-driven: class selection, host normalization,
// Kubernetes path types (Linkerd 1's regex for ImplementationSpecific), precedence, and
// the fall-through from exact host to wildcard to host-less rules to the default backend.

import { describe, expect, it } from "vitest";
import {
  buildIngressTable,
  type IngressTableOptions,
  requestHost,
  requestPath,
  servesIngress,
} from "../../gateway/identifiers/ingress-rules.js";
import type { IngressView } from "../../gateway/k8s/resources.js";
import { Path } from "../../gateway/naming/index.js";
import { backend, ingressView, path, rule } from "../support/fake-kube.js";

const OPTIONS: IngressTableOptions = {
  dstPrefix: Path.of("svc"),
  ingressClass: "linkerd",
  claimUnclassed: true,
  ignoreDefaultBackends: false,
};

/** Where (Host header, request target) goes: the service name, or "none". */
function router(ingresses: IngressView[], opts: Partial<IngressTableOptions> = {}) {
  const table = buildIngressTable(ingresses, { ...OPTIONS, ...opts });
  return (hostHeader: string | undefined, url: string): string =>
    table.match(requestHost(hostHeader), requestPath(url))?.dst.show ?? "none";
}

/** One host-less Ingress with these paths, each to the Service named after its case. */
const hostless = (...paths: ReturnType<typeof path>[]) =>
  router([ingressView({ name: "ing", rules: [rule(undefined, ...paths)] })]);

describe("requestHost", () => {
  it.each([
    ["example.com", "example.com"],
    ["Shop.Example.COM", "shop.example.com"],
    ["example.com:8080", "example.com"],
    ["EXAMPLE.com:443", "example.com"],
    ["[::1]:8080", "::1"],
    ["[2001:DB8::1]", "2001:db8::1"],
    ["2001:db8::1", "2001:db8::1"],
    ["10.0.0.1:80", "10.0.0.1"],
    ["", undefined],
    [undefined, undefined],
  ])("%j → %j", (header, want) => {
    expect(requestHost(header)).toBe(want);
  });
});

describe("requestPath", () => {
  it.each([
    ["/a/b?x=/y", "/a/b"],
    ["/", "/"],
    ["/a/", "/a/"],
    ["?q=1", "/"],
  ])("%j → %j", (url, want) => {
    expect(requestPath(url)).toBe(want);
  });
});

describe("path types", () => {
  const cases: {
    name: string;
    route: ReturnType<typeof hostless>;
    want: [url: string, dst: string][];
  }[] = [
    {
      name: "Exact: equal, case-sensitive, query ignored",
      route: hostless(path("Exact", "/foo", backend("a"))),
      want: [
        ["/foo", "/svc/default/80/a"],
        ["/foo?x=1", "/svc/default/80/a"],
        ["/foo/", "none"],
        ["/foo/bar", "none"],
        ["/FOO", "none"],
        ["/", "none"],
      ],
    },
    {
      name: "Prefix: element-wise by /",
      route: hostless(path("Prefix", "/foo", backend("a"))),
      want: [
        ["/foo", "/svc/default/80/a"],
        ["/foo/", "/svc/default/80/a"],
        ["/foo/bar", "/svc/default/80/a"],
        ["/foo/bar?q", "/svc/default/80/a"],
        ["/foobar", "none"],
        ["/fo", "none"],
        ["/Foo", "none"],
      ],
    },
    {
      name: "Prefix: a trailing / in the rule is ignored",
      route: hostless(path("Prefix", "/foo/", backend("a"))),
      want: [
        ["/foo", "/svc/default/80/a"],
        ["/foo/", "/svc/default/80/a"],
        ["/foo/bar", "/svc/default/80/a"],
        ["/foobar", "none"],
      ],
    },
    {
      name: "Prefix: several elements",
      route: hostless(path("Prefix", "/foo/bar", backend("a"))),
      want: [
        ["/foo/bar", "/svc/default/80/a"],
        ["/foo/bar/baz", "/svc/default/80/a"],
        ["/foo/barbaz", "none"],
        ["/foo", "none"],
      ],
    },
    {
      name: "Prefix: / matches every path",
      route: hostless(path("Prefix", "/", backend("a"))),
      want: [
        ["/", "/svc/default/80/a"],
        ["/x", "/svc/default/80/a"],
        ["/x/y/?z", "/svc/default/80/a"],
      ],
    },
    {
      name: "ImplementationSpecific: a regex matching the whole path",
      route: hostless(
        path("ImplementationSpecific", "/api/v[0-9]+/.*", backend("api")),
        path("ImplementationSpecific", "/foo", backend("foo")),
      ),
      want: [
        ["/api/v1/users", "/svc/default/80/api"],
        ["/api/v12/", "/svc/default/80/api"],
        ["/api/v1", "none"],
        ["/x/api/v1/users", "none"],
        ["/foo", "/svc/default/80/foo"],
        ["/foo/bar", "none"],
        ["/foobar", "none"],
      ],
    },
    {
      name: "no rule path: every path",
      route: hostless(path("ImplementationSpecific", undefined, backend("a"))),
      want: [
        ["/", "/svc/default/80/a"],
        ["/anything/at/all", "/svc/default/80/a"],
      ],
    },
    {
      name: "the longest rule path wins",
      route: hostless(
        path("Prefix", "/", backend("root")),
        path("Prefix", "/api", backend("api")),
        path("Prefix", "/api/v2", backend("v2")),
      ),
      want: [
        ["/api/v2/x", "/svc/default/80/v2"],
        ["/api/v2", "/svc/default/80/v2"],
        ["/api/v3", "/svc/default/80/api"],
        ["/api", "/svc/default/80/api"],
        ["/other", "/svc/default/80/root"],
      ],
    },
    {
      name: "a longer regex beats a shorter prefix",
      route: hostless(
        path("Prefix", "/api", backend("prefix")),
        path("ImplementationSpecific", "/api/.*", backend("regex")),
      ),
      want: [
        ["/api/x", "/svc/default/80/regex"],
        ["/api", "/svc/default/80/prefix"],
      ],
    },
    {
      name: "equal length: Exact, then Prefix, then ImplementationSpecific",
      route: hostless(
        path("ImplementationSpecific", "/a.*", backend("regex")),
        path("Prefix", "/a/b", backend("prefix")),
        path("Exact", "/a/b", backend("exact")),
        path("ImplementationSpecific", "/a/c", backend("regex-c")),
        path("Prefix", "/a/c", backend("prefix-c")),
      ),
      want: [
        ["/a/b", "/svc/default/80/exact"],
        ["/a/b/x", "/svc/default/80/prefix"],
        ["/a/c", "/svc/default/80/prefix-c"],
        ["/ax", "/svc/default/80/regex"],
      ],
    },
    {
      name: "a Prefix's trailing / does not count toward its length",
      route: hostless(
        path("Prefix", "/a/", backend("prefix")),
        path("Exact", "/a", backend("exact")),
      ),
      want: [
        ["/a", "/svc/default/80/exact"],
        ["/a/", "/svc/default/80/prefix"],
      ],
    },
    {
      name: "resource backends are skipped",
      route: hostless(
        path("Prefix", "/static", undefined),
        path("Prefix", "/", backend("web")),
        path("Exact", "/bucket", undefined),
      ),
      want: [
        ["/static/logo.png", "/svc/default/80/web"],
        ["/bucket", "/svc/default/80/web"],
      ],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      expect(c.want.map(([url]) => [url, c.route("example.com", url)])).toEqual(c.want);
    });
  }
});

describe("ties between Ingresses", () => {
  const older = ingressView({
    name: "older",
    created: "2024-01-01T00:00:00Z",
    rules: [rule(undefined, path("Prefix", "/a", backend("older")))],
  });
  const newer = ingressView({
    name: "newer",
    created: "2024-06-01T00:00:00Z",
    rules: [rule(undefined, path("Prefix", "/a", backend("newer")))],
  });

  it("the older Ingress wins, whatever order the watch lists them in", () => {
    expect(router([newer, older])(undefined, "/a")).toBe("/svc/default/80/older");
    expect(router([older, newer])(undefined, "/a")).toBe("/svc/default/80/older");
  });

  it("the type still beats the age", () => {
    const exactNewer = ingressView({
      ...newer,
      rules: [rule(undefined, path("Exact", "/a", backend("newer")))],
    });
    expect(router([older, exactNewer])(undefined, "/a")).toBe("/svc/default/80/newer");
  });

  it("at the same creation time, namespace/name decides", () => {
    const a = ingressView({
      namespace: "a-team",
      name: "z",
      rules: [rule(undefined, path("Prefix", "/", backend("web")))],
    });
    const b = ingressView({ ...a, namespace: "b-team", name: "a" });
    expect(router([b, a])(undefined, "/")).toBe("/svc/a-team/80/web");
  });

  it("merges the rules of one host from several Ingresses", () => {
    const one = ingressView({
      name: "one",
      rules: [rule("shop.example.com", path("Prefix", "/cart", backend("cart")))],
    });
    const two = ingressView({
      name: "two",
      rules: [rule("shop.example.com", path("Prefix", "/", backend("web")))],
    });
    const route = router([one, two]);
    expect(route("shop.example.com", "/cart/1")).toBe("/svc/default/80/cart");
    expect(route("shop.example.com", "/")).toBe("/svc/default/80/web");
  });
});

describe("hosts", () => {
  const route = router([
    ingressView({
      name: "hosts",
      rules: [
        rule("foo.example.com", path("Prefix", "/", backend("exact"))),
        rule("*.example.com", path("Prefix", "/", backend("wild"))),
        rule(undefined, path("Prefix", "/", backend("any"))),
      ],
    }),
  ]);

  it.each([
    ["foo.example.com", "/svc/default/80/exact"],
    ["FOO.Example.COM", "/svc/default/80/exact"],
    ["foo.example.com:8443", "/svc/default/80/exact"],
    ["bar.example.com", "/svc/default/80/wild"],
    ["Bar.EXAMPLE.com:80", "/svc/default/80/wild"],
    ["example.com", "/svc/default/80/any"],
    ["a.b.example.com", "/svc/default/80/any"],
    [".example.com", "/svc/default/80/any"],
    ["other.org", "/svc/default/80/any"],
    ["[2001:db8::1]:8080", "/svc/default/80/any"],
    ["10.1.2.3", "/svc/default/80/any"],
    [undefined, "/svc/default/80/any"],
  ])("Host %j → %s", (host, want) => {
    expect(route(host, "/x")).toBe(want);
  });

  it("a rule's host is compared lower-cased", () => {
    const upper = router([
      ingressView({
        name: "upper",
        rules: [rule("Shop.Example.com", path("Prefix", "/", backend("shop")))],
      }),
    ]);
    expect(upper("shop.example.com", "/")).toBe("/svc/default/80/shop");
  });

  it("a request without Host reaches host-less rules only", () => {
    const only = router([
      ingressView({ name: "h", rules: [rule("a.example.com", path("Prefix", "/", backend("a")))] }),
    ]);
    expect(only(undefined, "/")).toBe("none");
    expect(only("a.example.com", "/")).toBe("/svc/default/80/a");
  });
});

describe("fall-through: exact host, wildcard, host-less, default backend", () => {
  const ingresses = [
    ingressView({
      name: "site",
      defaultBackend: backend("fallback", "http"),
      rules: [
        rule("foo.example.com", path("Prefix", "/api", backend("exact-api"))),
        rule("*.example.com", path("Prefix", "/static", backend("wild-static"))),
        rule(undefined, path("Exact", "/health", backend("any-health"))),
      ],
    }),
  ];

  it.each([
    ["foo.example.com", "/api/x", "/svc/default/80/exact-api"],
    ["foo.example.com", "/static/x", "/svc/default/80/wild-static"],
    ["foo.example.com", "/health", "/svc/default/80/any-health"],
    ["foo.example.com", "/other", "/svc/default/http/fallback"],
    ["bar.example.com", "/api/x", "/svc/default/http/fallback"],
    ["bar.example.com", "/static/x", "/svc/default/80/wild-static"],
    ["elsewhere.org", "/health", "/svc/default/80/any-health"],
    [undefined, "/", "/svc/default/http/fallback"],
  ])("%s %s → %s", (host, url, want) => {
    expect(router(ingresses)(host, url)).toBe(want);
  });

  it("ignoreDefaultBackends leaves the rest unmatched", () => {
    const route = router(ingresses, { ignoreDefaultBackends: true });
    expect(route("foo.example.com", "/other")).toBe("none");
    expect(route("foo.example.com", "/api")).toBe("/svc/default/80/exact-api");
  });
});

describe("default backend", () => {
  const withDefault = (name: string, created: string, service: string, className?: string) =>
    ingressView({ name, created, className, defaultBackend: backend(service) });

  it("is the oldest served Ingress's", () => {
    const route = router([
      withDefault("new", "2024-03-01T00:00:00Z", "new"),
      withDefault("old", "2024-01-01T00:00:00Z", "old"),
      ingressView({ name: "older-without", created: "2023-01-01T00:00:00Z" }),
    ]);
    expect(route("any.host", "/x")).toBe("/svc/default/80/old");
  });

  it("of an Ingress this router does not serve is not used", () => {
    const route = router([
      withDefault("nginx", "2023-01-01T00:00:00Z", "nginx", "nginx"),
      withDefault("ours", "2024-01-01T00:00:00Z", "ours", "linkerd"),
    ]);
    expect(route("any.host", "/")).toBe("/svc/default/80/ours");
  });

  it("is not used when it is a resource backend (not kept by the view)", () => {
    expect(router([ingressView({ name: "none" })])("h", "/")).toBe("none");
  });
});

describe("service names", () => {
  it("are dstPrefix ++ /<namespace>/<port number or name>/<service>", () => {
    const route = router(
      [
        ingressView({
          namespace: "shop",
          name: "shop",
          rules: [
            rule(
              "shop.example.com",
              path("Prefix", "/cart", backend("cart", 8080)),
              path("Prefix", "/", backend("web", "http")),
            ),
          ],
        }),
      ],
      { dstPrefix: Path.of("http", "1.1") },
    );
    expect(route("shop.example.com", "/cart")).toBe("/http/1.1/shop/8080/cart");
    expect(route("shop.example.com", "/")).toBe("/http/1.1/shop/http/web");
  });

  it("come with the Ingress and one identification made with the table", () => {
    const table = buildIngressTable(
      [ingressView({ name: "web", rules: [rule(undefined, path("Prefix", "/", backend("web")))] })],
      OPTIONS,
    );
    const a = table.match("h", "/a");
    const b = table.match("h", "/b");
    expect(a?.ingress).toBe("default/web");
    expect(a?.identification).toBe(b?.identification);
    expect(a?.identification).toEqual({ ok: true, dst: a?.dst });
  });
});

describe("invalid regular expressions", () => {
  it("are skipped and reported once per table", () => {
    const table = buildIngressTable(
      [
        ingressView({
          namespace: "shop",
          name: "broken",
          rules: [
            rule(
              undefined,
              path("ImplementationSpecific", "/api/(v1", backend("api")),
              path("Prefix", "/", backend("web")),
            ),
          ],
        }),
      ],
      OPTIONS,
    );
    expect(table.match(undefined, "/api/(v1")?.dst.show).toBe("/svc/shop/80/web");
    expect(table.problems).toHaveLength(1);
    expect(table.problems[0]).toMatch(
      /^Ingress shop\/broken: path "\/api\/\(v1" \(ImplementationSpecific\) is not a valid regular expression/,
    );
  });
});

describe("class selection", () => {
  const cases: [
    what: string,
    className: string | undefined,
    annotationClass: string | undefined,
    claimUnclassed: boolean,
    served: boolean,
  ][] = [
    ["ingressClassName equal", "linkerd", undefined, true, true],
    ["ingressClassName other", "nginx", undefined, true, false],
    ["ingressClassName wins over the annotation (other)", "nginx", "linkerd", true, false],
    ["ingressClassName wins over the annotation (equal)", "linkerd", "nginx", true, true],
    ["annotation equal", undefined, "linkerd", true, true],
    ["annotation other", undefined, "nginx", true, false],
    ["annotation equal, unclassed not claimed", undefined, "linkerd", false, true],
    ["no class, claimUnclassed", undefined, undefined, true, true],
    ["no class, not claimUnclassed", undefined, undefined, false, false],
  ];

  it.each(cases)("%s", (_what, className, annotationClass, claimUnclassed, served) => {
    const ing = ingressView({
      name: "x",
      className,
      annotationClass,
      rules: [rule(undefined, path("Prefix", "/", backend("x")))],
    });
    expect(servesIngress(ing, { ingressClass: "linkerd", claimUnclassed })).toBe(served);
    const route = router([ing], { claimUnclassed });
    expect(route("h", "/")).toBe(served ? "/svc/default/80/x" : "none");
  });

  it("follows the configured class", () => {
    const edge = ingressView({ name: "edge", className: "edge" });
    const legacy = ingressView({ name: "legacy", annotationClass: "edge" });
    const linkerd = ingressView({ name: "l5d", className: "linkerd" });
    const table = buildIngressTable([edge, legacy, linkerd], { ...OPTIONS, ingressClass: "edge" });
    expect(table.ingresses).toBe(2);
  });
});
