// The application log of the built binary in JSON (`lintel run --log-format json`): every
// line on stderr is a JSON object, and a request that fails (its upstream refuses
// connections) is logged with the client address a PROXY v2 header or a trusted
// X-Forwarded-For gave, not the loopback peer; on a uws server it is logged from a
// worker thread, with `thread`. Needs `npm run -s build` first.

import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { encodeProxyV2 } from "../../gateway/server/proxy-protocol.js";
import { adminStatus, runLintel, within } from "./child.js";
import { call, cleanup, eventually, freePort, raw, tempDir, writeFiles } from "./harness.js";

afterEach(cleanup);

/** Distinct free ports (a port freed twice in a row would be handed out twice). */
async function ports(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

type Event = Record<string, unknown>;

/** stderr's lines, each parsed as JSON (a line that is not JSON fails the test). */
function events(stderr: string): Event[] {
  return stderr
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as Event;
      } catch {
        throw new Error(`not a JSON line on stderr: ${l}`);
      }
    });
}

describe("lintel run --log-format json", () => {
  it("logs a failed request with the client address PROXY or a trusted X-Forwarded-For gave", async () => {
    const [proxied, behind, uws, admin, dead] = await ports(5);
    const dir = tempDir("lintel-app-log-");
    // `dead`: nothing listens there, so every request's upstream refuses the connection.
    writeFiles(dir, {
      "lintel.yaml": `
admin: {ip: 127.0.0.1, port: ${admin}}
workers: 1
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/${dead}
  servers:
  - {ip: 127.0.0.1, port: ${proxied}, engine: net, proxyProtocol: v2, proxyProtocolFrom: [127.0.0.1]}
  - {ip: 127.0.0.1, port: ${behind}, engine: net, clearContext: true, trustedProxies: [127.0.0.1/32]}
  - {ip: 127.0.0.1, port: ${uws}, engine: uws, clearContext: true, trustedProxies: [127.0.0.1/32]}
`,
    });
    const config = join(dir, "lintel.yaml");
    const l = runLintel(["run", config, "--log-format", "json", "--log-level", "debug"], dir);
    await eventually(
      async () => {
        if (l.exit()) throw new Error(`lintel exited before ready:\n${l.output()}`);
        return (await adminStatus(admin!, "/admin/ready")) === 200;
      },
      15_000,
      "lintel to be ready",
    );

    // A PROXY v2 header names the client; an X-Forwarded-For from it is not trusted.
    const viaProxy = await raw(
      proxied!,
      Buffer.concat([
        encodeProxyV2({ address: "203.0.113.7", port: 5555 }, { address: "127.0.0.1", port: 80 }),
        Buffer.from(
          "GET /a HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 192.0.2.99\r\nConnection: close\r\n\r\n",
        ),
      ]),
      5000,
    );
    expect(viaProxy.text.split("\r\n")[0]).toBe("HTTP/1.1 502 Bad Gateway");
    // From a trusted proxy (127.0.0.1), the client is X-Forwarded-For's first untrusted address.
    const xff = { host: "app", "x-forwarded-for": "198.51.100.9, 127.0.0.1" };
    expect((await call(behind!, { path: "/b", headers: xff })).status).toBe(502);
    expect((await call(uws!, { path: "/c", headers: xff })).status).toBe(502);

    const failed = (server: number) =>
      events(l.stderr()).find(
        (e) => e.msg === "request failed" && e.server === `127.0.0.1:${server}`,
      );
    await eventually(
      () => [proxied!, behind!, uws!].every((p) => failed(p) !== undefined),
      5000,
      'a "request failed" line for each server',
    ).catch((e: Error) => {
      throw new Error(`${e.message}; stderr:\n${l.stderr()}`);
    });
    expect(failed(proxied!)).toMatchObject({
      level: "debug",
      router: "edge",
      client: "203.0.113.7",
      status: 502,
    });
    expect(failed(behind!)).toMatchObject({
      level: "debug",
      router: "edge",
      client: "198.51.100.9",
      status: 502,
    });
    expect(failed(behind!)).not.toHaveProperty("thread");
    // uws servers are served by the worker thread: its events come forwarded.
    expect(failed(uws!)).toMatchObject({
      level: "debug",
      router: "edge",
      client: "198.51.100.9",
      status: 502,
      worker: 0,
    });
    expect(failed(uws!)!.thread).toEqual(expect.any(Number));
    for (const p of [proxied!, behind!, uws!])
      expect(failed(p)!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(events(l.stderr()).some((e) => e.msg === "listening" && e.level === "info")).toBe(true);

    // Lines written just before exit are there (the destination is synchronous).
    process.kill(l.pid, "SIGTERM");
    expect(await within(l.exited, 10_000)).toBe(true);
    expect(l.exit()).toMatchObject({ code: 0 });
    const all = events(l.stderr());
    expect(all.at(-1)).toMatchObject({ level: "info", msg: "stopped" });
    expect(l.stdout()).toBe("");
  }, 40_000);

  it("exits 2 naming the flag and the formats for a bad --log-format", async () => {
    const l = runLintel(["run", "/nonexistent/lintel.yaml", "--log-format", "xml"]);
    expect(await within(l.exited, 10_000)).toBe(true);
    expect(l.exit()).toMatchObject({ code: 2 });
    expect(l.stdout()).toBe('--log-format: "xml" is not a log format; use one of text, json\n');
    // Nothing was started, so nothing was logged.
    expect(l.stderr()).toBe("");
  }, 15_000);
});
