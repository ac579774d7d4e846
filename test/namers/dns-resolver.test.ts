// The `dns` block's resolver against a real DNS server on loopback (test/support/dns-server.ts):
// TTLs, refresh while observed, in-flight sharing, negative answers, stale-if-error, timeouts,
// address families, the hosts file and localhost. Real timers, TTLs of 1–2 s.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DnsConfig } from "../../gateway/config/egress-schemas.js";
import { createLogger } from "../../gateway/log.js";
import { createDnsResolver, type DnsResolver, type HostState } from "../../gateway/namers/dns.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { readPath, settle } from "../../gateway/naming/index.js";
import { DnsServer } from "../support/dns-server.js";
import {
  addrText,
  Observations,
  onlyBound,
  sleep,
  stateText,
  TempDirs,
  waitUntil,
} from "./helpers.js";

const obs = new Observations();
const dirs = new TempDirs();
const servers: DnsServer[] = [];
const resolvers: DnsResolver[] = [];

afterEach(async () => {
  obs.stopAll();
  for (const r of resolvers.splice(0)) r.close();
  for (const s of servers.splice(0)) await s.close();
  dirs.cleanup();
});

const BASE: Omit<DnsConfig, "servers"> = {
  timeoutMs: 300,
  tries: 1,
  minTtlSecs: 0,
  maxTtlSecs: 300,
  negativeTtlSecs: 1,
  staleIfErrorSecs: 1,
  family: "v4-preferred",
};

interface Setup {
  readonly server: DnsServer;
  readonly resolver: DnsResolver;
  readonly hostsFile: string;
  /** Log lines at warn and above. */
  readonly warnings: string[];
}

async function setup(dns: Partial<DnsConfig> = {}, hosts = "", resolv = ""): Promise<Setup> {
  const server = await DnsServer.start();
  servers.push(server);
  const dir = dirs.make();
  const hostsFile = join(dir, "hosts");
  const resolvConf = join(dir, "resolv.conf");
  writeFileSync(hostsFile, hosts);
  writeFileSync(resolvConf, resolv);
  const warnings: string[] = [];
  const log = createLogger({
    level: "warn",
    sink: (line) => warnings.push(line),
  });
  const resolver = createDnsResolver(
    { ...BASE, servers: [server.address], ...dns },
    { log, hostsFile, resolvConf },
  );
  resolvers.push(resolver);
  return { server, resolver, hostsFile, warnings };
}

function hostText(s: HostState): string {
  switch (s.kind) {
    case "ok":
      return `ok ${s.ips.join(",")}`;
    case "neg":
      return "neg";
    case "failed":
      return `failed ${s.error.message}`;
    default:
      return "pending";
  }
}

/** Observes `host` and waits for its first answer. */
async function watchAnswered(resolver: DnsResolver, host: string, timeoutMs = 3000) {
  const v = resolver.watch(host);
  const live = obs.live(v);
  await waitUntil(() => v.sample().kind !== "pending", `an answer for ${host}`, timeoutMs);
  return { v, live, text: () => hostText(v.sample()) };
}

