// The book's node-proxy (Linkerd-to-Linkerd) pair: an `outgoing` router whose io.l5d.port
// transformer sends every request to the node-local `incoming` router, which delivers it
// to local instances only (io.l5d.localhost). Both hops show in Via; the context
// (l5d-ctx-dtab) travels from the first hop to the second.

import { afterEach, describe, expect, it } from "vitest";
import {
  call,
  cleanup,
  ENGINES,
  type EngineName,
  freePort,
  startLintel,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

function pairConfig(engine: EngineName, outgoing: number, incoming: number): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: outgoing
  dtab: /svc => /#/io.l5d.fs
  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.port, port: ${incoming}}
  servers:
  - {ip: 127.0.0.1, port: ${outgoing}, engine: ${engine}}
- protocol: http
  label: incoming
  dtab: /svc => /#/io.l5d.fs
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.localhost
  servers:
  - {ip: 127.0.0.1, port: ${incoming}, engine: ${engine}}
`;
}

/** A user service that answers /users/<name>/bookings. */
function bookings(name: string) {
  return startUpstream(name, (req, res) => {
    const m = /^\/users\/([^/]+)\/bookings$/.exec(req.url ?? "");
    if (!m) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("no such page\n");
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ service: name, user: m[1], bookings: ["LHR-SFO"] }));
  });
}

describe.each(ENGINES)("a node-proxy pair on the %s engine", (engine) => {
  async function pair(files: Record<string, string>) {
    const outgoing = await freePort();
    let incoming = await freePort();
    while (incoming === outgoing) incoming = await freePort();
    const l = await startLintel(pairConfig(engine, outgoing, incoming), files);
    expect(l.port("outgoing")).toBe(outgoing);
    expect(l.port("incoming")).toBe(incoming);
    return { l, outgoing, incoming };
  }

  it("GET /users/tom/bookings through outgoing reaches the user service through incoming", async () => {
    const user = await bookings("user");
    const { l, outgoing, incoming } = await pair({ "disco/user": `127.0.0.1 ${user.port}\n` });

    const r = await call(outgoing, { path: "/users/tom/bookings", headers: { host: "user" } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ service: "user", user: "tom", bookings: ["LHR-SFO"] });
    // Both hops appended to the response's Via.
    expect(r.headers.via).toBe("1.1 lintel, 1.1 lintel");

    expect(user.seen).toHaveLength(1);
    const seen = user.seen[0]!;
    expect(seen.url).toBe("/users/tom/bookings");
    expect(seen.headers.host).toBe("user");
    expect(seen.headers.via).toBe("1.1 lintel, 1.1 lintel");
    expect(seen.headers["l5d-dst-service"]).toBe("/svc/user");
    // The second hop (incoming) sets the l5d-dst-* headers last.
    expect(seen.headers["l5d-dst-client"]).toBe("/%/io.l5d.localhost/#/io.l5d.fs/user");
    expect(seen.headers["l5d-reqid"]).toMatch(/^[0-9a-f]{16}$/);

    // The outgoing hop's binding: every address sent to the incoming router's port.
    const q = new URLSearchParams({ namespace: "outgoing", path: "/svc/user" });
    const d = await call(l.adminPort, { path: `/delegator.json?${q}` });
    expect(d.status).toBe(200);
    const tree = JSON.parse(d.text);
    expect(tree.binding).toEqual({
      type: "leaf",
      bound: {
        id: `/%/io.l5d.port/${incoming}/#/io.l5d.fs/user`,
        residual: "/",
        path: "/",
        addr: { type: "bound" },
        addrs: [{ ip: "127.0.0.1", port: incoming, meta: {} }],
      },
    });
    // The incoming hop's binding: the local instance itself.
    const qi = new URLSearchParams({ namespace: "incoming", path: "/svc/user" });
    const di = JSON.parse((await call(l.adminPort, { path: `/delegator.json?${qi}` })).text);
    expect(di.binding.bound.id).toBe("/%/io.l5d.localhost/#/io.l5d.fs/user");
    expect(di.binding.bound.addrs).toEqual([{ ip: "127.0.0.1", port: user.port, meta: {} }]);
  });

  it("the incoming router alone delivers to the local instance", async () => {
    const user = await bookings("user");
    const { incoming } = await pair({ "disco/user": `127.0.0.1 ${user.port}\n` });
    const r = await call(incoming, { path: "/users/ann/bookings", headers: { host: "user" } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).user).toBe("ann");
    expect(user.seen[0]!.headers.via).toBe("1.1 lintel");
  });

  it("a per-request l5d-dtab at outgoing applies at incoming too (as l5d-ctx-dtab)", async () => {
    const v1 = await bookings("user-v1");
    const v2 = await bookings("user-v2");
    const { outgoing } = await pair({
      "disco/user": `127.0.0.1 ${v1.port}\n`,
      "disco/user-v2": `127.0.0.1 ${v2.port}\n`,
    });
    const r = await call(outgoing, {
      path: "/users/tom/bookings",
      headers: { host: "user", "l5d-dtab": "/svc/user => /#/io.l5d.fs/user-v2" },
    });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).service).toBe("user-v2");
    expect(v1.seen).toHaveLength(0);
    const seen = v2.seen[0]!.headers;
    expect(seen["l5d-dtab"]).toBeUndefined();
    expect(seen["l5d-ctx-dtab"]).toBe("/svc/user=>/#/io.l5d.fs/user-v2");
    expect(seen["l5d-dst-client"]).toBe("/%/io.l5d.localhost/#/io.l5d.fs/user-v2");
    expect(seen.via).toBe("1.1 lintel, 1.1 lintel");
  });

  it("an instance that refuses connections fails at incoming with 502, and outgoing passes the error on", async () => {
    const dead = await freePort();
    const { outgoing } = await pair({ "disco/dead": `127.0.0.1 ${dead}\n` });
    const r = await call(outgoing, { path: "/x", headers: { host: "dead" } });
    expect(r.status).toBe(502);
    const err = decodeURIComponent(String(r.headers["l5d-err"]));
    // The error came from incoming (it connects to the instance), through outgoing.
    expect(err).toBe(`cannot connect to 127.0.0.1:${dead} for /svc/dead: ECONNREFUSED`);
    expect(r.text).toBe(`${err}\n`);
    expect(r.headers.via).toBe("1.1 lintel, 1.1 lintel");
  });
});
