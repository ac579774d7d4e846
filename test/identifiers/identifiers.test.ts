import { describe, expect, it } from "vitest";
import { headerPathIdentifier } from "../../gateway/identifiers/header-path.js";
import { headerTokenIdentifier } from "../../gateway/identifiers/header-token.js";
import { headerUriPathIdentifier } from "../../gateway/identifiers/header-uri-path.js";
import {
  firstMatch,
  type Identification,
  type Identifier,
  identified,
  type RequestView,
  unidentified,
  urlSegments,
} from "../../gateway/identifiers/identifier.js";
import { methodAndHostIdentifier } from "../../gateway/identifiers/method-and-host.js";
import { pathIdentifier } from "../../gateway/identifiers/path.js";
import { staticIdentifier } from "../../gateway/identifiers/static.js";
import { silentLogger } from "../../gateway/log.js";
import { Path } from "../../gateway/naming/index.js";
import type { Category, Plugin } from "../../gateway/plugins/registry.js";
import { decode, decodeIssues } from "../namers/helpers.js";
import { noServices } from "../support/plugin-services.js";

const ctx = { ...noServices, log: silentLogger, dstPrefix: Path.of("svc") };

function make<Config>(plugin: Plugin<"identifier", Config>, raw: unknown = {}): Identifier {
  return plugin.create(decode(plugin, raw), ctx);
}

