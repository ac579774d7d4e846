// Routing end to end on both engines: names bind through io.l5d.fs and /$/inet, weighted
// unions split traffic, per-request dtabs override (except through clearContext), and the
// Linkerd headers are set, forwarded and removed as Linkerd does.

import { afterEach, describe, expect, it } from "vitest";
import { call, cleanup, ENGINES, type EngineName, startLintel, startUpstream } from "./harness.js";

afterEach(cleanup);

function config(engine: EngineName, dtab: string, extra = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: r
  dtab: |
${dtab
  .trim()
  .split("\n")
  .map((l) => `    ${l}`)
  .join("\n")}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}${extra}}
`;
}

describe.each(ENGINES)("routing on the %s engine", (engine) => {
  it("routes by Host through io.l5d.fs and sets the Linkerd headers upstream", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(config(engine, "/svc => /#/io.l5d.fs"), {
      "disco/users": `127.0.0.1 ${users.port}\n`,
    });
    const r = await call(l.port(), { path: "/u/1?x=y", headers: { host: "users" } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).upstream).toBe("users");
    expect(r.headers.via).toBe("1.1 lintel");
    const seen = users.seen[0]!;
    expect(seen.url).toBe("/u/1?x=y");
    expect(seen.headers.host).toBe("users");
    expect(seen.headers.via).toBe("1.1 lintel");
    expect(seen.headers["l5d-dst-service"]).toBe("/svc/users");
    expect(seen.headers["l5d-dst-client"]).toBe("/#/io.l5d.fs/users");
    expect(seen.headers["l5d-reqid"]).toMatch(/^[0-9a-f]{16}$/);
    expect(seen.headers["l5d-dst-residual"]).toBeUndefined();
  });

  it("routes to /$/inet and reports the residual path", async () => {
    const web = await startUpstream("web");
    const l = await startLintel(config(engine, `/svc => /$/inet/127.0.0.1/${web.port}/extra/part`));
    const r = await call(l.port(), { headers: { host: "anything" } });
    expect(r.status).toBe(200);
    expect(web.seen[0]!.headers["l5d-dst-client"]).toBe(`/$/inet/127.0.0.1/${web.port}`);
    expect(web.seen[0]!.headers["l5d-dst-residual"]).toBe("/extra/part/anything");
  });

  it("splits a weighted union by its weights (800 requests, 80/20 within ±6 points)", async () => {
    const a = await startUpstream("a");
    const b = await startUpstream("b");
    const l = await startLintel(
      config(engine, `/svc/app => 4 * /#/io.l5d.fs/a & 1 * /#/io.l5d.fs/b`),
      {
        "disco/a": `127.0.0.1 ${a.port}\n`,
        "disco/b": `127.0.0.1 ${b.port}\n`,
      },
    );
    const n = 800;
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, () => call(l.port(), { headers: { host: "app" } })),
      );
    }
    const shareA = a.seen.length / n;
    expect(a.seen.length + b.seen.length).toBe(n);
    expect(shareA).toBeGreaterThan(0.74);
    expect(shareA).toBeLessThan(0.86);
  });

  it("balances over every address in an io.l5d.fs file", async () => {
    const one = await startUpstream("one");
    const two = await startUpstream("two");
    const l = await startLintel(config(engine, "/svc => /#/io.l5d.fs"), {
      "disco/pool": `127.0.0.1 ${one.port}\n127.0.0.1 ${two.port}\n`,
    });
    for (let i = 0; i < 40; i++) await call(l.port(), { headers: { host: "pool" } });
    expect(one.seen.length).toBeGreaterThan(5);
    expect(two.seen.length).toBeGreaterThan(5);
  });

  it("applies l5d-dtab after the router dtab, does not forward it, and passes it on as l5d-ctx-dtab", async () => {
    const v1 = await startUpstream("v1");
    const v2 = await startUpstream("v2");
    const l = await startLintel(
      config(engine, "/srv => /#/io.l5d.fs;\n/svc/users => /srv/users-v1"),
      {
        "disco/users-v1": `127.0.0.1 ${v1.port}\n`,
        "disco/users-v2": `127.0.0.1 ${v2.port}\n`,
      },
    );
    const plain = await call(l.port(), { headers: { host: "users" } });
    expect(JSON.parse(plain.text).upstream).toBe("v1");
    const override = await call(l.port(), {
      headers: { host: "users", "l5d-dtab": "/svc/users => /srv/users-v2" },
    });
    expect(JSON.parse(override.text).upstream).toBe("v2");
    const seen = v2.seen[0]!;
    expect(seen.headers["l5d-dtab"]).toBeUndefined();
    expect(seen.headers["l5d-ctx-dtab"]).toBe("/svc/users=>/srv/users-v2");
    expect(seen.headers["l5d-dst-client"]).toBe("/#/io.l5d.fs/users-v2");
  });

  it("with clearContext ignores l5d-dtab and strips every l5d-* header both ways", async () => {
    const v1 = await startUpstream("v1", (_req, res) => {
      res.writeHead(200, { "l5d-secret": "internal", "x-kept": "yes" });
      res.end("v1");
    });
    const v2 = await startUpstream("v2");
    const l = await startLintel(
      config(engine, "/srv => /#/io.l5d.fs;\n/svc/users => /srv/users-v1", ", clearContext: true"),
      { "disco/users-v1": `127.0.0.1 ${v1.port}\n`, "disco/users-v2": `127.0.0.1 ${v2.port}\n` },
    );
    const r = await call(l.port(), {
      headers: {
        host: "users",
        "l5d-dtab": "/svc/users => /srv/users-v2",
        "l5d-ctx-trace": "abc",
        "l5d-ctx-dtab": "/svc/users => /srv/users-v2",
      },
    });
    expect(r.text).toBe("v1");
    expect(v2.seen).toHaveLength(0);
    const seen = v1.seen[0]!.headers;
    expect(
      Object.keys(seen).filter(
        (k) => k.startsWith("l5d-") && !k.startsWith("l5d-dst-") && k !== "l5d-reqid",
      ),
    ).toEqual([]);
    expect(r.headers["l5d-secret"]).toBeUndefined();
    expect(r.headers["x-kept"]).toBe("yes");
  });

  it("forwards l5d-ctx-* headers when the server does not clear context", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(config(engine, `/svc => /$/inet/127.0.0.1/${up.port}`));
    await call(l.port(), {
      headers: { host: "x", "l5d-ctx-trace": "t-1", "l5d-ctx-deadline": "123" },
    });
    expect(up.seen[0]!.headers["l5d-ctx-trace"]).toBe("t-1");
    expect(up.seen[0]!.headers["l5d-ctx-deadline"]).toBe("123");
  });

  it("removes hop-by-hop headers and the headers Connection names, and appends to Via", async () => {
    const up = await startUpstream("up", (_req, res) => {
      res.writeHead(200, {
        connection: "x-hop-back",
        "x-hop-back": "1",
        "keep-alive": "timeout=5",
        via: "1.1 upstream",
      });
      res.end("ok");
    });
    const l = await startLintel(config(engine, `/svc => /$/inet/127.0.0.1/${up.port}`));
    const r = await call(l.port(), {
      headers: {
        host: "x",
        connection: "x-hop",
        "x-hop": "1",
        te: "trailers",
        "x-end": "kept",
        via: "1.0 client-proxy",
      },
    });
    const seen = up.seen[0]!.headers;
    expect(seen["x-hop"]).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen["x-end"]).toBe("kept");
    expect(seen.via).toBe("1.0 client-proxy, 1.1 lintel");
    expect(r.headers["x-hop-back"]).toBeUndefined();
    // The upstream's keep-alive parameters are its own (the engine may state its own).
    expect(r.headers["keep-alive"]).not.toBe("timeout=5");
    expect(r.headers.via).toBe("1.1 upstream, 1.1 lintel");
  });

  it("consumes path segments with io.l5d.path and forwards the rest", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  identifier: {kind: io.l5d.path, segments: 1, consume: true}
  dtab: /svc/api => /$/inet/127.0.0.1/${up.port}
  servers: [{ip: 127.0.0.1, port: 0, engine: ${engine}}]
`);
    const r = await call(l.port(), { path: "/api/v1/items?q=1" });
    expect(r.status).toBe(200);
    expect(up.seen[0]!.url).toBe("/v1/items?q=1");
    expect(up.seen[0]!.headers["l5d-dst-service"]).toBe("/svc/api");
  });
});
