// WebSocket (and any Upgrade) through lintel: the handshake is identified and bound like a
// request, then bytes flow both ways on a connection of its own to the endpoint. Real
// `ws` clients and servers on loopback, on the engine that hands a connection over (net),
// plain and over TLS.

import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import { cleanup, closeOnCleanup, eventually, metricsJson, startLintel } from "./harness.js";

afterEach(cleanup);

const TUNNELLING = ["net"] as const;

interface WsUpstream {
  readonly port: number;
  /** The handshake requests the upstream saw. */
  readonly seen: IncomingMessage[];
}

/** A WebSocket echo server; `/refuse` is answered 403 instead of switching. */
async function wsUpstream(): Promise<WsUpstream> {
  const seen: IncomingMessage[] = [];
  const http = createServer((_req, res) => res.end("not a websocket\n"));
  const wss = new WebSocketServer({ noServer: true });
  http.on("upgrade", (req, socket, head) => {
    seen.push(req);
    if (req.url === "/refuse") {
      socket.end("HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\nx-why: nope\r\n\r\nrefused");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, binary) => ws.send(data, { binary }));
    });
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  closeOnCleanup(http);
  return { port: (http.address() as AddressInfo).port, seen };
}

function lintelConfig(engine: string, upPort: number, server = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: ws
  dtab: /svc/chat => /$/inet/127.0.0.1/${upPort}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}, clearContext: true${server}}
`;
}

/** The server's tunnel metrics (`rt/ws/server/<ip>/<port>/tunnels/*`). */
async function tunnelMetrics(l: Awaited<ReturnType<typeof startLintel>>) {
  const m = await metricsJson(l);
  const at = `rt/ws/server/127.0.0.1/${l.port()}/tunnels/`;
  return {
    open: m[`${at}open`],
    opened: m[`${at}opened`],
    down: m[`${at}bytes_down`],
    up: m[`${at}bytes_up`],
  };
}

function open(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { host: "chat" }, ...options });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function reply(ws: WebSocket, send: string | Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    ws.once("message", (data) => resolve(data as Buffer));
    ws.send(send);
  });
}

