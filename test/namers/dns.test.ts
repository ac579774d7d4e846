import { afterEach, describe, expect, it } from "vitest";
import type { HostState } from "../../gateway/namers/dns.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { readPath, settle } from "../../gateway/naming/index.js";
import {
  addrText,
  dnsError,
  fakeDns,
  fakeResolver,
  Observations,
  onlyBound,
  sleep,
  stateText,
  waitForState,
  waitUntil,
} from "./helpers.js";

const obs = new Observations();
afterEach(() => obs.stopAll());

function hostText(s: HostState): string {
  switch (s.kind) {
    case "ok":
      return `ok ${s.ips.join(",")}`;
    case "neg":
      return `neg ${s.reason}`;
    case "failed":
      return `failed ${s.error.message}`;
    default:
      return "pending";
  }
}

function resolverWith(answers: Record<string, readonly string[] | Error>) {
  const dns = fakeDns(answers);
  return { dns, resolver: fakeResolver(dns.lookup) };
}

// The resolver's behaviour over look-ups that answer at once (TTL 0, kept 20 ms);
// dns-resolver.test.ts runs it against a real DNS server.
describe("DnsResolver", () => {
  it("answers an IP literal at once, as a constant, without a lookup", () => {
    const { dns, resolver } = resolverWith({});
    const v4 = resolver.watch("192.0.2.1");
    const v6 = resolver.watch("2001:db8::1");
    expect(hostText(v4.sample())).toBe("ok 192.0.2.1");
    expect(hostText(v6.sample())).toBe("ok 2001:db8::1");
    expect(v4.constant).toBe(true);
    expect(dns.calls).toEqual([]);
  });

  it("is pending until observed, then resolves (sorted, deduplicated)", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.9", "192.0.2.1", "192.0.2.9"] });
    const v = resolver.watch("web");
    expect(hostText(v.sample())).toBe("pending");
    expect(dns.calls).toEqual([]);
    obs.live(v);
    await waitUntil(() => v.sample().kind !== "pending", "the first answer");
    expect(hostText(v.sample())).toBe("ok 192.0.2.1,192.0.2.9");
  });

  it("returns the same Var for the same host while in use", () => {
    const { resolver } = resolverWith({ web: ["192.0.2.1"] });
    const v = resolver.watch("web");
    obs.live(v);
    expect(resolver.watch("web")).toBe(v);
  });

  it("reports NXDOMAIN as neg with the code", async () => {
    const { resolver } = resolverWith({});
    const v = resolver.watch("nx.example");
    obs.live(v);
    await waitUntil(() => v.sample().kind !== "pending", "the answer");
    expect(hostText(v.sample())).toBe("neg nx.example: no such host (ENOTFOUND)");
  });

  it("reports an empty answer as neg", async () => {
    const { resolver } = resolverWith({ empty: [] });
    const v = resolver.watch("empty");
    obs.live(v);
    await waitUntil(() => v.sample().kind !== "pending", "the answer");
    expect(hostText(v.sample())).toBe("neg empty has no addresses");
  });

  it("reports a failure that is not NXDOMAIN as failed", async () => {
    const { resolver } = resolverWith({
      slow: dnsError("ETIMEOUT"),
      odd: new Error("socket hang up"),
    });
    const slow = resolver.watch("slow");
    const odd = resolver.watch("odd");
    obs.live(slow);
    obs.live(odd);
    await waitUntil(
      () => slow.sample().kind !== "pending" && odd.sample().kind !== "pending",
      "the answers",
    );
    expect(hostText(slow.sample())).toBe("failed resolving slow failed: ETIMEOUT");
    expect(hostText(odd.sample())).toBe("failed resolving odd failed: socket hang up");
  });

  it("re-resolves while observed and publishes a changed answer", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.1"] });
    const v = resolver.watch("web");
    const live = obs.live(v);
    await waitUntil(() => hostText(v.sample()) === "ok 192.0.2.1", "the first answer");
    dns.set("web", ["192.0.2.2", "192.0.2.3"]);
    await waitUntil(() => hostText(v.sample()) === "ok 192.0.2.2,192.0.2.3", "the new answer");
    expect(live.values.map(hostText)).toEqual(["ok 192.0.2.1", "ok 192.0.2.2,192.0.2.3"]);
  });

  it("does not publish an unchanged answer (same IPs in another order)", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.1", "192.0.2.2"] });
    const v = resolver.watch("web");
    const live = obs.live(v);
    await waitUntil(() => v.sample().kind === "ok", "the first answer");
    dns.set("web", ["192.0.2.2", "192.0.2.1"]);
    const before = dns.count("web");
    await waitUntil(() => dns.count("web") >= before + 3, "three more lookups");
    expect(live.values.map(hostText)).toEqual(["ok 192.0.2.1,192.0.2.2"]);
  });

  it("keeps the last good answer when a later lookup fails", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.1"] });
    const v = resolver.watch("web");
    const live = obs.live(v);
    await waitUntil(() => v.sample().kind === "ok", "the first answer");
    dns.set("web", dnsError("ETIMEOUT"));
    const before = dns.count("web");
    await waitUntil(() => dns.count("web") >= before + 3, "three failing lookups");
    expect(hostText(v.sample())).toBe("ok 192.0.2.1");
    expect(live.values.map(hostText)).toEqual(["ok 192.0.2.1"]);
    dns.set("web", ["192.0.2.4"]);
    await waitUntil(() => hostText(v.sample()) === "ok 192.0.2.4", "the recovered answer");
  });

  it("turns a good answer into neg when the name goes away, and back", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.1"] });
    const v = resolver.watch("web");
    obs.live(v);
    await waitUntil(() => v.sample().kind === "ok", "the first answer");
    dns.set("web", dnsError("ENOTFOUND"));
    await waitUntil(() => v.sample().kind === "neg", "neg");
    dns.set("web", ["192.0.2.5"]);
    await waitUntil(() => hostText(v.sample()) === "ok 192.0.2.5", "the name back");
  });

  it("stops looking the name up when nothing observes it", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.1"] });
    const v = resolver.watch("web");
    const live = obs.live(v);
    await waitUntil(() => dns.count("web") >= 3, "a few look-ups");
    live.stop();
    await sleep(30); // let a lookup already running finish
    const after = dns.count("web");
    await sleep(150); // 7 refresh periods
    expect(dns.count("web")).toBe(after);
  });

  it("looks the name up again when observed again", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.1"] });
    const first = obs.live(resolver.watch("web"));
    await waitUntil(() => dns.count("web") >= 1, "the first look-up");
    first.stop();
    await sleep(30);
    dns.set("web", ["192.0.2.8"]);
    const v = resolver.watch("web");
    obs.live(v);
    await waitUntil(() => hostText(v.sample()) === "ok 192.0.2.8", "the new answer");
  });

  it("stops when the last observer leaves from inside a change notification", async () => {
    const { dns, resolver } = resolverWith({ web: ["192.0.2.1"] });
    const v = resolver.watch("web");
    // settle() stops observing from inside the listener that reports the first answer.
    let stop: () => void = () => {};
    await new Promise<void>((resolve) => {
      stop = v.observe(() => {
        stop();
        resolve();
      });
    });
    const after = dns.count("web");
    await sleep(150);
    // Regression: stop() runs while the refresh is inside cell.set(); it clears the (already
    // fired) timer, and the refresh must not schedule the next look-up after that.
    expect(dns.count("web")).toBe(after);
  });
});

