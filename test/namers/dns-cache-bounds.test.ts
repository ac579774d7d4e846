// The DNS cache's bounds, on a fake clock and a fake look-up function: at most maxNames
// names (least recently used unwatched ones dropped, counted), watched names never dropped
// (overflow counted and warned), and a wave of names expiring together refreshed with at
// most maxLookupsInFlight look-ups at once, spread by jitter, stale answers serving meanwhile.

import { afterEach, describe, expect, it } from "vitest";
import type { Clock, Timer } from "../../gateway/clock.js";
import { dnsBlock } from "../../gateway/config/egress-schemas.js";
import { DecodeContext, INVALID } from "../../gateway/config/schema.js";
import { createLogger } from "../../gateway/log.js";
import { DnsResolver, type HostState } from "../../gateway/namers/dns.js";
import type { DnsAnswer } from "../../gateway/namers/dns-cache.js";
import { Registry } from "../../gateway/telemetry/index.js";
import { seeded } from "../support/seeded.js";

interface ManualTimer extends Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  live: boolean;
}

/** A clock whose time moves only when the test advances it, running the timers due. */
class ManualClock implements Clock {
  t = 0;
  private seq = 0;
  private readonly heap: ManualTimer[] = [];

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true, unref() {} };
    this.push(timer);
    return timer;
  }

  clearTimeout(timer: Timer): void {
    (timer as ManualTimer).live = false;
  }

  /** Moves time to now + ms, running each timer at its time and letting promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    while (this.heap.length > 0 && this.heap[0]!.at <= end) {
      const at = this.heap[0]!.at;
      this.t = at;
      while (this.heap.length > 0 && this.heap[0]!.at === at) {
        const timer = this.pop();
        if (timer.live) timer.fn();
      }
      await settle();
    }
    this.t = end;
  }

  private before(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  private swap(a: number, b: number): void {
    const x = this.heap[a]!;
    this.heap[a] = this.heap[b]!;
    this.heap[b] = x;
  }

  private push(timer: ManualTimer): void {
    this.heap.push(timer);
    for (let i = this.heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): ManualTimer {
    const top = this.heap[0]!;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.heap.length && this.before(l, m)) m = l;
        if (r < this.heap.length && this.before(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/**
 * Look-ups answered by the fake clock after `delayMs` (at once when 0), with the IPs `ips`
 * gives; records how many run at once and when each started.
 */
class TimedDns {
  delayMs = 0;
  running = 0;
  maxRunning = 0;
  readonly started: { host: string; at: number }[] = [];
  ips = (_host: string) => ["10.0.0.1"];

  constructor(
    private readonly clock: ManualClock,
    private readonly ttlSecs: number,
  ) {}

  readonly lookup = (host: string): Promise<DnsAnswer> => {
    this.started.push({ host, at: this.clock.now() });
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise((resolve) => {
      const answer = () => {
        this.running--;
        resolve({ ips: this.ips(host), ttlSecs: this.ttlSecs });
      };
      if (this.delayMs === 0) queueMicrotask(answer);
      else this.clock.setTimeout(answer, this.delayMs);
    });
  };

  count(host: string): number {
    return this.started.filter((s) => s.host === host).length;
  }
}

const stops: (() => void)[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
});

function resolverOn(
  clock: ManualClock,
  dns: TimedDns,
  limits: { maxNames?: number; maxLookupsInFlight?: number },
  warnings: string[] = [],
): DnsResolver {
  const resolver = new DnsResolver({
    log: createLogger({ level: "warn", sink: (line) => warnings.push(line) }),
    lookup: dns.lookup,
    minTtlMs: 1000,
    maxTtlMs: 300_000,
    negativeTtlMs: 30_000,
    staleIfErrorMs: 300_000,
    minRefreshMs: 1000,
    clock,
    random: seeded(7),
    ...limits,
  });
  stops.push(() => resolver.close());
  return resolver;
}

/** Watches `host` until `stop`, recording every state it reports. */
function watch(resolver: DnsResolver, host: string) {
  const v = resolver.watch(host);
  const seen: HostState[] = [];
  const stop = v.observe((s) => seen.push(s));
  stops.push(stop);
  return { v, seen, stop };
}

const text = (s: HostState) => (s.kind === "ok" ? `ok ${s.ips.join(",")}` : s.kind);

