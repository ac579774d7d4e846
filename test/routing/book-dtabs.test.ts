// The worked dtabs of the Linkerd book's chapters 3 and 4 and the egress dtab of scenario
// S2, bound with the real `/$/` namers and stand-ins for the Consul and Kubernetes namers
// (which answer like Linkerd's: /#/io.l5d.consul/<dc>/<svc>, /#/io.l5d.k8s/<ns>/<port>/<svc>).

import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../gateway/log.js";
import { DnsResolver } from "../../gateway/namers/dns.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { namerLookup } from "../../gateway/namers/mount.js";
import {
  addrBound,
  address,
  type BoundName,
  bindPath,
  boundName,
  computed,
  constant,
  constantOk,
  leaf,
  type Name,
  type Namer,
  type NameTree,
  Neg,
  Path,
  readDtab,
  readPath,
  type State,
  settle,
} from "../../gateway/naming/index.js";

/** A namer that knows a fixed set of names below it, each with one address. */
function fakeNamer(root: string, names: Record<string, string>): Namer {
  return {
    lookup(path) {
      const key = path.show;
      const hit = Object.keys(names).find((n) => key === n || key.startsWith(`${n}/`));
      if (!hit) return constantOk<NameTree<Name>>(Neg);
      const [host, port] = names[hit]!.split(":");
      const id = readPath(`${root}${hit}`);
      const residual = path.drop(readPath(hit).size);
      return constantOk<NameTree<Name>>(
        leaf(boundName(id, constant(addrBound([address(host!, Number(port))])), residual)),
      );
    },
  };
}

const consul = fakeNamer("/#/io.l5d.consul", {
  "/dc1/booking": "10.0.0.1:8080",
  "/dc1/user": "10.0.0.2:8080",
  "/dc1/user-v2": "10.0.0.3:8080",
  "/dc1/concert": "10.0.0.4:8080",
});
const k8s = fakeNamer("/#/io.l5d.k8s", {
  "/default/http/user": "10.1.0.2:80",
  "/default/http/legacy": "10.1.0.9:80",
  "/default/http/httpbin.org": "10.1.0.66:80",
});

// External names resolve through a stand-in DNS; everything else is NXDOMAIN.
const externalDns: Record<string, string[]> = {
  "httpbin.org": ["127.0.0.10"],
  "api.example.com": ["127.0.0.11"],
};
const resolver = new DnsResolver({
  log: silentLogger,
  lookup: async (host) => {
    const ips = externalDns[host];
    if (ips) return { ips, ttlSecs: 60 };
    throw Object.assign(new Error(`queryA ENOTFOUND ${host}`), { code: "ENOTFOUND" });
  },
  minTtlMs: 60_000,
  maxTtlMs: 60_000,
  negativeTtlMs: 60_000,
  staleIfErrorMs: 60_000,
  minRefreshMs: 60_000,
});
const namers = namerLookup(
  [
    { prefix: Path.of("#", "io.l5d.consul"), namer: consul },
    { prefix: Path.of("#", "io.l5d.k8s"), namer: k8s },
  ],
  createGlobalNamer(resolver),
);

const stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
});

/** Binds live (namers observed) and waits until nothing is pending. */
async function bind(dtab: string, path: string): Promise<State<NameTree<BoundName>>> {
  const d = readDtab(dtab);
  const act = computed((read) => bindPath({ dtab: d, namers }, readPath(path), read));
  stops.push(act.observe(() => {}));
  return settle(act, AbortSignal.timeout(2000));
}

/** The bound tree in a compact form: ids, weights and terminal kinds. */
function shape(s: State<NameTree<BoundName>>): unknown {
  if (s.status !== "ok") return s.status === "failed" ? `failed: ${s.error.message}` : "pending";
  const walk = (t: NameTree<BoundName>): unknown => {
    switch (t.kind) {
      case "leaf":
        return t.value.id.show;
      case "union":
        return t.trees.map((w) => [w.weight, walk(w.tree)]);
      case "alt":
        return { alt: t.trees.map(walk) };
      default:
        return t.kind;
    }
  };
  return walk(s.value);
}

// Chapter 3: names like booking.service.consul go to Consul in dc1.
const chapter3 = `
/consul => /#/io.l5d.consul/dc1;
/svc    => /$/io.buoyant.http.subdomainOfPfx/service.consul/consul;
`;

// Chapter 4: eleven dentries — Consul and Kubernetes, a canary split, fallbacks and a fence.
const chapter4 = `
/consul   => /#/io.l5d.consul/dc1;
/k8s      => /#/io.l5d.k8s/default/http;
/host     => /k8s;
/host     => /consul;
/svc      => /host;
/svc      => /$/io.buoyant.http.subdomainOfPfx/service.consul/consul;
/host/user    => 9 * /consul/user & 1 * /consul/user-v2;
/host/catalog => 0.5 * /consul/concert & 0.5 * /consul/catalog-v2;
/host/legacy  => /consul/legacy | /k8s/legacy;
/host/payments => !;
/svc/internal => /$/nil;
`;

