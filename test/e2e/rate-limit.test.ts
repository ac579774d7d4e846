// Rate limits and access rules as users configure them: answered 429 with Retry-After and
// the RateLimit fields, one count whatever the worker count, per service prefix, shared by
// two replicas through a real redis-server, and what happens when Redis dies or hangs.

import { connect, createServer, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeProxyV2 } from "../../gateway/server/proxy-protocol.js";
import { type RedisServer, redisServerBinary, startRedis } from "../support/redis.js";
import {
  burst,
  call,
  cleanup,
  ENGINES,
  type EngineName,
  eventually,
  metricsJson,
  onCleanup,
  startLintel,
  startUpstream,
  type Upstream,
} from "./harness.js";

afterEach(cleanup);

let up: Upstream;
beforeEach(async () => {
  up = await startUpstream("up");
});

function config(o: { engine?: EngineName; workers?: number; layers?: string; service?: string }) {
  return `
workers: ${o.workers ?? 0}
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
${o.service ?? ""}
  servers:
  - ip: 127.0.0.1
    port: 0
    engine: ${o.engine ?? "net"}
    layers: ${o.layers ?? "[]"}
`;
}

describe.each(ENGINES)("rate limits on the %s engine", (engine) => {
  it("answers 429 with Retry-After and the RateLimit fields once a client is over", async () => {
    const l = await startLintel(
      config({
        engine,
        layers:
          "[{kind: rateLimit, name: per-client, requests: 3, intervalSecs: 60, headersOnAllowed: true}]",
      }),
    );
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await call(l.port(), { headers: { host: "web" } }));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(replies[0]!.headers["ratelimit-policy"]).toBe('"per-client";q=3;w=60');
    expect(replies[0]!.headers.ratelimit).toBe('"per-client";r=2;t=20');
    const over = replies[3]!;
    // The next request is allowed one emission interval (60 s / 3) after the last one.
    expect(over.headers["retry-after"]).toBe("20");
    expect(over.headers.ratelimit).toBe('"per-client";r=0;t=60');
    expect(decodeURIComponent(String(over.headers["l5d-err"]))).toContain("rate limit");
    const m = await metricsJson(l);
    expect(m["rt/edge/ratelimit/per-client/allowed"]).toBe(3);
    expect(m["rt/edge/ratelimit/per-client/limited"]).toBe(1);
  });

  it("counts by a header's value, and does not count a request without it", async () => {
    const l = await startLintel(
      config({
        engine,
        layers: "[{kind: rateLimit, requests: 1, intervalSecs: 60, key: 'header:x-api-key'}]",
      }),
    );
    const status = async (key?: string) =>
      (await call(l.port(), { headers: { host: "web", ...(key ? { "x-api-key": key } : {}) } }))
        .status;
    expect([await status("a"), await status("a"), await status("b")]).toEqual([200, 429, 200]);
    // By default an allowed answer carries no RateLimit fields (a 429 always does).
    const allowed = await call(l.port(), { headers: { host: "web", "x-api-key": "c" } });
    expect([allowed.headers.ratelimit, allowed.headers["ratelimit-policy"]]).toEqual([
      undefined,
      undefined,
    ]);
    expect([await status(), await status()]).toEqual([200, 200]);
  });
});

describe("a rate limit store from a plugin", () => {
  it("counts in the plugin's store, asynchronously, and names a bad store kind with its path", async () => {
    // Allows `allow` requests per key, answering a tick later as a remote store would.
    const plugin = `export default (lintel) => lintel.definePlugin({
  category: "rateLimitStore",
  kind: "test.counting",
  schema: lintel.schema.object({ allow: lintel.schema.req(lintel.schema.integer({ min: 0 })) }),
  create(config) {
    const seen = new Map();
    return {
      limiter: (spec) => ({
        take: (key) => new Promise((resolve) => setTimeout(() => {
          const n = (seen.get(key) ?? 0) + 1;
          seen.set(key, n);
          resolve({ ok: n <= config.allow, remaining: Math.max(0, config.allow - n), resetMs: 1000 * spec.intervalSecs, retryAfterMs: 5000 });
        }, 1)),
      }),
    };
  },
});
`;
    const l = await startLintel(
      `plugins: [store.mjs]\n${config({ layers: "[{kind: rateLimit, name: plugged, requests: 1, store: {kind: test.counting, allow: 2}}]" })}`,
      { "store.mjs": plugin },
    );
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await call(l.port(), { headers: { host: "web" } }));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(replies[2]!.headers["retry-after"]).toBe("5");
    await expect(
      startLintel(config({ layers: "[{kind: rateLimit, requests: 1, store: {kind: memcached}}]" })),
    ).rejects.toThrow(
      /routers\[0\]\.servers\[0\]\.layers\[0\]\.store\.kind: unknown rate limit store kind "memcached".*known kinds: local, redis/,
    );
  });
});