describe("TTLs", () => {
  it("asks nothing before the TTL runs out, and refreshes before it expires while observed", async () => {
    const { server, resolver } = await setup();
    server.set("api.test", { a: ["127.0.0.2"], ttl: 3 });
    const w = await watchAnswered(resolver, "api.test");
    const answeredAt = Date.now();
    expect(w.text()).toBe("ok 127.0.0.2");
    await sleep(2000);
    expect(server.queries("api.test", "A")).toBe(1);
    await waitUntil(() => server.queries("api.test", "A") === 2, "the refresh", 2000, 5);
    // Due at 85% of the TTL (2.55 s), before the answer expires.
    const refreshedAfter = Date.now() - answeredAt;
    expect(refreshedAfter).toBeGreaterThanOrEqual(2400);
    expect(refreshedAfter).toBeLessThan(3000);
    // The name never went back to pending: nothing waited on the refresh.
    expect(w.live.values.map(hostText)).toEqual(["ok 127.0.0.2"]);
    expect(w.text()).toBe("ok 127.0.0.2");
  });

  it("serves a cached answer to a new observer within its TTL, and stops refreshing unobserved names", async () => {
    const { server, resolver } = await setup();
    server.set("api.test", { a: ["127.0.0.2"], ttl: 2 });
    const first = await watchAnswered(resolver, "api.test");
    first.live.stop();
    const again = resolver.watch("api.test");
    expect(hostText(again.sample())).toBe("ok 127.0.0.2");
    obs.live(again).stop();
    expect(server.queries("api.test")).toBe(1);
    await sleep(2500);
    expect(server.queries("api.test")).toBe(1);
  });

  it("keeps answers at least minTtlSecs", async () => {
    const { server, resolver } = await setup({ minTtlSecs: 2 });
    server.set("zero.test", { a: ["127.0.0.2"], ttl: 0 });
    await watchAnswered(resolver, "zero.test");
    await sleep(1400);
    expect(server.queries("zero.test")).toBe(1);
    await waitUntil(() => server.queries("zero.test") === 2, "the refresh", 1500);
  });

  it("keeps answers at most maxTtlSecs", async () => {
    const { server, resolver } = await setup({ maxTtlSecs: 1 });
    server.set("long.test", { a: ["127.0.0.2"], ttl: 3600 });
    await watchAnswered(resolver, "long.test");
    const answeredAt = Date.now();
    await waitUntil(() => server.queries("long.test") === 2, "the refresh", 2000, 5);
    expect(Date.now() - answeredAt).toBeLessThan(1500);
  });
});

describe("sharing", () => {
  it("answers every concurrent observer of a name with one query", async () => {
    const { server, resolver } = await setup();
    server.set("api.test", { a: ["127.0.0.2"], ttl: 60 });
    const namer = createGlobalNamer(resolver);
    // All of these observe the name while its first query is in flight.
    const a = obs.live(resolver.watch("api.test"));
    const b = obs.live(resolver.watch("api.test"));
    const states = await Promise.all(
      ["/$/inet/api.test/80", "/$/inet/api.test/81", "/$/io.buoyant.rinet/82/api.test"].map((p) =>
        settle(namer.lookup(readPath(p))),
      ),
    );
    await waitUntil(() => a.current().kind === "ok" && b.current().kind === "ok", "the answers");
    const addrs = states.map((s) => onlyBound(s).addr);
    for (const addr of addrs) obs.live(addr);
    expect(addrs.map((x) => addrText(x.sample()))).toEqual([
      "127.0.0.2:80*1",
      "127.0.0.2:81*1",
      "127.0.0.2:82*1",
    ]);
    expect(server.queries("api.test", "A")).toBe(1);
    expect(server.queries("api.test", "AAAA")).toBe(0);
  });
});

describe("negative answers", () => {
  it("turns NXDOMAIN into neg, kept for negativeTtlSecs, then notices the name appear", async () => {
    const { server, resolver } = await setup({ negativeTtlSecs: 1 });
    server.nxdomain("new.test");
    const w = await watchAnswered(resolver, "new.test");
    expect(w.text()).toBe("neg");
    server.set("new.test", { a: ["127.0.0.7"], ttl: 60 });
    await sleep(600);
    expect(server.queries("new.test")).toBe(1);
    expect(w.text()).toBe("neg");
    await waitUntil(() => w.text() === "ok 127.0.0.7", "the new name", 2000);
  });

  it("turns 'no data' for every wanted family into neg", async () => {
    const { server, resolver } = await setup({ family: "v4" });
    server.set("v6only.test", { aaaa: ["::7"] });
    expect((await watchAnswered(resolver, "v6only.test")).text()).toBe("neg");
  });

  it("binds an NXDOMAIN name to neg, so a dtab alternate can take over", async () => {
    const { server, resolver } = await setup();
    server.nxdomain("gone.test");
    const a = createGlobalNamer(resolver).lookup(readPath("/$/inet/gone.test/80"));
    expect(stateText(await settle(a))).toBe("~");
  });
});

