// Connection limits on the net engine's listeners whose HTTP sides get their
// connections from a front (which read the TLS ClientHello or the PROXY header): a
// slow-loris client is cut off at headersTimeoutMs, and draining closes idle keep-alive
// connections at once.

import { connect as connectTcp, type Socket } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeProxyV2 } from "../../gateway/server/proxy-protocol.js";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import { cleanup, startLintel, startUpstream } from "./harness.js";

afterEach(cleanup);

let root: TestCa;
let leaf: Issued;
beforeAll(async () => {
  root = await TestCa.root();
  leaf = await root.leaf({ dns: ["app.test"] });
}, 30_000);

/** The engines whose connections pass a front (uws reads PROXY and TLS itself). */
const FRONTED = ["net"] as const;

async function tlsLintel(engine: string, server = "") {
  const up = await startUpstream("up");
  const l = await startLintel(
    `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}, tls: {certPath: app.crt, keyPath: app.key}${server}}
`,
    { "app.crt": chainPem(leaf, root), "app.key": leaf.keyPem() },
  );
  return { up, l };
}

function open(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", servername: "app.test", ca: root.certPem }, () =>
      resolve(s),
    );
    s.on("error", reject);
  });
}

/** Resolves with what came back and how long after `t0` the connection closed. */
function closed(s: Socket, t0: number): Promise<{ text: string; ms: number }> {
  return new Promise((resolve) => {
    let text = "";
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
    });
    s.on("error", () => {});
    s.on("close", () => resolve({ text, ms: performance.now() - t0 }));
  });
}

/** Sends a request head a byte every 250 ms; resolves once lintel closed the connection. */
async function slowLoris(s: Socket, t0: number) {
  const head = `GET /slow HTTP/1.1\r\nHost: app.test\r\nX-Pad: ${"a".repeat(100)}\r\n\r\n`;
  let i = 0;
  const tick = setInterval(() => {
    if (i < head.length && s.writable) s.write(head[i++]!);
  }, 250);
  const guard = setTimeout(() => s.destroy(), 8000);
  const r = await closed(s, t0);
  clearInterval(tick);
  clearTimeout(guard);
  return r;
}

describe.each(FRONTED)("%s engine listeners behind a front", (engine) => {
  it("over TLS: cut off a slow-loris client at headersTimeoutMs (408, then close)", async () => {
    const { up, l } = await tlsLintel(engine, ", headersTimeoutMs: 2000");
    const t0 = performance.now();
    const r = await slowLoris(await open(l.port()), t0);
    // headersTimeoutMs, checked every second by the server.
    expect(r.text.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
    expect(r.ms).toBeLessThan(4500);
    expect(up.seen).toHaveLength(0);
  }, 15_000);

  it("with the PROXY protocol: cut off a slow-loris client at headersTimeoutMs", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}, headersTimeoutMs: 2000, proxyProtocol: v2, proxyProtocolFrom: [127.0.0.1]}
`);
    const t0 = performance.now();
    const s = connectTcp(l.port(), "127.0.0.1");
    await new Promise<void>((resolve) => s.once("connect", () => resolve()));
    s.write(
      encodeProxyV2({ address: "203.0.113.7", port: 5555 }, { address: "127.0.0.1", port: 80 }),
    );
    const r = await slowLoris(s, t0);
    expect(r.text.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
    expect(r.ms).toBeLessThan(4500);
    expect(up.seen).toHaveLength(0);
  }, 15_000);

  it("close idle keep-alive connections as soon as lintel drains", async () => {
    const { l } = await tlsLintel(engine);
    const s = await open(l.port());
    const answered = new Promise<void>((resolve) => {
      s.once("data", () => resolve());
    });
    s.write("GET / HTTP/1.1\r\nHost: app.test\r\n\r\n");
    await answered;
    const t0 = performance.now();
    const done = closed(s, t0);
    // A grace period far longer than the test: only closing idle connections ends it soon.
    const stopped = l.runtime.shutdown(20_000);
    const r = await done;
    expect(r.ms).toBeLessThan(2000);
    await stopped;
  }, 30_000);
});
