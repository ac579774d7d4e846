// A real browser through lintel: Chromium loads a page over HTTPS, negotiates HTTP/2 with
// the default engine, and opens a WebSocket (wss) that lintel tunnels to a `ws` server.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { chromium } from "playwright-core";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import { cleanup, closeOnCleanup, onCleanup, requireBinary, startLintel } from "./harness.js";

afterEach(cleanup);

const PAGE = `<!doctype html><title>lintel</title><body>
<script>
window.echoed = new Promise((resolve, reject) => {
  const ws = new WebSocket("wss://" + location.host + "/socket");
  ws.onopen = () => ws.send("from the browser");
  ws.onmessage = (m) => resolve(m.data);
  ws.onerror = () => reject(new Error("websocket failed"));
});
</script>`;

/** The application behind lintel: the page, and a WebSocket echo at /socket. */
async function app(): Promise<number> {
  const http = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(PAGE);
  });
  const wss = new WebSocketServer({ server: http, path: "/socket" });
  wss.on("connection", (ws) => ws.on("message", (m) => ws.send(`echo: ${m}`)));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  closeOnCleanup(http);
  return (http.address() as AddressInfo).port;
}

describe("Chromium through lintel", () => {
  let root: TestCa;
  let leaf: Issued;
  beforeAll(async () => {
    root = await TestCa.root();
    leaf = await root.leaf({ dns: ["app.test"] });
  }, 30_000);

  it("loads a page over HTTP/2 and talks on a WebSocket through it", async () => {
    const executablePath = requireBinary("chromium", "chromium", "the browser test");
    if (!executablePath) return;
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${await app()}
  servers:
  - {ip: 127.0.0.1, port: 0, clearContext: true, tls: {certPath: app.crt, keyPath: app.key}}
`,
      { "app.crt": chainPem(leaf, root), "app.key": leaf.keyPem() },
    );
    const port = l.port();
    const browser = await chromium.launch({
      executablePath,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        // app.test is this lintel (the test CA is trusted through ignoreHTTPSErrors).
        `--host-resolver-rules=MAP app.test 127.0.0.1`,
      ],
    });
    onCleanup(() => browser.close());
    const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    const response = await page.goto(`https://app.test:${port}/`);
    expect(response?.status()).toBe(200);
    // Evaluated in the page (this project's types have no DOM).
    const protocol = await page.evaluate(
      "performance.getEntriesByType('navigation')[0].nextHopProtocol",
    );
    const echoed = await page.evaluate("window.echoed");
    expect({ protocol, echoed }).toEqual({ protocol: "h2", echoed: "echo: from the browser" });
  }, 60_000);
});