describe("the DNS cache's bound", () => {
  it("drops the least recently used unwatched name past maxNames, and counts it", async () => {
    const clock = new ManualClock();
    const dns = new TimedDns(clock, 60);
    const resolver = resolverOn(clock, dns, { maxNames: 3 });
    // Resolve a, b and c once each (watched, then left alone).
    for (const host of ["a.test", "b.test", "c.test"]) {
      const w = watch(resolver, host);
      await clock.advance(0);
      expect(text(w.v.sample())).toBe("ok 10.0.0.1");
      w.stop();
    }
    await clock.advance(1000);
    // a is used again (answered from the cache), so b is now the least recently used.
    const again = watch(resolver, "a.test");
    expect(again.v.sample().kind).toBe("ok");
    again.stop();
    expect(dns.count("a.test")).toBe(1);
    expect(resolver.stats).toMatchObject({ names: 3, evicts: 0 });

    watch(resolver, "d.test").stop();
    await clock.advance(0);
    expect(resolver.stats).toMatchObject({ names: 3, evicts: 1, overflow: 0 });
    // a and c still answer from the cache; b was dropped and is looked up again.
    for (const host of ["a.test", "c.test"]) {
      const w = watch(resolver, host);
      expect(text(w.v.sample())).toBe("ok 10.0.0.1");
      w.stop();
    }
    const b = watch(resolver, "b.test");
    expect(b.v.sample().kind).toBe("pending");
    await clock.advance(0);
    expect(text(b.v.sample())).toBe("ok 10.0.0.1");
    expect(dns.count("b.test")).toBe(2);
    expect(dns.count("a.test")).toBe(1);
    expect(resolver.stats.names).toBe(3);
    expect(resolver.stats.evicts).toBe(2);
  });

  it("keeps many names within maxNames however many are asked", async () => {
    const clock = new ManualClock();
    const dns = new TimedDns(clock, 60);
    const resolver = resolverOn(clock, dns, { maxNames: 100 });
    for (let i = 0; i < 1000; i++) {
      watch(resolver, `n${i}.test`).stop();
      if (i % 50 === 0) await clock.advance(0);
    }
    await clock.advance(0);
    expect(resolver.stats.names).toBe(100);
    expect(resolver.stats.evicts).toBe(900);
    expect(resolver.stats.overflow).toBe(0);
    // The same figures as dns/… metrics.
    const registry = new Registry();
    resolver.reportTo(registry);
    const dnsScope = registry.snapshot().scopes.find((sc) => sc.flat === "dns");
    expect(dnsScope?.gauges).toEqual({
      "cache/names": 100,
      "lookups/inflight": 0,
      "lookups/queued": 0,
    });
    expect(dnsScope?.counters).toEqual({ "cache/evicts": 900, "cache/overflow": 0 });
  });

  it("never drops a watched name: it keeps resolving, and names over the bound are reported", async () => {
    const clock = new ManualClock();
    const dns = new TimedDns(clock, 10);
    const warnings: string[] = [];
    const resolver = resolverOn(clock, dns, { maxNames: 2 }, warnings);
    const a = watch(resolver, "a.test");
    const b = watch(resolver, "b.test");
    await clock.advance(0);
    // c arrives while a and b, both watched, fill the cache: it is kept, and reported.
    const c = watch(resolver, "c.test");
    await clock.advance(0);
    expect(resolver.stats).toMatchObject({ names: 3, evicts: 0, overflow: 1 });
    expect(warnings.filter((w) => w.includes("over dns.maxNames"))).toHaveLength(1);
    c.stop();
    // d: c, no longer watched, makes room; a and b still fill the cache.
    watch(resolver, "d.test");
    await clock.advance(0);
    expect(resolver.stats).toMatchObject({ names: 3, evicts: 1, overflow: 2 });
    expect(warnings.filter((w) => w.includes("over dns.maxNames"))).toHaveLength(1);

    // a's answer changes; its watch still refreshes it before the 10 s TTL runs out.
    dns.ips = (host) => (host === "a.test" ? ["10.9.9.9"] : ["10.0.0.1"]);
    await clock.advance(9000);
    expect(text(a.v.sample())).toBe("ok 10.9.9.9");
    expect(a.seen.map(text)).toEqual(["ok 10.0.0.1", "ok 10.9.9.9"]);
    expect(text(b.v.sample())).toBe("ok 10.0.0.1");
    expect(dns.count("a.test")).toBe(2);
  });

  it("reads maxNames and maxLookupsInFlight from the dns block, unset by default", () => {
    const cx = new DecodeContext("/");
    const set = dnsBlock.decode({ maxNames: 500, maxLookupsInFlight: 8 }, "dns", cx);
    const unset = dnsBlock.decode({}, "dns", cx);
    const bad = dnsBlock.decode({ maxLookupsInFlight: 0 }, "dns", cx);
    expect(set).toMatchObject({ maxNames: 500, maxLookupsInFlight: 8 });
    expect(unset).toMatchObject({ maxNames: undefined, maxLookupsInFlight: undefined });
    expect(bad).toBe(INVALID);
    expect(cx.issues.map((i) => i.path)).toEqual(["dns.maxLookupsInFlight"]);
  });
});

