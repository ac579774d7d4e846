// The routing caches stay bounded and count what they drop: the binding cache (least
// recently used first, its live bindings stopped, bindcache/path/evicts), the namers' Var
// caches, and a router fed a stream of distinct l5d-dtab headers.

import { Agent, request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { IdentificationMemo, identified } from "../../gateway/identifiers/identifier.js";
import type { Interpreter } from "../../gateway/interpreters/interpreter.js";
import { silentLogger } from "../../gateway/log.js";
import { Cell, Dtab, readPath, VarCache } from "../../gateway/naming/index.js";
import { BindingCache } from "../../gateway/routing/binding-cache.js";
import { buildNaming, type NamingSetup } from "../../gateway/routing/naming-setup.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import { Registry, RouterMetrics } from "../../gateway/telemetry/index.js";
import { cleanup, metricsJson, startLintel, startUpstream } from "../e2e/harness.js";

const closers: (() => void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await cleanup();
});

/** The interpreter of a real config's router, and how many of its bindings are observed. */
async function interpreter(): Promise<{ interpreter: Interpreter; live: () => number }> {
  const loaded = await loadLintelConfig("/caches.yaml", {
    text: `routers:
  - protocol: http
    label: r
    dtab: /svc => /$/inet/127.0.0.1/8080
`,
  });
  if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.message).join("; "));
  const naming: NamingSetup = buildNaming(loaded.config, { log: silentLogger });
  closers.push(() => naming.close());
  const real = naming.routers.get("r")!.interpreter;
  let live = 0;
  // The real interpreter, its observations counted.
  const counted: Interpreter = {
    bind(local, path) {
      const act = real.bind(local, path);
      return {
        sample: () => act.sample(),
        observe(listener) {
          live++;
          const stop = act.observe(listener);
          return () => {
            live--;
            stop();
          };
        },
      };
    },
    delegate: (local, path) => real.delegate(local, path),
    close: () => real.close(),
  };
  return { interpreter: counted, live: () => live };
}

function cache(interp: Interpreter, capacity: number) {
  const metrics = new RouterMetrics(new Registry(), "r");
  const c = new BindingCache(interp, capacity, 600_000, metrics.bindcache);
  closers.push(() => c.close());
  return { cache: c, counters: metrics.bindcache };
}

describe("the binding cache", () => {
  it("drops the least recently used name when full, and counts it", async () => {
    const { interpreter: interp, live } = await interpreter();
    const { cache: c, counters } = cache(interp, 3);
    const get = (name: string) => c.get(Dtab.empty, "", readPath(`/svc/${name}`));
    const a = get("a");
    get("b");
    get("c");
    expect(get("a")).toBe(a); // a hit: a is now the most recently used
    get("d"); // full: b goes
    expect(c.size).toBe(3);
    expect(counters.misses.n).toBe(4);
    expect(counters.evicts.n).toBe(1);
    expect(get("a")).toBe(a);
    get("c");
    get("d");
    expect(counters.misses.n).toBe(4);
    get("b"); // bound anew; a, least recently used now, goes
    expect(counters.misses.n).toBe(5);
    expect(counters.evicts.n).toBe(2);
    expect(get("a")).not.toBe(a);
    expect(a.state.status).toBe("ok");
    // Only the bindings in the cache are still observed.
    expect(live()).toBe(3);
  });

  it("holds at most its capacity of live bindings under many names", async () => {
    const { interpreter: interp, live } = await interpreter();
    const { cache: c, counters } = cache(interp, 100);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5000; i++) {
        const e = c.get(Dtab.empty, "", readPath(`/svc/name-${i}`));
        expect(e.state.status).toBe("ok");
        expect(c.size).toBeLessThanOrEqual(100);
      }
    }
    expect(c.size).toBe(100);
    expect(live()).toBe(100);
    expect(counters.misses.n).toBe(10_000);
    expect(counters.evicts.n).toBe(10_000 - 100);
  });
});

describe("a namer's Var cache", () => {
  it("caps the Vars nobody observes, oldest first, counts them, and keeps observed ones", () => {
    const vars = new VarCache<string, number>(2);
    const made = (n: number) => () => new Cell(n);
    const observed = vars.get("kept", made(0));
    const stop = observed.observe(() => {});
    const first = vars.get("one", made(1));
    vars.get("two", made(2));
    vars.get("three", made(3)); // over the cap of 2 unobserved: "one" goes
    expect(vars.size).toBe(3);
    expect(vars.evictions).toBe(1);
    expect(vars.get("kept", made(9))).toBe(observed);
    expect(vars.get("one", made(1))).not.toBe(first); // made again ("two" goes)
    expect(vars.evictions).toBe(2);
    for (let i = 0; i < 10_000; i++) vars.get(`n${i}`, made(i));
    expect(vars.size).toBe(3);
    expect(vars.evictions).toBe(10_002);
    expect(vars.get("kept", made(9))).toBe(observed);
    stop();
  });
});

describe("an identifier's memo", () => {
  it("keeps at most its bound of names, dropping the oldest", () => {
    const made: string[] = [];
    const memo = new IdentificationMemo((v) => {
      made.push(v);
      return identified(readPath(`/svc/${v}`));
    }, 3);
    for (const v of ["a", "b", "c", "a", "d", "b", "a"]) memo.get(v);
    // a, b, c made; a a hit; d drops a; b a hit; a made again (dropping b).
    expect(made).toEqual(["a", "b", "c", "d", "a"]);
    const before = made.length;
    memo.get("c");
    memo.get("d");
    expect(made.length).toBe(before);
    memo.get("b");
    expect(made.at(-1)).toBe("b");
    // Many names: the memo stays at its bound and keeps answering.
    for (let i = 0; i < 10_000; i++) {
      const id = memo.get(`n${i}`);
      expect(id.ok && id.dst.show).toBe(`/svc/n${i}`);
    }
    const last = made.length;
    memo.get("n9999");
    memo.get("n9997");
    expect(made.length).toBe(last);
    memo.get("n9996");
    expect(made.length).toBe(last + 1);
  });
});

describe("a router fed distinct l5d-dtab headers", () => {
  it("keeps its bindings within bindingCache.paths and counts the evictions", async () => {
    const up = await startUpstream("web");
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  bindingCache: {paths: 50}
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0}
`);
    const port = l.port("edge");
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    closers.push(() => agent.destroy());
    const send = (i: number) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port,
            path: "/",
            agent,
            // A dentry of its own on every request: a binding cache key never seen before.
            headers: { host: "web", "l5d-dtab": `/attacker/${i} => /$/inet/127.0.0.1/1` },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode!));
          },
        );
        req.on("error", reject);
        req.end();
      });
    const N = 2000;
    const statuses: number[] = [];
    for (let i = 0; i < N; i += 8) {
      statuses.push(...(await Promise.all(Array.from({ length: 8 }, (_, k) => send(i + k)))));
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(N);
    const m = await metricsJson(l);
    expect(m["rt/edge/bindcache/path/misses"]).toBe(N);
    expect(m["rt/edge/bindcache/path/evicts"]).toBe(N - 50);
    // One service name, whatever the dentries: the metrics did not grow per header either.
    expect(Object.keys(m).filter((k) => k.startsWith("rt/edge/service/"))).toContain(
      "rt/edge/service/svc/web/requests",
    );
    expect(m["rt/edge/service/svc/web/requests"]).toBe(N);
  }, 60_000);
});
