// /admin/clients.json: each client's load balancer and the state of each endpoint under
// failure accrual, against real upstreams on loopback: an endpoint that refuses
// connections is shown dead until its backoff ends, then probing, then live once it is
// back; ewma shows its costs; with workers each worker answers for its own clients, and
// one that does not answer in time is named rather than waited for.

import { createServer } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { ClientsView, ThreadClientsView } from "../../gateway/admin/clients.js";
import type {
  ClientView,
  EndpointView,
  RouterClientsView,
} from "../../gateway/client/client-view.js";
import {
  burst,
  call,
  cleanup,
  closeOnCleanup,
  eventually,
  freePort,
  fsEdgeConfig,
  type Lintel,
  startLintel,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

function config(router = "", engine = "net"): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: r
  dtab: /svc => /#/io.l5d.fs
${router}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}}
`;
}

const addresses = (...ports: number[]) => ports.map((p) => `127.0.0.1 ${p}`).join("\n");

async function clientsJson(l: Lintel): Promise<ClientsView> {
  const r = await call(l.adminPort, { path: "/admin/clients.json" });
  expect(r.status).toBe(200);
  expect(r.headers["content-type"]).toBe("application/json");
  return JSON.parse(r.text) as ClientsView;
}

function routersOf(t: ThreadClientsView | undefined): readonly RouterClientsView[] {
  if (!t || !("routers" in t)) throw new Error(`no clients in ${JSON.stringify(t)}`);
  return t.routers;
}

/** The client `id` of router `router` as the (only, or given) thread sees it. */
async function clientOf(
  l: Lintel,
  id: string,
  router = "r",
  worker: number | "control" = "control",
): Promise<ClientView | undefined> {
  const view = await clientsJson(l);
  const thread = view.threads.find((t) => t.worker === worker);
  return routersOf(thread)
    .find((r) => r.router === router)
    ?.clients.find((c) => c.id === id);
}

function endpointOf(c: ClientView | undefined, port: number): EndpointView {
  const e = c?.endpoints.find((x) => x.address === `127.0.0.1:${port}`);
  if (!e) throw new Error(`no endpoint 127.0.0.1:${port} in ${JSON.stringify(c)}`);
  return e;
}

const get = (l: Lintel, host = "users") => call(l.port(), { headers: { host } });

describe("/admin/clients.json", () => {
  it("shows an endpoint that refuses connections dead until its backoff ends, then probing, then live", async () => {
    const good = await startUpstream("good");
    const refusing = await freePort();
    const l = await startLintel(
      config(`  client:
    failureAccrual:
      kind: io.l5d.consecutiveFailures
      failures: 2
      backoff: {kind: constant, ms: 1500}`),
      { "disco/users": addresses(good.port, refusing) },
    );
    const id = "/#/io.l5d.fs/users";
    // Before any request: no client yet.
    const before = await clientsJson(l);
    expect(before.threads).toHaveLength(1);
    expect(before.threads[0]!.worker).toBe("control");
    expect(routersOf(before.threads[0])).toEqual([{ router: "r", clients: [] }]);

    // Requests go on (requeued to the good endpoint) until the refusing one is dead.
    let c: ClientView | undefined;
    await eventually(
      async () => {
        const r = await get(l);
        expect(r.status).toBe(200);
        c = await clientOf(l, id);
        return c !== undefined && endpointOf(c, refusing).state === "dead";
      },
      5000,
      "the refusing endpoint to be marked dead",
    );
    const t = Date.now();
    expect(c!.state).toBe("bound");
    expect(c!.loadBalancer).toMatchObject({ kind: "p2c", size: 2, available: 1, load: 0 });
    expect(c!.failureAccrual).toEqual({ kind: "io.l5d.consecutiveFailures" });
    const dead = endpointOf(c, refusing);
    expect(dead).toMatchObject({
      weight: 1,
      state: "dead",
      load: 0,
      pending: 0,
      accrual: { consecutiveFailures: 2, deadAfter: 2 },
      lastOutcome: "failure",
    });
    expect(Date.parse(dead.until!)).toBeGreaterThan(t);
    expect(Date.parse(dead.until!)).toBeLessThanOrEqual(t + 1500);
    expect(dead.for).toBeGreaterThan(0);
    expect(dead.for).toBeLessThanOrEqual(1500);
    expect(Math.abs(Date.parse(dead.lastOutcomeAt!) - t)).toBeLessThan(2000);
    const live = endpointOf(c, good.port);
    expect(live).toMatchObject({
      state: "live",
      accrual: { consecutiveFailures: 0, deadAfter: 2 },
      lastOutcome: "success",
    });
    expect(live.until).toBeUndefined();

    // The endpoint comes back; once its wait is over the next request will probe it.
    const revived: string[] = [];
    const back = createServer((req, res) => {
      revived.push(req.url ?? "");
      res.end("back\n");
    });
    await new Promise<void>((r) => back.listen(refusing, "127.0.0.1", () => r()));
    closeOnCleanup(back);
    await eventually(
      async () => endpointOf(await clientOf(l, id), refusing).state === "probing",
      4000,
      "the endpoint's backoff to end",
    );
    const probing = endpointOf(await clientOf(l, id), refusing);
    expect(probing).toMatchObject({ state: "probing", probe: "waiting" });
    expect(probing.until).toBeUndefined();
    expect((await clientOf(l, id))!.loadBalancer.available).toBe(2);

    // A request probes it: it answers, and it is live again with a fresh record.
    await eventually(
      async () => {
        expect((await get(l)).status).toBe(200);
        return endpointOf(await clientOf(l, id), refusing).state === "live";
      },
      4000,
      "the probe to revive the endpoint",
    );
    expect(revived.length).toBeGreaterThan(0);
    expect(endpointOf(await clientOf(l, id), refusing)).toMatchObject({
      state: "live",
      accrual: { consecutiveFailures: 0 },
      lastOutcome: "success",
    });
  });

  it("shows the ewma cost of each endpoint, higher for the slower one", async () => {
    const fast = await startUpstream("fast");
    const slow = await startUpstream("slow", (_req, res) => {
      setTimeout(() => res.end("slow\n"), 80);
    });
    const l = await startLintel(config("  client: {loadBalancer: {kind: ewma}}"), {
      "disco/users": addresses(fast.port, slow.port),
    });
    // An unmeasured endpoint draws requests until it has answered: both are measured soon.
    for (let i = 0; i < 40 && (fast.seen.length === 0 || slow.seen.length === 0); i++) {
      expect((await get(l)).status).toBe(200);
    }
    expect(slow.seen.length).toBeGreaterThan(0);
    expect(fast.seen.length).toBeGreaterThan(0);
    const c = await clientOf(l, "/#/io.l5d.fs/users");
    expect(c!.loadBalancer.kind).toBe("ewma");
    const slowCost = endpointOf(c, slow.port).balancer?.costMs;
    const fastCost = endpointOf(c, fast.port).balancer?.costMs;
    expect(typeof slowCost).toBe("number");
    expect(typeof fastCost).toBe("number");
    // Peak EWMA: the 80 ms answer is taken at once and decays over decayTimeMs (10 s).
    expect(slowCost as number).toBeGreaterThan(40);
    expect(slowCost as number).toBeLessThan(1000);
    expect(fastCost as number).toBeLessThan(slowCost as number);
    // A balancer without figures of its own shows none.
    const p2c = await startLintel(config(), { "disco/users": addresses(fast.port) });
    expect((await get(p2c)).status).toBe(200);
    const plain = await clientOf(p2c, "/#/io.l5d.fs/users");
    expect(endpointOf(plain, fast.port).balancer).toBeUndefined();
  });

  it("shows the success rate as io.l5d.successRate keeps it, and aperture's window", async () => {
    let n = 0;
    // Every other request fails.
    const half = await startUpstream("half", (_req, res) => {
      res.writeHead(n++ % 2 === 0 ? 200 : 500);
      res.end();
    });
    const l = await startLintel(
      config(`  client:
    loadBalancer: {kind: aperture}
    failureAccrual: {kind: io.l5d.successRate, successRate: 0.2, requests: 4}`),
      { "disco/users": addresses(half.port) },
    );
    for (let i = 0; i < 10; i++) await get(l);
    const c = await clientOf(l, "/#/io.l5d.fs/users");
    expect(c!.loadBalancer).toMatchObject({ kind: "aperture", size: 1, available: 1 });
    expect(typeof c!.loadBalancer.figures?.smoothedLoad).toBe("number");
    const e = endpointOf(c, half.port);
    expect(e.state).toBe("live");
    expect(e.balancer).toEqual({ inAperture: true });
    // Requests are counted up to `requests`; the average keeps exp(-1/4) of itself each time:
    // 1, then alternately failures and successes, ten in all.
    expect(e.accrual).toMatchObject({ requests: 4, minSuccessRate: 0.2, judgedAfter: 4 });
    let rate = 1;
    for (let i = 1; i < 10; i++) {
      const x = i % 2 === 0 ? 1 : 0;
      rate = x + (rate - x) * Math.exp(-1 / 4);
    }
    expect(e.accrual!.successRate).toBeCloseTo(rate, 3);
  });
});

describe("/admin/clients.json with workers", () => {
  it("lists each worker's clients, with a worker field", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(fsEdgeConfig({ workers: 2 }), {
      "disco/users": addresses(users.port),
    });
    const port = l.port();
    // Until both workers have served (each has its own client).
    await eventually(
      async () => {
        await burst(port, 16);
        const stats = l.runtime.pool!.stats;
        return stats.length === 2 && stats.every((s) => s.requests > 0);
      },
      8000,
      "every worker to serve requests",
    );
    const view = await clientsJson(l);
    // The control thread serves nothing itself here: only the workers' entries.
    expect(view.threads.map((t) => t.worker)).toEqual([0, 1]);
    for (const t of view.threads) {
      const routers = routersOf(t);
      expect(routers.map((r) => r.router)).toEqual(["edge"]);
      const c = routers[0]!.clients.find((x) => x.id === "/#/io.l5d.fs/users");
      expect(c).toBeDefined();
      expect(c!.loadBalancer).toMatchObject({ kind: "p2c", size: 1, available: 1 });
      expect(endpointOf(c, users.port)).toMatchObject({ state: "live", lastOutcome: "success" });
    }
  });

  it("adds the control thread's clients when it serves a node server too", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(
      `