describe.each(TUNNELLING)("WebSocket through the %s engine", (engine) => {
  it("switches protocols after routing, and echoes messages both ways", async () => {
    const up = await wsUpstream();
    const l = await startLintel(lintelConfig(engine, up.port));
    const ws = await open(`ws://127.0.0.1:${l.port()}/room?x=1`);
    expect((await reply(ws, "hello")).toString()).toBe("hello");
    // Larger than any socket buffer: backpressure both ways.
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    expect((await reply(ws, big)).equals(big)).toBe(true);
    // Counted as the bytes flow, while the tunnel is open.
    const during = await tunnelMetrics(l);
    expect({ open: during.open, opened: during.opened }).toEqual({ open: 1, opened: 1 });
    expect(during.down).toBeGreaterThan(4 * 1024 * 1024);
    expect(during.up).toBeGreaterThan(4 * 1024 * 1024);
    ws.close();
    // The handshake reached the upstream as lintel forwards requests: identified,
    // with forwarded headers (a clearContext server) and the upgrade asked for.
    const req = up.seen[0]!;
    expect({
      url: req.url,
      upgrade: req.headers.upgrade,
      connection: req.headers.connection,
      dst: req.headers["l5d-dst-service"],
      via: req.headers.via,
      xff: req.headers["x-forwarded-for"],
      key: typeof req.headers["sec-websocket-key"],
    }).toEqual({
      url: "/room?x=1",
      upgrade: "websocket",
      connection: "upgrade",
      dst: "/svc/chat",
      via: "1.1 lintel",
      xff: "127.0.0.1",
      key: "string",
    });
    // Counted under its service once closed, with its 101.
    const counted = async () => (await metricsJson(l))["rt/ws/service/svc/chat/requests"] === 1;
    await eventually(counted, 5000, "the closed tunnel to be counted");
    expect((await metricsJson(l))["rt/ws/service/svc/chat/status/101"]).toBe(1);
    // Both ways: the two messages, framed (masked up, plain down), and the close frames.
    const t = await tunnelMetrics(l);
    expect({ open: t.open, opened: t.opened }).toEqual({ open: 0, opened: 1 });
    expect(t.down).toBeGreaterThan(4 * 1024 * 1024);
    expect(t.down).toBeLessThan(4 * 1024 * 1024 + 4096);
    expect(t.up).toBeGreaterThan(4 * 1024 * 1024);
    expect(t.up).toBeLessThan(4 * 1024 * 1024 + 4096);
  });

  it("relays the upstream's refusal as it is framed, and closes", async () => {
    const up = await wsUpstream();
    const l = await startLintel(lintelConfig(engine, up.port));
    const got = await new Promise<{ status: number; why: string; body: string }>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${l.port()}/refuse`, { headers: { host: "chat" } });
      ws.on("error", () => {});
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode!, why: String(res.headers["x-why"]), body }),
        );
      });
    });
    expect(got).toEqual({ status: 403, why: "nope", body: "refused" });
    // A refusal opens no tunnel.
    await eventually(
      async () => (await metricsJson(l))["rt/ws/service/svc/chat/status/403"] === 1,
      5000,
      "the refusal to be counted",
    );
    expect(await tunnelMetrics(l)).toMatchObject({ open: 0, opened: 0, down: 0, up: 0 });
  });

  it("answers an upgrade nothing routes with lintel's error, not a switch", async () => {
    const up = await wsUpstream();
    const l = await startLintel(lintelConfig(engine, up.port));
    const status = await new Promise<{ status: number; err: string }>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${l.port()}/`, { headers: { host: "nowhere" } });
      ws.on("error", () => {});
      ws.once("unexpected-response", (_req, res) =>
        resolve({ status: res.statusCode!, err: String(res.headers["l5d-err"]) }),
      );
    });
    expect(status.status).toBe(502);
    expect(decodeURIComponent(status.err)).toContain("/svc/nowhere");
    expect(up.seen).toHaveLength(0);
  });

  it("closes a tunnel idle past tunnelIdleTimeoutMs", async () => {
    const up = await wsUpstream();
    const l = await startLintel(lintelConfig(engine, up.port, ", tunnelIdleTimeoutMs: 1000"));
    const ws = await open(`ws://127.0.0.1:${l.port()}/`);
    const t0 = performance.now();
    const code = await new Promise<number>((resolve) => ws.once("close", (c) => resolve(c)));
    const ms = performance.now() - t0;
    // 1006: the connection closed without a close frame (lintel cut it).
    expect({ code, atLeast: ms >= 900, within: ms < 3000 }).toEqual({
      code: 1006,
      atLeast: true,
      within: true,
    });
  });
});

describe("WebSocket over TLS (wss) through the net engine", () => {
  let root: TestCa;
  let leaf: Issued;
  beforeAll(async () => {
    root = await TestCa.root();
    leaf = await root.leaf({ dns: ["chat"] });
  }, 30_000);

  it("terminates TLS and tunnels the upgraded connection", async () => {
    const up = await wsUpstream();
    const l = await startLintel(
      lintelConfig("net", up.port, ", tls: {certPath: chat.crt, keyPath: chat.key}"),
      { "chat.crt": chainPem(leaf, root), "chat.key": leaf.keyPem() },
    );
    // ws passes TLS options on to tls.connect (its types leave servername out).
    const tlsOptions = { ca: root.certPem, servername: "chat" } as WebSocket.ClientOptions;
    const ws = await open(`wss://127.0.0.1:${l.port()}/secure`, tlsOptions);
    expect((await reply(ws, "over tls")).toString()).toBe("over tls");
    ws.close();
    expect(up.seen[0]!.headers["x-forwarded-proto"]).toBe("https");
  });
});