describe("access rules", () => {
  it("refuses clients a deny list names, and those outside an allow list", async () => {
    const l = await startLintel(
      config({
        layers: "[{kind: access, deny: [127.0.0.2/32]}, {kind: access, allow: [10.0.0.0/8]}]",
      }),
    );
    const r = await call(l.port(), { headers: { host: "web" } });
    expect(r.status).toBe(403);
    expect(decodeURIComponent(String(r.headers["l5d-err"]))).toContain("127.0.0.1 is not allowed");
    const open = await startLintel(
      config({ layers: "[{kind: access, allow: [127.0.0.0/8], deny: [10.0.0.0/8]}]" }),
    );
    expect((await call(open.port(), { headers: { host: "web" } })).status).toBe(200);
  });

  it("reads the client through a trusted proxy's X-Forwarded-For", async () => {
    const l = await startLintel(
      config({ layers: "[{kind: access, deny: [203.0.113.0/24]}]" }).replace(
        "engine: net",
        "engine: net\n    trustedProxies: [127.0.0.1/32]",
      ),
    );
    const via = (xff: string) =>
      call(l.port(), { headers: { host: "web", "x-forwarded-for": xff } }).then((r) => r.status);
    expect(await via("203.0.113.9")).toBe(403);
    expect(await via("198.51.100.4")).toBe(200);
  });
});

describe("limits per service prefix", () => {
  it("limits the services an entry's prefix matches, and only those", async () => {
    const l = await startLintel(
      config({
        service: `  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc/limited
      layers: [{kind: rateLimit, requests: 2, intervalSecs: 60, key: service}]`,
      }),
    );
    const status = async (host: string) => (await call(l.port(), { headers: { host } })).status;
    const limited = [await status("limited"), await status("limited"), await status("limited")];
    const free = [await status("free"), await status("free"), await status("free")];
    expect(limited).toEqual([200, 200, 429]);
    expect(free).toEqual([200, 200, 200]);
  });
});

describe("one count whatever the worker count", () => {
  it.each([1, 2, 4])("allows the limit exactly with %i workers", async (workers) => {
    const l = await startLintel(
      config({
        engine: "uws",
        workers,
        layers: "[{kind: rateLimit, name: shared, requests: 40, intervalSecs: 1000}]",
      }),
    );
    // Each request on its own connection, so the kernel spreads them over the workers.
    const replies = [...(await burst(l.port(), 60, "web")), ...(await burst(l.port(), 60, "web"))];
    const ok = replies.filter((r) => r.status === 200).length;
    expect(ok).toBe(40);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(80);
    // Workers report their metrics every second.
    await eventually(async () => {
      const m = await metricsJson(l);
      return (
        m["rt/edge/ratelimit/shared/allowed"] === 40 && m["rt/edge/ratelimit/shared/limited"] === 80
      );
    });
  });
});

describe("requests in progress per client", () => {
  it.each([
    ["net", 0],
    ["uws", 2],
  ] as const)(
    "refuses one over the limit on %s with %i workers, and frees places as requests end",
    async (engine, workers) => {
      const held: (() => void)[] = [];
      const slow = await startUpstream("slow", (_req, res) => {
        held.push(() => res.end("done"));
      });
      const l = await startLintel(
        config({
          engine,
          workers,
          layers: "[{kind: concurrencyLimit, maxConcurrentRequests: 2}]",
        }).replace(`/$/inet/127.0.0.1/${up.port}`, `/$/inet/127.0.0.1/${slow.port}`),
      );
      const first = [
        call(l.port(), { headers: { host: "a" } }),
        call(l.port(), { headers: { host: "a" } }),
      ];
      await eventually(() => held.length === 2, 15_000, "two requests at the upstream");
      const third = await call(l.port(), { headers: { host: "a" } });
      expect(third.status).toBe(429);
      expect(decodeURIComponent(String(third.headers["l5d-err"]))).toContain(
        "2 requests in progress",
      );
      for (const release of held.splice(0)) release();
      expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
      // Both places are free again.
      const again = [
        call(l.port(), { headers: { host: "a" } }),
        call(l.port(), { headers: { host: "a" } }),
      ];
      await eventually(() => held.length === 2, 15_000, "two more at the upstream");
      for (const release of held.splice(0)) release();
      expect((await Promise.all(again)).map((r) => r.status)).toEqual([200, 200]);
    },
    40_000,
  );
});

