import { afterEach, describe, expect, it } from "vitest";
import { createGlobalNamer, GLOBAL_NAMER_NAMES } from "../../gateway/namers/global.js";
import { globalLookup } from "../../gateway/namers/mount.js";
import {
  bindPath,
  boundStateEquals,
  computed,
  Dtab,
  type Namer,
  readDtab,
  readPath,
  sameName,
  settle,
} from "../../gateway/naming/index.js";
import {
  addrText,
  dnsError,
  type FakeDns,
  fakeDns,
  fakeResolver,
  Observations,
  onlyBound,
  onlyLeaf,
  stateText,
  waitForState,
  waitUntil,
} from "./helpers.js";

const obs = new Observations();
afterEach(() => obs.stopAll());

function setup(answers: Record<string, readonly string[] | Error> = {}): {
  dns: FakeDns;
  namer: Namer;
} {
  const dns = fakeDns({ localhost: ["127.0.0.1"], ...answers });
  return { dns, namer: createGlobalNamer(fakeResolver(dns.lookup)) };
}

const lookup = (namer: Namer, path: string) => namer.lookup(readPath(path));

describe("global namer: /$/inet and /$/io.buoyant.rinet", () => {
  it("binds /$/inet/<ip>/<port>/rest to the id /$/inet/<ip>/<port> with the rest as residual", () => {
    const { namer, dns } = setup();
    const s = lookup(namer, "/$/inet/127.0.0.1/8080/rest/more").sample();
    expect(stateText(s)).toBe("/$/inet/127.0.0.1/8080 residual=/rest/more");
    const a = onlyBound(s).addr.sample();
    expect(addrText(a)).toBe("127.0.0.1:8080*1");
    // An IP literal needs no lookup and carries no host name.
    expect(a.kind === "bound" && a.addresses[0]!.meta).toEqual({});
    expect(dns.calls).toEqual([]);
  });

  it("binds an IPv6 literal", () => {
    const { namer } = setup();
    const s = lookup(namer, "/$/inet/::1/443").sample();
    expect(stateText(s)).toBe("/$/inet/::1/443");
    expect(addrText(onlyBound(s).addr.sample())).toBe("[::1]:443*1");
  });

  it("treats /$/inet/<port> as localhost", async () => {
    const { namer, dns } = setup({ localhost: ["127.0.0.1", "::1"] });
    const a = lookup(namer, "/$/inet/8080/x");
    expect(stateText(await settle(a))).toBe("/$/inet/8080 residual=/x");
    const addr = onlyBound(a.sample()).addr;
    obs.live(addr);
    await waitUntil(() => addr.sample().kind === "bound", "localhost addresses");
    expect(addrText(addr.sample())).toBe("127.0.0.1:8080*1,[::1]:8080*1");
    const v = addr.sample();
    expect(v.kind === "bound" && v.addresses.map((x) => x.meta)).toEqual([
      { hostname: "localhost" },
      { hostname: "localhost" },
    ]);
    expect(dns.calls[0]).toBe("localhost");
  });

  it("binds /$/io.buoyant.rinet/<port>/<host>/rest with the id in rinet order", () => {
    const { namer } = setup();
    const s = lookup(namer, "/$/io.buoyant.rinet/443/192.0.2.10/a").sample();
    expect(stateText(s)).toBe("/$/io.buoyant.rinet/443/192.0.2.10 residual=/a");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.10:443*1");
  });

  it("resolves a host name through the resolver", async () => {
    const { namer, dns } = setup({ "web.example": ["192.0.2.2", "192.0.2.1", "192.0.2.2"] });
    const a = lookup(namer, "/$/io.buoyant.rinet/443/web.example");
    expect(a.sample().status).toBe("pending");
    const s = await settle(a);
    expect(stateText(s)).toBe("/$/io.buoyant.rinet/443/web.example");
    const addr = onlyBound(s).addr;
    obs.live(addr);
    await waitUntil(() => addr.sample().kind === "bound", "the resolved addresses");
    // Sorted and without duplicates, with the host name kept as metadata.
    expect(addrText(addr.sample())).toBe("192.0.2.1:443*1,192.0.2.2:443*1");
    const v = addr.sample();
    expect(v.kind === "bound" && v.addresses[0]!.meta).toEqual({ hostname: "web.example" });
    expect(dns.count("web.example")).toBeGreaterThanOrEqual(1);
  });

  it("answers Neg for a name that does not exist (NXDOMAIN)", async () => {
    const { namer } = setup();
    expect(stateText(await settle(lookup(namer, "/$/inet/nx.example/80")))).toBe("~");
  });

  it("answers Neg for ENODATA (no records) and for an empty answer", async () => {
    const { namer } = setup({
      "nodata.example": dnsError("ENODATA"),
      "empty.example": [],
    });
    for (const host of ["nodata.example", "empty.example"]) {
      expect(stateText(await settle(lookup(namer, `/$/inet/${host}/80`))), host).toBe("~");
    }
  });

  it("fails a name whose first lookup times out", async () => {
    const { namer } = setup({ "slow.example": dnsError("ETIMEOUT") });
    expect(stateText(await settle(lookup(namer, "/$/inet/slow.example/80")))).toBe(
      "failed: resolving slow.example failed: ETIMEOUT",
    );
  });

  it("lets a dtab alternate take over from an NXDOMAIN name", async () => {
    const { namer } = setup();
    const ctx = {
      dtab: readDtab("/svc/web => /$/inet/nx.example/80 | /$/inet/127.0.0.1/9090"),
      namers: globalLookup(namer),
    };
    const binding = computed(
      (read) => bindPath(ctx, readPath("/svc/web/x"), read),
      boundStateEquals,
    );
    obs.live(binding);
    await waitForState(binding, "/$/inet/127.0.0.1/9090 residual=/x");
  });

  it("keeps the same bound name object for repeated lookups of a host name", async () => {
    const { namer } = setup({ "web.example": ["192.0.2.1"] });
    const a = lookup(namer, "/$/inet/web.example/80");
    obs.live(a);
    await waitForState(a, "/$/inet/web.example/80");
    expect(lookup(namer, "/$/inet/web.example/80")).toBe(a);
    expect(onlyLeaf(lookup(namer, "/$/inet/web.example/80").sample())).toBe(onlyLeaf(a.sample()));
  });

  it("gives the same bound name for repeated lookups of an IP literal", () => {
    const { namer } = setup();
    const first = onlyBound(lookup(namer, "/$/inet/127.0.0.1/8080").sample());
    const second = onlyBound(lookup(namer, "/$/inet/127.0.0.1/8080").sample());
    // Regression: for IP literals the resolver answers a constant Var, which VarCache does not
    // cache, so every lookup builds a new addr Var and a new BoundName. Bindings compare
    // bound names by addr identity (sameName), so rebinding the same IP name looks like a
    // change. Namer's contract: "Lookups of one path should return the same Activity".
    expect(sameName(first, second)).toBe(true);
  });

  it("fails malformed inet and rinet paths", () => {
    const { namer } = setup();
    expect(stateText(lookup(namer, "/$/inet").sample())).toBe(
      "failed: /$/inet/: expected /$/inet/<host>/<port>",
    );
    expect(stateText(lookup(namer, "/$/inet/web/http").sample())).toBe(
      "failed: /$/inet/web/http: expected /$/inet/<host>/<port>",
    );
    expect(stateText(lookup(namer, "/$/inet/web/65536").sample())).toContain("failed:");
    expect(stateText(lookup(namer, "/$/io.buoyant.rinet/443").sample())).toBe(
      "failed: /$/io.buoyant.rinet/443: expected /$/io.buoyant.rinet/<port>/<host>",
    );
    expect(stateText(lookup(namer, "/$/io.buoyant.rinet/web/443").sample())).toContain(
      "expected /$/io.buoyant.rinet/<port>/<host>",
    );
  });
});