describe("failures", () => {
  it("fails a name whose server answers SERVFAIL, naming the host and the error", async () => {
    const { server, resolver, warnings } = await setup();
    server.servfail("broken.test");
    const w = await watchAnswered(resolver, "broken.test");
    expect(w.text()).toBe(
      `failed resolving broken.test failed: ESERVFAIL (DNS server ${server.address} answered SERVFAIL)`,
    );
    expect(warnings.filter((l) => l.includes("DNS look-up failed"))).toHaveLength(1);
  });

  it("keeps the last answer for staleIfErrorSecs after it expires, then fails", async () => {
    const { server, resolver, warnings } = await setup({ staleIfErrorSecs: 1 });
    server.set("flaky.test", { a: ["127.0.0.2"], ttl: 1 });
    const w = await watchAnswered(resolver, "flaky.test");
    const answeredAt = Date.now();
    server.servfail("flaky.test");
    // The answer expires at 1 s; the refresh then fails and the answer is kept until 2 s.
    await waitUntil(() => server.queries("flaky.test") >= 2, "a failing refresh", 2000);
    await sleep(Math.max(0, answeredAt + 1700 - Date.now()));
    expect(w.text()).toBe("ok 127.0.0.2");
    await waitUntil(() => w.v.sample().kind === "failed", "the name to fail", 2500);
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(1900);
    expect(w.text()).toBe(
      `failed resolving flaky.test failed: ESERVFAIL (DNS server ${server.address} answered SERVFAIL)`,
    );
    expect(w.live.values.map(hostText)).toEqual(["ok 127.0.0.2", w.text()]);
    expect(warnings.filter((l) => l.includes("keeping the last answer"))).toHaveLength(1);
    // And back when the server answers again.
    server.set("flaky.test", { a: ["127.0.0.3"], ttl: 60 });
    await waitUntil(() => w.text() === "ok 127.0.0.3", "the name back", 2500);
  });

  it("times out after timeoutMs, waiting longer for each retry, asking `tries` times", async () => {
    const { server, resolver } = await setup({ timeoutMs: 300, tries: 2 });
    server.silent("slow.test");
    const started = Date.now();
    const w = await watchAnswered(resolver, "slow.test", 5000);
    const took = Date.now() - started;
    expect(w.text()).toBe(
      `failed resolving slow.test failed: ETIMEOUT (DNS server ${server.address} did not answer)`,
    );
    expect(server.queries("slow.test", "A")).toBe(2);
    // c-ares doubles the wait for each retry: 300 + 600 ms here.
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(1800);
  });

  it("asks once with tries: 1", async () => {
    const { server, resolver } = await setup({ timeoutMs: 300, tries: 1 });
    server.silent("slow.test");
    const started = Date.now();
    await watchAnswered(resolver, "slow.test");
    expect(Date.now() - started).toBeLessThan(1000);
    expect(server.queries("slow.test", "A")).toBe(1);
  });

  it("fails (and does not crash) when the server sends garbage", async () => {
    const { server, resolver } = await setup();
    server.garbage("odd.test");
    const w = await watchAnswered(resolver, "odd.test");
    expect(w.text()).toMatch(/^failed resolving odd\.test failed: E[A-Z]+ \(/);
  });

  it("names every server when none answers", async () => {
    const server = await DnsServer.start();
    const other = await DnsServer.start();
    servers.push(server, other);
    const both = createDnsResolver(
      { ...BASE, servers: [server.address, other.address] },
      { log: createLogger({ sink: () => {} }), hostsFile: "/nonexistent" },
    );
    resolvers.push(both);
    server.silent("slow.test");
    other.silent("slow.test");
    const w = await watchAnswered(both, "slow.test");
    expect(w.text()).toBe(
      `failed resolving slow.test failed: ETIMEOUT (DNS servers ${server.address}, ${other.address} did not answer)`,
    );
  });
});

describe("families", () => {
  const cases: Array<[DnsConfig["family"], string, string]> = [
    ["v4-preferred", "ok 127.0.0.2", "ok ::3"],
    ["v6-preferred", "ok ::2", "ok ::3"],
    ["all", "ok 127.0.0.2,::2", "ok ::3"],
    ["v4", "ok 127.0.0.2", "neg"],
    ["v6", "ok ::2", "ok ::3"],
  ];
  it.each(cases)("%s", async (family, dual, v6only) => {
    const { server, resolver } = await setup({ family });
    server.set("dual.test", { a: ["127.0.0.2"], aaaa: ["::2"] });
    server.set("v6.test", { aaaa: ["::3"] });
    expect((await watchAnswered(resolver, "dual.test")).text()).toBe(dual);
    expect((await watchAnswered(resolver, "v6.test")).text()).toBe(v6only);
  });

  it("asks for AAAA under v4-preferred only when there are no A records", async () => {
    const { server, resolver } = await setup({ family: "v4-preferred" });
    server.set("dual.test", { a: ["127.0.0.2"], aaaa: ["::2"] });
    await watchAnswered(resolver, "dual.test");
    expect(server.queries("dual.test", "A")).toBe(1);
    expect(server.queries("dual.test", "AAAA")).toBe(0);
  });
});

describe("changes", () => {
  it("pushes a changed address set to observers, and only when the set changes", async () => {
    const { server, resolver } = await setup();
    server.set("api.test", { a: ["127.0.0.2", "127.0.0.3"], ttl: 1 });
    const a = createGlobalNamer(resolver).lookup(readPath("/$/inet/api.test/8080"));
    const addr = onlyBound(await settle(a)).addr;
    const live = obs.live(addr);
    await waitUntil(() => addr.sample().kind === "bound", "the first addresses");
    expect(addrText(addr.sample())).toBe("127.0.0.2:8080*1,127.0.0.3:8080*1");
    // The same set in another order, and again with duplicates: not a change.
    server.set("api.test", { a: ["127.0.0.3", "127.0.0.2", "127.0.0.3"], ttl: 1 });
    const before = server.queries("api.test");
    await waitUntil(() => server.queries("api.test") >= before + 1, "a refresh", 2500);
    server.set("api.test", { a: ["127.0.0.4"], ttl: 1 });
    await waitUntil(
      () => addrText(addr.sample()) === "127.0.0.4:8080*1",
      () => `the new address (now ${addrText(addr.sample())})`,
      2500,
    );
    expect(live.values.map(addrText)).toEqual(["127.0.0.4:8080*1"]);
  });
});

describe("search domains", () => {
  const resolv = "nameserver 192.0.2.53\nsearch corp.test other.test\noptions ndots:5\n";

  it("tries a name without a dot with the search domains first", async () => {
    const { server, resolver } = await setup({}, "", resolv);
    server.set("users.other.test", { a: ["127.0.0.8"] });
    expect((await watchAnswered(resolver, "users")).text()).toBe("ok 127.0.0.8");
    expect(server.queries("users.corp.test")).toBe(1);
    expect(server.queries("users")).toBe(0);
  });

  it("asks a name with a dot as written first (ndots:1), then with the search domains", async () => {
    const { server, resolver } = await setup({}, "", resolv);
    server.set("api.example.test", { a: ["127.0.0.8"] });
    server.set("users.ns.corp.test", { a: ["127.0.0.9"] });
    expect((await watchAnswered(resolver, "api.example.test")).text()).toBe("ok 127.0.0.8");
    expect(server.queries("api.example.test.corp.test")).toBe(0);
    expect((await watchAnswered(resolver, "users.ns")).text()).toBe("ok 127.0.0.9");
    expect(server.queries("users.ns")).toBe(1);
  });

  it("asks a name ending in a dot only as written, and is neg when no name of the search exists", async () => {
    const { server, resolver } = await setup({}, "", resolv);
    server.set("users.corp.test", { a: ["127.0.0.8"] });
    expect((await watchAnswered(resolver, "users.")).text()).toBe("neg");
    expect(server.queries("users.corp.test")).toBe(0);
    expect((await watchAnswered(resolver, "nobody")).text()).toBe("neg");
    expect(server.queries("nobody")).toBe(1);
  });

  it("stops at a failure instead of trying the next name", async () => {
    const { server, resolver } = await setup({}, "", resolv);
    server.servfail("users.corp.test");
    server.set("users.other.test", { a: ["127.0.0.8"] });
    expect((await watchAnswered(resolver, "users")).text()).toMatch(
      /^failed resolving users failed: ESERVFAIL/,
    );
    expect(server.queries("users.other.test")).toBe(0);
  });
});

describe("hosts file, localhost and IP literals", () => {
  it("answers names in the hosts file from it, without asking DNS", async () => {
    const { server, resolver } = await setup(
      {},
      "# comment\n127.0.0.5 files.test alias.test  # trailing\n::5 files.test\n",
    );
    server.set("files.test", { a: ["127.0.0.99"] });
    expect((await watchAnswered(resolver, "files.test")).text()).toBe("ok 127.0.0.5");
    expect((await watchAnswered(resolver, "ALIAS.test")).text()).toBe("ok 127.0.0.5");
    expect(server.queries("files.test")).toBe(0);
  });

  it("applies the family policy to the hosts file, asking DNS when it lists no wanted address", async () => {
    const { server, resolver } = await setup({ family: "v4" }, "::5 files.test\n");
    server.set("files.test", { a: ["127.0.0.99"] });
    expect((await watchAnswered(resolver, "files.test")).text()).toBe("ok 127.0.0.99");
  });

  it("notices a changed hosts file", async () => {
    const { resolver, hostsFile } = await setup({ maxTtlSecs: 1 }, "127.0.0.5 files.test\n");
    const w = await watchAnswered(resolver, "files.test");
    expect(w.text()).toBe("ok 127.0.0.5");
    writeFileSync(hostsFile, "127.0.0.6 files.test other.test\n");
    await waitUntil(() => w.text() === "ok 127.0.0.6", "the new address", 2500);
  });

  it("answers localhost with loopback even when the hosts file does not list it", async () => {
    const { server, resolver } = await setup({}, "");
    expect((await watchAnswered(resolver, "localhost")).text()).toBe("ok 127.0.0.1");
    expect(server.queries("localhost")).toBe(0);
  });

  it("reads /etc/hosts by default", async () => {
    const server = await DnsServer.start();
    servers.push(server);
    const resolver = createDnsResolver(
      { ...BASE, servers: [server.address] },
      { log: createLogger({ sink: () => {} }) },
    );
    resolvers.push(resolver);
    expect((await watchAnswered(resolver, "localhost")).text()).toMatch(/^ok 127\./);
  });

  it("answers IP literals at once, for good, without a query", async () => {
    const { server, resolver } = await setup();
    const v4 = resolver.watch("192.0.2.1");
    const v6 = resolver.watch("2001:db8::1");
    expect(hostText(v4.sample())).toBe("ok 192.0.2.1");
    expect(hostText(v6.sample())).toBe("ok 2001:db8::1");
    expect(v4.constant).toBe(true);
    expect(server.queries("192.0.2.1")).toBe(0);
  });
});

describe("close", () => {
  it("stops the look-ups in flight without logging a failure", async () => {
    const { server, resolver, warnings } = await setup({ timeoutMs: 2000, tries: 2 });
    server.silent("slow.test");
    const live = obs.live(resolver.watch("slow.test"));
    await waitUntil(() => server.queries("slow.test") === 1, "the query");
    resolver.close();
    await sleep(50);
    expect(live.current().kind).toBe("pending");
    expect(warnings).toEqual([]);
  });
});