describe("DNS re-resolution through /$/inet", () => {
  it("changes the bound name's addresses when the answer changes, keeping the name", async () => {
    const dns = fakeDns({ "web.example": ["192.0.2.1"] });
    const resolver = fakeResolver(dns.lookup);
    const namer = createGlobalNamer(resolver);
    const a = namer.lookup(readPath("/$/inet/web.example/8080/r"));
    const tree = obs.live(a);
    await waitForState(a, "/$/inet/web.example/8080 residual=/r");
    const b = onlyBound(a.sample());
    const addr = obs.live(b.addr);
    await waitUntil(() => addrText(b.addr.sample()) === "192.0.2.1:8080*1", "the first address");

    dns.set("web.example", ["192.0.2.2", "192.0.2.3"]);
    await waitUntil(
      () => addrText(b.addr.sample()) === "192.0.2.2:8080*1,192.0.2.3:8080*1",
      () => `the new addresses (now ${addrText(b.addr.sample())})`,
    );
    expect(addr.values.map(addrText)).toContain("192.0.2.2:8080*1,192.0.2.3:8080*1");
    // The tree did not change: same bound name, only its addresses moved.
    expect(onlyBound(a.sample())).toBe(b);
    expect(tree.values.map(stateText).filter((t) => t !== stateText(a.sample()))).toEqual([]);
  });

  it("keeps the last good addresses when a later lookup fails", async () => {
    const dns = fakeDns({ "web.example": ["192.0.2.1"] });
    const resolver = fakeResolver(dns.lookup);
    const a = createGlobalNamer(resolver).lookup(readPath("/$/inet/web.example/80"));
    obs.live(a);
    await waitForState(a, "/$/inet/web.example/80");
    const b = onlyBound(a.sample());
    obs.live(b.addr);
    await waitUntil(() => b.addr.sample().kind === "bound", "the first addresses");
    dns.set("web.example", dnsError("ETIMEOUT"));
    const before = dns.count("web.example");
    await waitUntil(() => dns.count("web.example") >= before + 3, "failing lookups");
    expect(addrText(b.addr.sample())).toBe("192.0.2.1:80*1");
    expect(stateText(a.sample())).toBe("/$/inet/web.example/80");
  });

  it("turns the binding neg when the name disappears", async () => {
    const dns = fakeDns({ "web.example": ["192.0.2.1"] });
    const resolver = fakeResolver(dns.lookup);
    const a = createGlobalNamer(resolver).lookup(readPath("/$/inet/web.example/80"));
    obs.live(a);
    await waitForState(a, "/$/inet/web.example/80");
    dns.set("web.example", dnsError("ENOTFOUND"));
    await waitForState(a, "~");
  });

  it("stops resolving once the binding is no longer observed", async () => {
    const dns = fakeDns({ "web.example": ["192.0.2.1"] });
    const resolver = fakeResolver(dns.lookup);
    const a = createGlobalNamer(resolver).lookup(readPath("/$/inet/web.example/80"));
    const live = obs.live(a);
    await waitUntil(() => dns.count("web.example") >= 3, "a few look-ups");
    live.stop();
    await sleep(30);
    const after = dns.count("web.example");
    await sleep(150);
    expect(dns.count("web.example")).toBe(after);
  });

  it("settle() sees the first answer of an unobserved name", async () => {
    const dns = fakeDns({ "web.example": ["192.0.2.1"] });
    const resolver = fakeResolver(dns.lookup);
    const s = await settle(createGlobalNamer(resolver).lookup(readPath("/$/inet/web.example/80")));
    expect(stateText(s)).toBe("/$/inet/web.example/80");
  });
});