describe("connections per client address", () => {
  /** Opens a connection and sends one request on it: the status, or "closed". */
  function connectAndAsk(
    port: number,
    proxied?: string,
  ): Promise<{ socket: Socket; answer: string }> {
    return new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        if (proxied !== undefined)
          socket.write(
            encodeProxyV2({ address: proxied, port: 5555 }, { address: "127.0.0.1", port: 80 }),
          );
        socket.write("GET / HTTP/1.1\r\nhost: web\r\n\r\n");
      });
      onCleanup(() => {
        socket.destroy();
      });
      let got = "";
      socket.on("data", (d: Buffer) => {
        got += d.toString("latin1");
        if (got.includes("\r\n\r\n")) resolve({ socket, answer: got.split(" ")[1]! });
      });
      socket.on("error", () => {});
      socket.on("close", () =>
        resolve({ socket, answer: got === "" ? "closed" : got.split(" ")[1]! }),
      );
    });
  }

  it("closes a client's connection over the limit, and counts each proxied client apart", async () => {
    const l = await startLintel(
      config({}).replace("engine: net", "engine: net\n    maxConnectionsPerClient: 2"),
    );
    const a = await connectAndAsk(l.port());
    const b = await connectAndAsk(l.port());
    const c = await connectAndAsk(l.port());
    expect([a.answer, b.answer, c.answer]).toEqual(["200", "200", "closed"]);
    a.socket.destroy();
    await eventually(async () => (await connectAndAsk(l.port())).answer === "200");
    const behindLb = await startLintel(
      config({}).replace(
        "engine: net",
        "engine: net\n    maxConnectionsPerClient: 1\n    proxyProtocol: v2\n    proxyProtocolFrom: [127.0.0.1]",
      ),
    );
    const one = await connectAndAsk(behindLb.port(), "203.0.113.1");
    const other = await connectAndAsk(behindLb.port(), "203.0.113.2");
    const again = await connectAndAsk(behindLb.port(), "203.0.113.1");
    expect([one.answer, other.answer, again.answer]).toEqual(["200", "200", "closed"]);
  });
});

const redisBinary = redisServerBinary("rate limits in Redis");

describe.skipIf(!redisBinary)("rate limits shared through Redis", () => {
  async function redis(): Promise<RedisServer> {
    const r = await startRedis(redisBinary!);
    onCleanup(() => r.stop());
    return r;
  }

  const redisLayers = (url: string, onFailure = "insurance", timeoutMs = 25) =>
    `[{kind: rateLimit, name: cluster, requests: 30, intervalSecs: 60, store: {kind: redis, url: "${url}", onFailure: ${onFailure}, timeoutMs: ${timeoutMs}}}]`;

  it("is one limit for two replicas", async () => {
    const r = await redis();
    const a = await startLintel(config({ layers: redisLayers(r.url) }));
    const b = await startLintel(config({ layers: redisLayers(r.url) }));
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const port = i % 2 === 0 ? a.port() : b.port();
      statuses.push((await call(port, { headers: { host: "web" } })).status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    expect(statuses.slice(30)).toEqual(Array(10).fill(429));
  });

  it("keeps answering when Redis is killed: insurance counts, open passes, closed refuses", async () => {
    const r = await redis();
    const insured = await startLintel(config({ layers: redisLayers(r.url, "insurance") }));
    const open = await startLintel(config({ layers: redisLayers(r.url, "open") }));
    const closed = await startLintel(config({ layers: redisLayers(r.url, "closed") }));
    for (const l of [insured, open, closed])
      expect((await call(l.port(), { headers: { host: "web" } })).status).toBe(200);
    await r.stop();
    const timed = async (port: number) => {
      const t0 = performance.now();
      const s = (await call(port, { headers: { host: "web" } })).status;
      return { s, ms: performance.now() - t0 };
    };
    const insuredAfter = [];
    for (let i = 0; i < 35; i++) insuredAfter.push(await timed(insured.port()));
    const openAfter = await timed(open.port());
    const closedAfter = await timed(closed.port());
    // The insurance limiter counts the same limit in memory.
    expect(insuredAfter.filter((x) => x.s === 200)).toHaveLength(30);
    expect(insuredAfter.slice(30).map((x) => x.s)).toEqual(Array(5).fill(429));
    expect([openAfter.s, closedAfter.s]).toEqual([200, 503]);
    for (const x of [...insuredAfter, openAfter, closedAfter]) expect(x.ms).toBeLessThan(500);
    const m = await metricsJson(closed);
    expect(m["rt/edge/ratelimit/cluster/store_errors"]).toBeGreaterThanOrEqual(1);
  });

  it("never waits on a Redis that hangs longer than its timeout", async () => {
    // Accepts connections and never answers: every command would wait forever.
    const sockets = new Set<Socket>();
    const hung = createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((res) => hung.listen(0, "127.0.0.1", () => res()));
    onCleanup(
      () =>
        new Promise<void>((res) => {
          for (const s of sockets) s.destroy();
          hung.close(() => res());
        }),
    );
    const port = (hung.address() as { port: number }).port;
    const l = await startLintel(
      config({ layers: redisLayers(`redis://127.0.0.1:${port}`, "open", 50) }),
    );
    const t0 = performance.now();
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => call(l.port(), { headers: { host: "web" } })),
    );
    const ms = performance.now() - t0;
    expect(replies.map((x) => x.status)).toEqual([200, 200, 200, 200, 200]);
    expect(ms).toBeLessThan(400);
  });
});
