// The egress destination policy end to end: internal addresses refused unless allowed,
// the host allow-list checked before anything is bound, l5d-* headers kept inside, and
// CONNECT tunnels under the same policy. Upstreams are on loopback, which is exactly
// what the policy refuses by default, so tests allow 127.0.0.0/8 where they need it.

import { connect, createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  call,
  cleanup,
  configErrors,
  eventually,
  freePort,
  metricsJson,
  onCleanup,
  startLintel,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

function config(opts: { dtab: string; egress: string; server?: string }): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: egress
  dtab: ${opts.dtab}
  egress: ${opts.egress}
  servers:
  - {ip: 127.0.0.1, port: 0${opts.server ?? ""}}
`;
}

const l5dErr = (h: Record<string, unknown>) => decodeURIComponent(String(h["l5d-err"] ?? ""));

describe("egress destination policy", () => {
  it("refuses a loopback destination by default, naming the address and the setting", async () => {
    const up = await startUpstream("inside");
    const l = await startLintel(
      config({ dtab: `/svc => /$/inet/127.0.0.1/${up.port}`, egress: "{}" }),
    );
    const r = await call(l.port(), { headers: { host: "api.example.com" } });
    expect(r.status).toBe(403);
    expect(l5dErr(r.headers)).toMatch(/127\.0\.0\.1 is not allowed: loopback address/);
    expect(l5dErr(r.headers)).toContain("egress.allowCidrs");
    expect(up.seen).toHaveLength(0);
  });

  it("reaches an internal address that allowCidrs lists", async () => {
    const up = await startUpstream("inside");
    const l = await startLintel(
      config({
        dtab: `/svc => /$/inet/127.0.0.1/${up.port}`,
        egress: "{allowCidrs: [127.0.0.0/8]}",
      }),
    );
    const r = await call(l.port(), { headers: { host: "api.example.com" } });
    expect(r.status).toBe(200);
    expect(up.seen).toHaveLength(1);
  });

  it.each([
    ["10.1.2.3", "private (RFC 1918)"],
    ["169.254.169.254", "link-local (cloud metadata)"],
    ["100.64.0.1", "shared (CGNAT)"],
    ["0.0.0.0", "unspecified"],
    ["::1", "loopback"],
    ["fd00::1", "unique local (ULA)"],
    ["fe80::1", "link-local"],
  ])("refuses %s (%s) before connecting", async (ip, what) => {
    const l = await startLintel(config({ dtab: `/svc => /$/inet/${ip}/80`, egress: "{}" }));
    const t0 = performance.now();
    const r = await call(l.port(), { headers: { host: "api.example.com" } });
    expect(r.status).toBe(403);
    expect(l5dErr(r.headers)).toContain(`${ip} is not allowed: ${what} address`);
    // Refused, not tried: no connect timeout was waited for.
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it("allowHosts refuses other names with 403 before binding, and lets listed ones through", async () => {
    const up = await startUpstream("inside");
    const l = await startLintel(
      config({
        // A dtab that would fail loudly if a refused name were ever bound.
        dtab: `/svc => /$/fail; /svc/api.example.com => /$/inet/127.0.0.1/${up.port}; /svc/a.b.stripe.com => /$/inet/127.0.0.1/${up.port}`,
        egress: "{allowHosts: [api.example.com, '*.stripe.com'], allowCidrs: [127.0.0.0/8]}",
      }),
    );
    const ok = await call(l.port(), { headers: { host: "api.example.com" } });
    expect(ok.status).toBe(200);
    const wild = await call(l.port(), { headers: { host: "a.b.stripe.com" } });
    expect(wild.status).toBe(200);
    for (const host of ["evil.example.com", "stripe.com", "api.example.com.evil.net:443"]) {
      const r = await call(l.port(), { headers: { host } });
      expect(r.status, host).toBe(403);
      expect(l5dErr(r.headers)).toBe(
        `egress to ${host.replace(/:\d+$/, "")} is not allowed: the host is not in egress.allowHosts`,
      );
    }
    expect(up.seen).toHaveLength(2);
  });

  it("sends no l5d-* header to the destination unless forwardL5dHeaders", async () => {
    const up = await startUpstream("outside");
    const dtab = `/svc => /$/inet/127.0.0.1/${up.port}`;
    const headers = {
      host: "api.example.com",
      "l5d-ctx-trace": "abc",
      "l5d-dtab": "/svc/x => /$/fail",
      "x-kept": "yes",
    };
    const closed = await startLintel(config({ dtab, egress: "{allowCidrs: [127.0.0.1]}" }));
    expect((await call(closed.port(), { headers })).status).toBe(200);
    const seen = up.seen[0]!;
    expect(Object.keys(seen.headers).filter((h) => h.startsWith("l5d-"))).toEqual([]);
    expect(seen.headers["x-kept"]).toBe("yes");
    expect(seen.headers.via).toBe("1.1 lintel");

    const open = await startLintel(
      config({ dtab, egress: "{allowCidrs: [127.0.0.1], forwardL5dHeaders: true}" }),
    );
    expect((await call(open.port(), { headers })).status).toBe(200);
    const seen2 = up.seen[1]!;
    expect(seen2.headers["l5d-ctx-trace"]).toBe("abc");
    expect(seen2.headers["l5d-dst-service"]).toBe("/svc/api.example.com");
    expect(seen2.headers["l5d-reqid"]).toBeDefined();
  });
});

/** A TCP echo server on loopback: what a tunnel carries comes back. */
async function startEcho(): Promise<number> {
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as { port: number }).port;
}

/** Sends a CONNECT and returns the head lintel answered, and the socket for the tunnel. */
function sendConnect(
  port: number,
  target: string,
): Promise<{ head: string; socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    onCleanup(() => {
      s.destroy();
    });
    let buf = Buffer.alloc(0);
    s.on("data", function onData(d: Buffer) {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      s.off("data", onData);
      resolve({
        head: buf.subarray(0, end).toString(),
        socket: s,
        rest: buf.subarray(end + 4),
      });
    });
    s.on("error", reject);
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

describe("CONNECT tunnels", () => {
  // The identifier names a CONNECT by its target (/svc/<host>:<port>); the dtab binds it.
  const TUNNEL_DTAB = "/svc => /$/io.buoyant.hostportPfx/inet; /inet => /$/inet";
  const tunnelConfig = (egress: string, ports = "[443]", dtab = TUNNEL_DTAB) =>
    config({ dtab, egress, server: `, connect: {ports: ${ports}}` });

  it("tunnels bytes both ways to an allowed destination", async () => {
    const echo = await startEcho();
    const l = await startLintel(tunnelConfig("{allowCidrs: [127.0.0.0/8]}", `[${echo}]`));
    const { head, socket } = await sendConnect(l.port(), `127.0.0.1:${echo}`);
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 200 Connection Established");
    const back = await new Promise<string>((resolve) => {
      socket.once("data", (d: Buffer) => resolve(d.toString()));
      socket.write("ping through the tunnel");
    });
    expect(back).toBe("ping through the tunnel");
    // Counted as the request it is, under its server, service and client, once it closes.
    const server = `rt/egress/server/127.0.0.1/${l.port()}`;
    const open = await metricsJson(l);
    expect(open[`${server}/requests`] ?? 0).toBe(0);
    // Open, and its bytes counted as they flowed (23 each way).
    expect([
      open[`${server}/tunnels/open`],
      open[`${server}/tunnels/opened`],
      open[`${server}/tunnels/bytes_up`],
      open[`${server}/tunnels/bytes_down`],
    ]).toEqual([1, 1, 23, 23]);
    socket.end();
    await eventually(
      async () => (await metricsJson(l))[`${server}/requests`] === 1,
      5000,
      "the closed tunnel to be counted",
    );
    const m = await metricsJson(l);
    expect([m[`${server}/success`], m[`${server}/status/200`]]).toEqual([1, 1]);
    expect(m[`${server}/tunnels/open`]).toBe(0);
    expect(m[`rt/egress/service/svc/127.0.0.1:${echo}/success`]).toBe(1);
    expect(m[`rt/egress/client/$/inet/127.0.0.1/${echo}/success`]).toBe(1);
  });

  it("goes where the dtab binds its target, and is refused where the dtab binds nothing", async () => {
    const echo = await startEcho();
    // api.example.com:<echo> is routed to the echo server by a dentry; other targets fail.
    const dtab = `/svc => /$/fail; /svc/api.example.com:${echo} => /$/inet/127.0.0.1/${echo}`;
    const l = await startLintel(tunnelConfig("{allowCidrs: [127.0.0.0/8]}", `[${echo}]`, dtab));
    const { head, socket } = await sendConnect(l.port(), `api.example.com:${echo}`);
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 200 Connection Established");
    const back = await new Promise<string>((resolve) => {
      socket.once("data", (d: Buffer) => resolve(d.toString()));
      socket.write("routed by the dtab");
    });
    expect(back).toBe("routed by the dtab");
    const other = await sendConnect(l.port(), `other.example.com:${echo}`);
    expect(other.head.split("\r\n")[0]).toBe("HTTP/1.1 502 Bad Gateway");
    expect(other.rest.toString()).toContain("/svc/other.example.com");
  });

  it("holds a maxConcurrentRequests slot while open", async () => {
    const echo = await startEcho();
    const l = await startLintel(
      config({
        dtab: TUNNEL_DTAB,
        egress: "{allowCidrs: [127.0.0.0/8]}",
        server: `, connect: {ports: [${echo}]}, maxConcurrentRequests: 1`,
      }),
    );
    const first = await sendConnect(l.port(), `127.0.0.1:${echo}`);
    expect(first.head.split("\r\n")[0]).toBe("HTTP/1.1 200 Connection Established");
    const second = await sendConnect(l.port(), `127.0.0.1:${echo}`);
    expect(second.head.split("\r\n")[0]).toBe("HTTP/1.1 503 Service Unavailable");
    expect(second.rest.toString()).toContain("maxConcurrentRequests");
    first.socket.end();
    await eventually(
      async () => {
        const again = await sendConnect(l.port(), `127.0.0.1:${echo}`);
        again.socket.destroy();
        return again.head.startsWith("HTTP/1.1 200");
      },
      5000,
      "the slot to be given back",
    );
  });

  it("refuses a port connect.ports does not list", async () => {
    const echo = await startEcho();
    const l = await startLintel(tunnelConfig("{allowCidrs: [127.0.0.0/8]}"));
    const { head, rest } = await sendConnect(l.port(), `127.0.0.1:${echo}`);
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
    expect(rest.toString()).toMatch(new RegExp(`port ${echo} is not allowed`));
    const m = await metricsJson(l);
    const server = `rt/egress/server/127.0.0.1/${l.port()}`;
    expect([
      m[`${server}/requests`],
      m[`${server}/failures/LINTEL_FORBIDDEN`],
      m[`${server}/status/403`],
    ]).toEqual([1, 1, 1]);
  });

  it("refuses an internal address and a host outside allowHosts", async () => {
    const echo = await startEcho();
    const l = await startLintel(tunnelConfig("{}", `[${echo}]`));
    const internal = await sendConnect(l.port(), `127.0.0.1:${echo}`);
    expect(internal.head.split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
    expect(internal.rest.toString()).toContain("loopback address");
    const listed = await startLintel(tunnelConfig("{allowHosts: [api.example.com]}", `[${echo}]`));
    const other = await sendConnect(listed.port(), `evil.example.com:${echo}`);
    expect(other.head.split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
    expect(other.rest.toString()).toContain("not in egress.allowHosts");
  });

  it("answers 405 on a server without connect", async () => {
    const l = await startLintel(config({ dtab: "/svc => /$/fail", egress: "{}" }));
    const { head, rest } = await sendConnect(l.port(), "api.example.com:443");
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 405 Method Not Allowed");
    expect(rest.toString()).toContain("CONNECT is not enabled");
  });

  it("answers 502 when the destination refuses the connection", async () => {
    const port = await freePort();
    const l = await startLintel(tunnelConfig("{allowCidrs: [127.0.0.0/8]}", `[${port}]`));
    const { head, rest } = await sendConnect(l.port(), `127.0.0.1:${port}`);
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 502 Bad Gateway");
    expect(rest.toString()).toContain("ECONNREFUSED");
  });
});

describe("egress config checks", () => {
  it.each([
    [
      "connect on a uws server",
      "  egress: {}\n  servers:\n  - {port: 0, engine: uws, connect: {}}",
      "connect needs engine: net",
    ],
    [
      "connect without an egress block",
      "  servers:\n  - {port: 0, connect: {}}",
      "CONNECT needs its destination policy",
    ],
    [
      "a malformed allowHosts entry",
      "  egress: {allowHosts: ['http://x']}\n  servers:\n  - {port: 0}",
      "expected a host name or *.domain",
    ],
  ])("%s is a config error", async (_, router, message) => {
    expect(await configErrors(`routers:\n- protocol: http\n${router}\n`)).toContain(message);
  });
});
