import { describe, expect, it } from "vitest";
import { REWRITING_NAMERS } from "../../gateway/namers/rewriting.js";
import { Path } from "../../gateway/naming/index.js";

/** Runs the rewriting namer `name` on the raw segments; the result's segments, or "neg". */
function rw(name: string, ...segs: string[]): string[] | "neg" {
  const f = REWRITING_NAMERS[name];
  if (!f) throw new Error(`no rewriting namer ${name}`);
  const out = f(Path.of(...segs));
  return out === undefined ? "neg" : [...out.segments];
}

describe("REWRITING_NAMERS table", () => {
  it("has exactly Linkerd's rewriting namers", () => {
    expect(Object.keys(REWRITING_NAMERS).sort()).toEqual([
      "io.buoyant.hostportPfx",
      "io.buoyant.http.anyHost",
      "io.buoyant.http.anyHostPfx",
      "io.buoyant.http.anyMethod",
      "io.buoyant.http.anyMethodPfx",
      "io.buoyant.http.domainToPath",
      "io.buoyant.http.domainToPathPfx",
      "io.buoyant.http.subdomainOf",
      "io.buoyant.http.subdomainOfPfx",
      "io.buoyant.porthostPfx",
    ]);
  });

  it("answers neg for the empty path, whatever the namer", () => {
    for (const name of Object.keys(REWRITING_NAMERS)) {
      expect(rw(name), name).toBe("neg");
    }
  });
});

describe("io.buoyant.http.domainToPathPfx", () => {
  const N = "io.buoyant.http.domainToPathPfx";

  it("reverses the domain labels under the prefix", () => {
    expect(rw(N, "pfx", "foo.buoyant.io")).toEqual(["pfx", "io", "buoyant", "foo"]);
  });

  it("keeps the residual", () => {
    expect(rw(N, "pfx", "a.b.c", "x", "y")).toEqual(["pfx", "c", "b", "a", "x", "y"]);
  });

  it("handles a single-label host and drops empty labels", () => {
    expect(rw(N, "pfx", "web")).toEqual(["pfx", "web"]);
    expect(rw(N, "pfx", "web.example.")).toEqual(["pfx", "example", "web"]);
  });

  it("answers neg without a host or for a host with bad characters", () => {
    expect(rw(N, "pfx")).toBe("neg");
    expect(rw(N, "pfx", "bad host")).toBe("neg");
    expect(rw(N, "pfx", "a_b.c")).toBe("neg");
  });
});

describe("io.buoyant.http.domainToPath", () => {
  const N = "io.buoyant.http.domainToPath";

  it("reverses the domain labels with no prefix and keeps the residual", () => {
    expect(rw(N, "foo.buoyant.io", "r")).toEqual(["io", "buoyant", "foo", "r"]);
  });

  it("answers neg for a bad host", () => {
    expect(rw(N, "a/b")).toBe("neg");
  });
});

describe("io.buoyant.http.subdomainOfPfx", () => {
  const N = "io.buoyant.http.subdomainOfPfx";

  it("strips `.domain` from the host under the prefix", () => {
    expect(rw(N, "buoyant.io", "pfx", "foo.buoyant.io")).toEqual(["pfx", "foo"]);
  });

  it("keeps several subdomain labels as one segment", () => {
    expect(rw(N, "buoyant.io", "pfx", "a.b.buoyant.io")).toEqual(["pfx", "a.b"]);
  });

  it("keeps the residual", () => {
    expect(rw(N, "buoyant.io", "pfx", "foo.buoyant.io", "v1", "x")).toEqual([
      "pfx",
      "foo",
      "v1",
      "x",
    ]);
  });

  it("answers neg when the host is the domain itself (empty subdomain)", () => {
    expect(rw(N, "buoyant.io", "pfx", "buoyant.io")).toBe("neg");
    expect(rw(N, "buoyant.io", "pfx", ".buoyant.io")).toBe("neg");
  });

  it("answers neg when the host only ends with the domain text, not `.domain`", () => {
    expect(rw(N, "buoyant.io", "pfx", "notbuoyant.io")).toBe("neg");
  });

  it("answers neg for a host in another domain", () => {
    expect(rw(N, "buoyant.io", "pfx", "foo.example.com")).toBe("neg");
  });

  it("answers neg when segments are missing or malformed", () => {
    expect(rw(N, "buoyant.io", "pfx")).toBe("neg");
    expect(rw(N, "buoyant.io")).toBe("neg");
    expect(rw(N, "bad domain", "pfx", "x.bad domain")).toBe("neg");
  });
});