function request(
  opts: { method?: string; url?: string; version?: string; headers?: Record<string, string> } = {},
): RequestView {
  const headers = new Map(
    Object.entries(opts.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
  );
  return {
    method: opts.method ?? "GET",
    url: opts.url ?? "/",
    httpVersion: opts.version ?? "1.1",
    header: (name) => headers.get(name),
  };
}

/** The identification as text: `dst` (plus ` url=<url>` when rewritten) or `unidentified: reason`. */
function text(r: Identification): string {
  if (!r.ok) return `unidentified: ${r.reason}`;
  return r.url === undefined ? r.dst.show : `${r.dst.show} url=${r.url}`;
}

const id = <Config>(plugin: Plugin<"identifier", Config>, raw: unknown, req: RequestView) =>
  text(make(plugin, raw).identify(req));

describe("io.l5d.header.token", () => {
  it("names the service by the Host header by default", () => {
    expect(id(headerTokenIdentifier, {}, request({ headers: { Host: "web" } }))).toBe("/svc/web");
  });

  it("keeps the port in the single segment", () => {
    const r = make(headerTokenIdentifier).identify(request({ headers: { host: "web:8080" } }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.dst.segments).toEqual(["svc", "web:8080"]);
    expect(r.url).toBeUndefined();
  });

  it("keeps the raw value (case and dots) as one segment", () => {
    const r = make(headerTokenIdentifier).identify(
      request({ headers: { host: "API.Example.com" } }),
    );
    expect(r.ok && r.dst.segments).toEqual(["svc", "API.Example.com"]);
  });

  it("reads a custom header (matched case-insensitively)", () => {
    const raw = { header: "X-Service-Name" };
    expect(
      id(
        headerTokenIdentifier,
        raw,
        request({ headers: { "x-service-name": "users", host: "h" } }),
      ),
    ).toBe("/svc/users");
  });

  it("leaves the request unidentified naming the header when it is absent", () => {
    expect(id(headerTokenIdentifier, { header: "X-Service-Name" }, request())).toBe(
      "unidentified: X-Service-Name header is absent",
    );
  });

  it("treats an empty header value as absent", () => {
    expect(id(headerTokenIdentifier, {}, request({ headers: { host: "" } }))).toBe(
      "unidentified: Host header is absent",
    );
  });

  it("uses the router's dstPrefix", () => {
    const ident = headerTokenIdentifier.create(decode(headerTokenIdentifier, {}), {
      ...noServices,
      log: silentLogger,
      dstPrefix: Path.of("http", "1.1"),
    });
    expect(text(ident.identify(request({ headers: { host: "web" } })))).toBe("/http/1.1/web");
  });

  it("rejects an empty header name in the config", () => {
    const issues = decodeIssues(headerTokenIdentifier, { header: "" });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toContain("header");
  });
});

describe("io.l5d.methodAndHost", () => {
  it("names HTTP/1.1 requests /svc/1.1/<METHOD>/<host lower-cased>", () => {
    expect(
      id(
        methodAndHostIdentifier,
        {},
        request({ method: "POST", url: "/a/b?q=1", headers: { host: "Web.Example.COM" } }),
      ),
    ).toBe("/svc/1.1/POST/web.example.com");
  });

  it("does not add the uri path unless httpUriInDst is set", () => {
    expect(
      id(methodAndHostIdentifier, {}, request({ url: "/users/1", headers: { host: "web" } })),
    ).toBe("/svc/1.1/GET/web");
  });

  it("appends the uri path without the query when httpUriInDst is true", () => {
    expect(
      id(
        methodAndHostIdentifier,
        { httpUriInDst: true },
        request({ url: "/users/42/profile?fields=a/b&x=1", headers: { host: "web" } }),
      ),
    ).toBe("/svc/1.1/GET/web/users/42/profile");
  });

  it("keeps the host port in the host segment", () => {
    const r = make(methodAndHostIdentifier).identify(request({ headers: { host: "Web:8080" } }));
    expect(r.ok && r.dst.segments).toEqual(["svc", "1.1", "GET", "web:8080"]);
  });

  it("names HTTP/1.0 requests /svc/1.0/<METHOD> without needing a Host", () => {
    expect(id(methodAndHostIdentifier, {}, request({ version: "1.0", method: "HEAD" }))).toBe(
      "/svc/1.0/HEAD",
    );
  });

  it("ignores the Host of an HTTP/1.0 request", () => {
    expect(
      id(methodAndHostIdentifier, {}, request({ version: "1.0", headers: { host: "web" } })),
    ).toBe("/svc/1.0/GET");
  });

  it("appends the uri path to HTTP/1.0 names with httpUriInDst", () => {
    expect(
      id(
        methodAndHostIdentifier,
        { httpUriInDst: true },
        request({ version: "1.0", url: "/a/b?c=d" }),
      ),
    ).toBe("/svc/1.0/GET/a/b");
  });

  it("leaves an HTTP/1.1 request without Host unidentified", () => {
    expect(id(methodAndHostIdentifier, {}, request({ url: "/x" }))).toBe(
      "unidentified: Host header is absent",
    );
  });

  it("rejects a non-boolean httpUriInDst", () => {
    const issues = decodeIssues(methodAndHostIdentifier, { httpUriInDst: "yes" });
    expect(issues).toEqual(['httpUriInDst: expected true or false, got "yes"']);
  });
});

describe("io.l5d.path", () => {
  it("names the service by the first segment by default", () => {
    expect(id(pathIdentifier, {}, request({ url: "/users/1/photos?x=y" }))).toBe("/svc/users");
  });

  it("uses the first two segments with segments: 2", () => {
    expect(id(pathIdentifier, { segments: 2 }, request({ url: "/users/v2/photos" }))).toBe(
      "/svc/users/v2",
    );
  });

  it("does not rewrite the request target without consume", () => {
    const r = make(pathIdentifier, { segments: 1 }).identify(request({ url: "/a/b" }));
    expect(r.ok).toBe(true);
    expect(r.ok && r.url).toBeUndefined();
  });

  it("consume strips the segments from the forwarded uri and keeps the query", () => {
    expect(
      id(
        pathIdentifier,
        { segments: 2, consume: true },
        request({ url: "/users/v2/photos/7?size=large&x=/y" }),
      ),
    ).toBe("/svc/users/v2 url=/photos/7?size=large&x=/y");
  });

  it("consume keeps a trailing slash on what it forwards", () => {
    expect(id(pathIdentifier, { consume: true }, request({ url: "/users/list/?all=1" }))).toBe(
      "/svc/users url=/list/?all=1",
    );
  });

  it("consume leaves `/` when nothing is left", () => {
    expect(id(pathIdentifier, { consume: true }, request({ url: "/users" }))).toBe(
      "/svc/users url=/",
    );
  });

  it("consume leaves `/` plus the query when only the query is left", () => {
    expect(id(pathIdentifier, { consume: true }, request({ url: "/users?a=1" }))).toBe(
      "/svc/users url=/?a=1",
    );
  });

  it("does not count the query as a segment", () => {
    expect(id(pathIdentifier, { segments: 2 }, request({ url: "/users?a=/b/c" }))).toBe(
      "unidentified: the request path has fewer than 2 segment(s): /users",
    );
  });

  it("leaves a request with too few segments unidentified", () => {
    expect(id(pathIdentifier, {}, request({ url: "/" }))).toBe(
      "unidentified: the request path has fewer than 1 segment(s): /",
    );
  });

  it("rejects segments: 0 in the config", () => {
    const issues = decodeIssues(pathIdentifier, { segments: 0 });
    expect(issues).toEqual(["segments: expected an integer of at least 1, got 0"]);
  });

  it("rejects a non-integer segments", () => {
    expect(decodeIssues(pathIdentifier, { segments: 1.5 })).toEqual([
      "segments: expected an integer of at least 1, got 1.5",
    ]);
  });

  it("rejects an unknown key with a suggestion", () => {
    const issues = decodeIssues(pathIdentifier, { segment: 2 });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^segment: unknown key/);
    expect(issues[0]).toContain("segments");
  });
});

describe("io.l5d.header", () => {
  it("appends the header's path to dstPrefix (l5d-name by default)", () => {
    expect(id(headerPathIdentifier, {}, request({ headers: { "l5d-name": "/users/v2" } }))).toBe(
      "/svc/users/v2",
    );
  });

  it("reads a custom header", () => {
    expect(
      id(
        headerPathIdentifier,
        { header: "X-Dst" },
        request({ headers: { "x-dst": "/a/b", "l5d-name": "/c" } }),
      ),
    ).toBe("/svc/a/b");
  });

  it("leaves the request unidentified when the header is absent", () => {
    expect(id(headerPathIdentifier, {}, request())).toBe("unidentified: l5d-name header is absent");
  });

  it("leaves the request unidentified with the reason when the value is not a path", () => {
    const r = make(headerPathIdentifier).identify(request({ headers: { "l5d-name": "users" } }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toMatch(/^l5d-name header is not a path \(.+\): users$/);
  });
});

describe("io.l5d.header.path (Linkerd's h2 identifier)", () => {
  const at = (path: string, headers: Record<string, string> = {}) =>
    request({ url: path, headers: { ":path": path, ...headers } });

  it("names the service by :path, without its query or trailing slash", () => {
    expect(id(headerUriPathIdentifier, {}, at("/helloworld.Greeter/SayHello"))).toBe(
      "/svc/helloworld.Greeter/SayHello",
    );
    expect(id(headerUriPathIdentifier, {}, at("/users/7/?full=1"))).toBe("/svc/users/7");
  });

  it("takes the first `segments` when set, and refuses a shorter path", () => {
    const one = { segments: 1 };
    expect(id(headerUriPathIdentifier, one, at("/helloworld.Greeter/SayHello"))).toBe(
      "/svc/helloworld.Greeter",
    );
    expect(id(headerUriPathIdentifier, { segments: 3 }, at("/a/b"))).toBe(
      "unidentified: :path must have at least 3 segment(s): /a/b",
    );
    expect(decodeIssues(headerUriPathIdentifier, { segments: 0 })).toHaveLength(1);
  });

  it("reads another header, and leaves an empty or missing path unidentified", () => {
    expect(
      id(headerUriPathIdentifier, { header: "X-Route" }, at("/ignored", { "x-route": "/a/b" })),
    ).toBe("/svc/a/b");
    expect(id(headerUriPathIdentifier, {}, at("/"))).toBe(
      "unidentified: Missing destination path in :path",
    );
    expect(id(headerUriPathIdentifier, {}, request())).toBe(
      "unidentified: Missing destination path in :path",
    );
    expect(id(headerUriPathIdentifier, { header: "x-route" }, at("/a"))).toBe(
      "unidentified: Missing destination path in x-route",
    );
  });

  it("leaves a value that is not a path unidentified, with the reason", () => {
    expect(
      id(headerUriPathIdentifier, { header: "x-route" }, at("/", { "x-route": "a/b" })),
    ).toMatch(/^unidentified: x-route is not a path \(.+\): a\/b$/);
  });
});

describe("io.l5d.static", () => {
  it("gives every request dstPrefix + path", () => {
    const ident = make(staticIdentifier, { path: "/users/v1" });
    expect(text(ident.identify(request({ headers: { host: "x" } })))).toBe("/svc/users/v1");
    expect(text(ident.identify(request({ version: "1.0", url: "/other" })))).toBe("/svc/users/v1");
  });

  it("requires path", () => {
    expect(decodeIssues(staticIdentifier, {})).toEqual([
      "path: missing (expected a path such as /svc)",
    ]);
  });

  it("rejects a path that does not parse", () => {
    const issues = decodeIssues(staticIdentifier, { path: "users" });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^path: expected a path such as \/svc, got "users"/);
  });
});

describe("firstMatch", () => {
  const fixed = (r: Identification, calls?: string[], name = "x"): Identifier => ({
    identify: () => {
      calls?.push(name);
      return r;
    },
  });

  it("returns the first identification that succeeds and stops there", () => {
    const calls: string[] = [];
    const chain = firstMatch([
      fixed(unidentified("no a"), calls, "a"),
      fixed(identified(Path.of("svc", "b")), calls, "b"),
      fixed(identified(Path.of("svc", "c")), calls, "c"),
    ]);
    expect(text(chain.identify(request()))).toBe("/svc/b");
    expect(calls).toEqual(["a", "b"]);
  });

  it("joins every reason with `; ` when all fail", () => {
    const chain = firstMatch([
      make(headerPathIdentifier),
      make(headerTokenIdentifier, { header: "X-Svc" }),
      make(pathIdentifier, { segments: 3 }),
    ]);
    expect(text(chain.identify(request({ url: "/a" })))).toBe(
      "unidentified: l5d-name header is absent; X-Svc header is absent; " +
        "the request path has fewer than 3 segment(s): /a",
    );
  });

  it("falls back from a real header identifier to the path identifier", () => {
    const chain = firstMatch([make(headerPathIdentifier), make(pathIdentifier)]);
    expect(text(chain.identify(request({ url: "/users/1" })))).toBe("/svc/users");
    expect(text(chain.identify(request({ url: "/u", headers: { "l5d-name": "/x/y" } })))).toBe(
      "/svc/x/y",
    );
  });

  it("keeps the rewritten url of the identifier that matched", () => {
    const chain = firstMatch([make(headerPathIdentifier), make(pathIdentifier, { consume: true })]);
    expect(text(chain.identify(request({ url: "/users/1?q" })))).toBe("/svc/users url=/1?q");
  });

  it("with a single identifier behaves as that identifier", () => {
    const only = make(headerTokenIdentifier);
    const chain = firstMatch([only]);
    expect(text(chain.identify(request()))).toBe("unidentified: Host header is absent");
    expect(text(chain.identify(request({ headers: { host: "h" } })))).toBe("/svc/h");
  });
});

describe("urlSegments", () => {
  it("splits the path part into non-empty segments", () => {
    expect(urlSegments("/a//b/?x=/y/z")).toEqual(["a", "b"]);
    expect(urlSegments("/")).toEqual([]);
    expect(urlSegments("?q")).toEqual([]);
  });
});

// Keeps the generic helper honest: every identifier kind is an identifier plugin.
describe("plugin metadata", () => {
  it("declares the Linkerd kinds in the identifier category", () => {
    const plugins: Plugin<Category, unknown>[] = [
      headerTokenIdentifier as Plugin<Category, unknown>,
      methodAndHostIdentifier as Plugin<Category, unknown>,
      pathIdentifier as Plugin<Category, unknown>,
      headerPathIdentifier as Plugin<Category, unknown>,
      headerUriPathIdentifier as Plugin<Category, unknown>,
      staticIdentifier as Plugin<Category, unknown>,
    ];
    expect(plugins.map((p) => `${p.category}:${p.kind}`)).toEqual([
      "identifier:io.l5d.header.token",
      "identifier:io.l5d.methodAndHost",
      "identifier:io.l5d.path",
      "identifier:io.l5d.header",
      "identifier:io.l5d.header.path",
      "identifier:io.l5d.static",
    ]);
  });
});