describe("global namer: terminals, rewriting namers, unknown names", () => {
  it("binds /$/fail to Fail", () => {
    expect(stateText(lookup(setup().namer, "/$/fail").sample())).toBe("!");
  });

  it("binds /$/nil to Empty", () => {
    expect(stateText(lookup(setup().namer, "/$/nil/anything").sample())).toBe("$");
  });

  it("fails /$/<unknown> naming the namer and the path", () => {
    const s = lookup(setup().namer, "/$/unknownNamer/x").sample();
    expect(s.status).toBe("failed");
    const msg = s.status === "failed" ? s.error.message : "";
    expect(msg).toContain("unknown namer /$/unknownNamer");
    expect(msg).toContain("/$/unknownNamer/x");
    expect(msg).toContain("inet");
  });

  it("answers Neg for paths outside /$/", () => {
    const { namer } = setup();
    expect(stateText(lookup(namer, "/svc/web").sample())).toBe("~");
    expect(stateText(lookup(namer, "/#/io.l5d.fs/web").sample())).toBe("~");
    expect(stateText(lookup(namer, "/$").sample())).toBe("~");
  });

  it("rewrites through the rewriting namers into a path to bind further", () => {
    const { namer } = setup();
    expect(
      stateText(lookup(namer, "/$/io.buoyant.http.domainToPathPfx/pfx/a.b.c/r").sample()),
    ).toBe("path:/pfx/c/b/a/r");
    expect(stateText(lookup(namer, "/$/io.buoyant.porthostPfx/p/web:80").sample())).toBe(
      "path:/p/80/web",
    );
  });

  it("answers Neg when a rewriting namer does not match", () => {
    expect(
      stateText(lookup(setup().namer, "/$/io.buoyant.http.subdomainOfPfx/a.io/pfx/b.io").sample()),
    ).toBe("~");
  });

  it("binds a rewriting namer's result through the dtab", () => {
    const { namer } = setup();
    const ctx = {
      dtab: readDtab(
        "/host => /$/io.buoyant.hostportPfx/hp; /hp/web => /$/inet/127.0.0.1; /svc => /host",
      ),
      namers: globalLookup(namer),
    };
    const s = bindPath(ctx, readPath("/svc/web:8080/x"), (v) => v.sample());
    expect(stateText(s)).toBe("/$/inet/127.0.0.1/8080 residual=/x");
  });

  it("lists every built-in name", () => {
    expect(GLOBAL_NAMER_NAMES.slice(0, 4)).toEqual(["inet", "io.buoyant.rinet", "fail", "nil"]);
    expect(GLOBAL_NAMER_NAMES).toContain("io.buoyant.hostportPfx");
    expect(GLOBAL_NAMER_NAMES).toHaveLength(14);
  });

  it("binds a /$/ path with an empty dtab", () => {
    const s = bindPath(
      { dtab: Dtab.empty, namers: globalLookup(setup().namer) },
      readPath("/$/inet/127.0.0.1/1"),
      (v) => v.sample(),
    );
    expect(stateText(s)).toBe("/$/inet/127.0.0.1/1");
  });
});