describe("io.buoyant.http.subdomainOf", () => {
  const N = "io.buoyant.http.subdomainOf";

  it("strips `.domain` with no prefix and keeps the residual", () => {
    expect(rw(N, "buoyant.io", "foo.buoyant.io", "r")).toEqual(["foo", "r"]);
  });

  it("answers neg for the bare domain and for other domains", () => {
    expect(rw(N, "buoyant.io", "buoyant.io")).toBe("neg");
    expect(rw(N, "buoyant.io", "foo.example.com")).toBe("neg");
  });
});

describe("io.buoyant.http.anyHostPfx and anyHost", () => {
  it("anyHostPfx drops the host after the prefix and keeps the residual", () => {
    expect(rw("io.buoyant.http.anyHostPfx", "pfx", "web.example.com", "a")).toEqual(["pfx", "a"]);
  });

  it("anyHostPfx answers neg without a valid host", () => {
    expect(rw("io.buoyant.http.anyHostPfx", "pfx")).toBe("neg");
    expect(rw("io.buoyant.http.anyHostPfx", "pfx", "a b")).toBe("neg");
  });

  it("anyHost drops the host", () => {
    expect(rw("io.buoyant.http.anyHost", "web:8080", "x", "y")).toEqual(["x", "y"]);
    expect(rw("io.buoyant.http.anyHost", "web")).toEqual([]);
  });

  it("anyHost answers neg for a bad host", () => {
    expect(rw("io.buoyant.http.anyHost", "a b")).toBe("neg");
  });
});

describe("io.buoyant.http.anyMethodPfx and anyMethod", () => {
  it("anyMethodPfx drops an upper-case method after the prefix", () => {
    expect(rw("io.buoyant.http.anyMethodPfx", "pfx", "GET", "web")).toEqual(["pfx", "web"]);
  });

  it("anyMethodPfx answers neg for a method that is not upper-case letters", () => {
    expect(rw("io.buoyant.http.anyMethodPfx", "pfx", "get", "web")).toBe("neg");
    expect(rw("io.buoyant.http.anyMethodPfx", "pfx", "GET1")).toBe("neg");
  });

  it("anyMethod drops the method", () => {
    expect(rw("io.buoyant.http.anyMethod", "DELETE", "web", "x")).toEqual(["web", "x"]);
    expect(rw("io.buoyant.http.anyMethod", "delete", "web")).toBe("neg");
  });
});

describe("io.buoyant.hostportPfx", () => {
  const N = "io.buoyant.hostportPfx";

  it("splits host:port into /pfx/host/port", () => {
    expect(rw(N, "pfx", "web.example.com:8080")).toEqual(["pfx", "web.example.com", "8080"]);
  });

  it("accepts a named port (a DNS label)", () => {
    expect(rw(N, "pfx", "users:http")).toEqual(["pfx", "users", "http"]);
    expect(rw(N, "pfx", "users:grpc-web")).toEqual(["pfx", "users", "grpc-web"]);
  });

  it("keeps the residual", () => {
    expect(rw(N, "pfx", "web:80", "a", "b")).toEqual(["pfx", "web", "80", "a", "b"]);
  });

  it("answers neg for invalid host:port forms", () => {
    expect(rw(N, "pfx", "web")).toBe("neg"); // no port
    expect(rw(N, "pfx", "web:")).toBe("neg"); // empty port
    expect(rw(N, "pfx", ":80")).toBe("neg"); // empty host
    expect(rw(N, "pfx", "a:b:c")).toBe("neg"); // two colons (IPv6 is not supported)
    expect(rw(N, "pfx", "web:HTTP")).toBe("neg"); // upper-case named port
    expect(rw(N, "pfx", "web:-http")).toBe("neg"); // leading hyphen
    expect(rw(N, "pfx", `web:${"a".repeat(64)}`)).toBe("neg"); // longer than a label
    expect(rw(N, "pfx")).toBe("neg");
  });
});

describe("io.buoyant.porthostPfx", () => {
  const N = "io.buoyant.porthostPfx";

  it("splits host:port into /pfx/port/host", () => {
    expect(rw(N, "pfx", "web.example.com:8080")).toEqual(["pfx", "8080", "web.example.com"]);
  });

  it("accepts a named port and keeps the residual", () => {
    expect(rw(N, "pfx", "users:http", "r")).toEqual(["pfx", "http", "users", "r"]);
  });

  it("answers neg for invalid host:port forms", () => {
    expect(rw(N, "pfx", "web")).toBe("neg");
    expect(rw(N, "pfx", "web:")).toBe("neg");
    expect(rw(N, "pfx", ":80")).toBe("neg");
    expect(rw(N, "pfx", "::1:80")).toBe("neg");
    expect(rw(N, "pfx", "web:a_b")).toBe("neg");
  });
});