describe("the book's chapter 3 dtab (Consul with subdomainOfPfx)", () => {
  it("binds booking.service.consul to Consul's booking in dc1", async () => {
    expect(shape(await bind(chapter3, "/svc/booking.service.consul"))).toBe(
      "/#/io.l5d.consul/dc1/booking",
    );
  });

  it("keeps the residual path after the service name", async () => {
    const s = await bind(chapter3, "/svc/booking.service.consul/v1/bookings");
    expect(s.status === "ok" && s.value.kind === "leaf" && s.value.value.residual.show).toBe(
      "/v1/bookings",
    );
  });

  it("does not bind a name outside the service.consul domain", async () => {
    expect(shape(await bind(chapter3, "/svc/booking.example.com"))).toBe("neg");
    expect(shape(await bind(chapter3, "/svc/service.consul"))).toBe("neg");
  });
});

describe("the book's chapter 4 dtab", () => {
  it("has eleven dentries", () => {
    expect(readDtab(chapter4).size).toBe(11);
  });

  it("sends booking.service.consul to /#/io.l5d.consul/dc1/booking", async () => {
    expect(shape(await bind(chapter4, "/svc/booking.service.consul"))).toBe(
      "/#/io.l5d.consul/dc1/booking",
    );
  });

  it("splits user 9:1 between user and user-v2 in Consul", async () => {
    expect(shape(await bind(chapter4, "/svc/user"))).toEqual([
      [9, "/#/io.l5d.consul/dc1/user"],
      [1, "/#/io.l5d.consul/dc1/user-v2"],
    ]);
  });

  it("drops a union branch that does not bind (catalog-v2 is not in Consul) and keeps the rest", async () => {
    expect(shape(await bind(chapter4, "/svc/catalog"))).toBe("/#/io.l5d.consul/dc1/concert");
  });

  it("falls through alternates on neg: legacy is not in Consul, so Kubernetes serves it", async () => {
    expect(shape(await bind(chapter4, "/svc/legacy"))).toBe("/#/io.l5d.k8s/default/http/legacy");
  });

  it("tries later dentries first: /host => /consul is preferred to /host => /k8s", async () => {
    // /svc/x → /host/x, and /host/x tries /consul/x before /k8s/x. With a Consul copy of
    // user-v2 removed from the picture, a name in both namers shows the preference:
    expect(shape(await bind(chapter4, "/host/user-v2"))).toBe("/#/io.l5d.consul/dc1/user-v2");
    const both =
      "/k8s => /#/io.l5d.k8s/default/http;/consul => /#/io.l5d.consul/dc1;/host => /k8s;/host => /consul";
    expect(shape(await bind(both, "/host/user"))).toBe("/#/io.l5d.consul/dc1/user");
    expect(shape(await bind(`${both};/host => /k8s`, "/host/user"))).toBe(
      "/#/io.l5d.k8s/default/http/user",
    );
  });

  it("stops at fail: payments never falls through to another alternate", async () => {
    expect(shape(await bind(chapter4, "/svc/payments"))).toBe("fail");
  });

  it("binds internal names to empty ($/nil): known but with no endpoints", async () => {
    expect(shape(await bind(chapter4, "/svc/internal"))).toBe("empty");
  });
});

describe("the egress dtab (scenario S2)", () => {
  const egress = `
/egress => /$/io.buoyant.rinet;
/svc    => /egress/443;
/svc    => /$/io.buoyant.porthostPfx/egress;
`;
  // The same dentries after an internal Kubernetes rule, as a node proxy's dtab might be.
  const withK8s = `
/k8s => /#/io.l5d.k8s/default/http;
/svc => /k8s;
${egress}`;

  it("binds a bare host to port 443 through rinet (porthostPfx needs host:port, so it is neg)", async () => {
    const s = await bind(egress, "/svc/httpbin.org");
    expect(shape(s)).toBe("/$/io.buoyant.rinet/443/httpbin.org");
    const a =
      s.status === "ok" && s.value.kind === "leaf" ? s.value.value.addr.sample() : undefined;
    expect(a?.kind === "bound" && a.addresses.map((x) => `${x.host}:${x.port}`)).toEqual([
      "127.0.0.10:443",
    ]);
  });

  it("binds host:port to that port through porthostPfx", async () => {
    expect(shape(await bind(egress, "/svc/api.example.com:8443"))).toBe(
      "/$/io.buoyant.rinet/8443/api.example.com",
    );
  });

  it("never binds an external name to a Kubernetes service, even one with the same name", async () => {
    expect(shape(await bind(withK8s, "/svc/httpbin.org"))).toBe(
      "/$/io.buoyant.rinet/443/httpbin.org",
    );
  });

  it("lets an internal name that does not resolve externally fall back to Kubernetes", async () => {
    expect(shape(await bind(withK8s, "/svc/user"))).toBe("/#/io.l5d.k8s/default/http/user");
  });

  it("is neg for a name that exists nowhere", async () => {
    expect(shape(await bind(egress, "/svc/nonexistent.invalid"))).toBe("neg");
  });
});