workers: 1
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: edge
  dtab: /svc => /#/io.l5d.fs
  servers:
  - {ip: 127.0.0.1, port: 0, engine: uws}
  - {ip: 127.0.0.1, port: 0, engine: net}
`,
      { "disco/users": addresses(users.port) },
    );
    expect((await call(l.port("edge", 1), { headers: { host: "users" } })).status).toBe(200);
    expect((await call(l.port("edge", 0), { headers: { host: "users" } })).status).toBe(200);
    const view = await clientsJson(l);
    expect(view.threads.map((t) => t.worker)).toEqual(["control", 0]);
    for (const t of view.threads) {
      const ids = routersOf(t)[0]!.clients.map((c) => c.id);
      expect(ids).toEqual(["/#/io.l5d.fs/users"]);
    }
  });

  it("names a worker that does not answer within a second instead of waiting for it", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(
      `plugins: [busy.mjs]\n${fsEdgeConfig({ workers: 2, extra: "  identifier: {kind: test.busy}" })}`,
      { "disco/users": addresses(users.port), "busy.mjs": BUSY_PLUGIN },
    );
    const port = l.port();
    expect((await call(port, { headers: { host: "users" } })).status).toBe(200);
    // One worker's thread is kept busy for 3 s by the request it serves.
    const busy = call(port, { headers: { host: "users", "x-busy": "3000" } });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    const view = await clientsJson(l);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(2000);
    expect(view.threads).toHaveLength(2);
    const silent = view.threads.filter((t) => "error" in t);
    expect(silent).toHaveLength(1);
    expect(silent[0]).toMatchObject({ error: "no answer within 1000 ms" });
    const answered = view.threads.filter((t) => "routers" in t);
    expect(answered).toHaveLength(1);
    expect(answered[0]!.worker).not.toBe(silent[0]!.worker);
    expect((await busy).status).toBe(200);
    // Free again, both answer.
    const after = await clientsJson(l);
    expect(after.threads.every((t) => "routers" in t)).toBe(true);
  });
});

/**
 * A plugin identifier (`test.busy`) that keeps its thread busy for `x-busy` ms before
 * identifying the request by its Host.
 */
const BUSY_PLUGIN = `export default (lintel) => lintel.definePlugin({
  category: "identifier",
  kind: "test.busy",
  schema: lintel.schema.object({}),
  create(_config, ctx) {
    return {
      identify(req) {
        const ms = Number(req.header("x-busy") ?? 0);
        const end = Date.now() + ms;
        while (Date.now() < end) {}
        return lintel.identified(ctx.dstPrefix.concat(lintel.naming.Path.of(req.header("host"))));
      },
    };
  },
});
`;