describe("refreshing many names that expire together", () => {
  it("caps the look-ups in flight, spreads the refreshes, and serves the last answers meanwhile", async () => {
    const NAMES = 10_000;
    const CAP = 64;
    const TTL_SECS = 60;
    const clock = new ManualClock();
    const dns = new TimedDns(clock, TTL_SECS);
    const resolver = resolverOn(clock, dns, { maxLookupsInFlight: CAP });
    // Every name answered at the same instant (t = 0), so every answer expires at 60 s.
    const watches = Array.from({ length: NAMES }, (_, i) => watch(resolver, `host-${i}.test`));
    await clock.advance(0);
    expect(clock.now()).toBe(0);
    expect(watches.every((w) => w.v.sample().kind === "ok")).toBe(true);
    expect(dns.started).toHaveLength(NAMES);
    expect(dns.maxRunning).toBeLessThanOrEqual(CAP);

    // Refreshes take 100 ms each: 64 at a time, 10,000 of them need 15.6 s, longer than
    // the spread, so the queue fills and outlasts the answers' expiry at 60 s.
    dns.delayMs = 100;
    dns.maxRunning = 0;
    dns.ips = () => ["10.1.1.1"];
    const cold = { at: 0, watch: undefined as ReturnType<typeof watch> | undefined };
    // Step through the wave; halfway, a name nobody asked for before is watched.
    for (let t = 0; t < 80_000; t += 500) {
      await clock.advance(500);
      if (cold.watch === undefined && dns.running === CAP && resolver.stats.lookupsQueued > 1000) {
        cold.at = clock.now();
        cold.watch = watch(resolver, "cold.test");
      }
    }
    const refreshes = dns.started.slice(NAMES).filter((s) => s.host !== "cold.test");
    expect(refreshes).toHaveLength(NAMES);
    expect(dns.maxRunning).toBe(CAP);
    // None before 82% of the TTL (49.2 s); all done within the spread plus the time the cap needs for them.
    const last = Math.max(...refreshes.map((r) => r.at));
    expect(last).toBeLessThanOrEqual(0.88 * TTL_SECS * 1000 + (NAMES / CAP) * 100);
    // The last ones were still queued when their answers expired (at 60 s)...
    expect(last + 100).toBeGreaterThan(TTL_SECS * 1000);
    // ...yet every name served its first answer until the new one came: never pending or failed.
    for (const w of watches) expect(w.seen.map(text)).toEqual(["ok 10.0.0.1", "ok 10.1.1.1"]);
    // The cold name went ahead of the queued refreshes: answered in one look-up's time.
    expect(cold.watch).toBeDefined();
    const coldStarted = dns.started.find((s) => s.host === "cold.test")!;
    expect(coldStarted.at - cold.at).toBeLessThanOrEqual(100);
    expect(text(cold.watch!.v.sample())).toBe("ok 10.1.1.1");
    expect(resolver.stats).toMatchObject({ lookupsInFlight: 0, lookupsQueued: 0 });
  }, 60_000);

  it("spreads refreshes due together over 6% of the TTL", async () => {
    const NAMES = 2000;
    const TTL_SECS = 60;
    const clock = new ManualClock();
    const dns = new TimedDns(clock, TTL_SECS);
    // A cap that never binds: the refreshes start when they are due.
    const resolver = resolverOn(clock, dns, { maxLookupsInFlight: NAMES });
    for (let i = 0; i < NAMES; i++) watch(resolver, `host-${i}.test`);
    await clock.advance(0);
    await clock.advance(TTL_SECS * 1000 - 1);
    const due = dns.started.slice(NAMES).map((s) => s.at);
    expect(due).toHaveLength(NAMES);
    // Between 82% and 88% of the TTL (49.2–52.8 s), about evenly: no half second has a
    // quarter of them (without jitter all 2,000 would be due in the same millisecond).
    expect(Math.min(...due)).toBeGreaterThanOrEqual(0.82 * TTL_SECS * 1000);
    expect(Math.max(...due)).toBeLessThanOrEqual(0.88 * TTL_SECS * 1000);
    const perHalfSecond = new Map<number, number>();
    for (const at of due) {
      const k = Math.floor(at / 500);
      perHalfSecond.set(k, (perHalfSecond.get(k) ?? 0) + 1);
    }
    expect(perHalfSecond.size).toBeGreaterThanOrEqual(7);
    expect(Math.max(...perHalfSecond.values())).toBeLessThan(NAMES / 4);
  });
});
