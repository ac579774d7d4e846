// The admin UI in a real browser: Chromium (driven by playwright-core) opens a real lintel's
// admin server and reads the dashboard, the dtab playground and the certificates page.
// Screenshots go to a folder under the OS temp dir (printed); with
// LINTEL_UPDATE_SCREENSHOTS=1 the dashboard's also goes to docs/images/admin-dashboard.png.

import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MetricsModel } from "../../gateway/admin/ui/metrics-model.js";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import {
  call,
  cleanup,
  type Lintel,
  onCleanup,
  requireBinary,
  startLintel,
  startUpstream,
} from "./harness.js";

/** Script errors on the page a test opened (a CSP refusal, a missing module): none allowed. */
let pageErrors: string[] = [];

afterEach(async () => {
  const errors = pageErrors;
  pageErrors = [];
  await cleanup();
  expect(errors).toEqual([]);
});

const DAY = 86_400_000;
const TOKEN = "ui-test-token-0123456789";
const artifacts = mkdtempSync(join(tmpdir(), "lintel-admin-ui-"));
console.log(`admin UI screenshots: ${artifacts}`);
const docsImage = resolve(import.meta.dirname, "../../docs/images/admin-dashboard.png");

/** One browser for the file; each test opens its own page. */
let browser: Browser | undefined;
const executablePath = requireBinary("chromium", "chromium", "the admin UI test");

beforeAll(async () => {
  if (!executablePath) return;
  browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}, 30_000);

afterAll(async () => {
  await browser?.close();
});

async function open(l: Lintel, path: string): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
  onCleanup(() => page.close());
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // A 401 before the token is given logs "Failed to load resource"; that is expected.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource"))
      pageErrors.push(m.text());
  });
  const response = await page.goto(`http://127.0.0.1:${l.adminPort}${path}`);
  expect(response?.status()).toBe(200);
  return page;
}

const text = async (page: Page, selector: string) =>
  ((await page.locator(selector).first().textContent({ timeout: 5000 })) ?? "").trim();

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

describe("the admin UI in Chromium", () => {
  let root: TestCa;
  let leaf: Issued;
  /** The leaf's expiry, to the second as X.509 keeps it. */
  const notAfter = new Date(Math.floor((Date.now() + 30 * DAY) / 1000) * 1000);

  beforeAll(async () => {
    root = await TestCa.root();
    leaf = await root.leaf({ dns: ["app.test"], notAfter });
  }, 30_000);

  async function lintel(extra = ""): Promise<{ l: Lintel; users: number; other: number }> {
    const users = await startUpstream("users");
    const other = await startUpstream("other");
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0${extra}}
namers:
- kind: io.l5d.fs
  rootDir: disco
telemetry:
- kind: io.l5d.recentRequests
  sampleRate: 1.0
routers:
- protocol: http
  label: edge
  dtab: /svc => /#/io.l5d.fs
  servers:
  - {ip: 127.0.0.1, port: 0}
  - {ip: 127.0.0.1, port: 0, tls: {certPath: app.crt, keyPath: app.key}}
`,
      {
        "disco/users": `127.0.0.1 ${users.port}\n`,
        "disco/other": `127.0.0.1 ${other.port}\n`,
        "app.crt": chainPem(leaf, root),
        "app.key": leaf.keyPem(),
      },
    );
    return { l, users: users.port, other: other.port };
  }

  it("the dashboard shows the requests just sent through a router, per server and service", async () => {
    if (!browser) return;
    const { l } = await lintel();
    const page = await open(l, "/");
    const N = 23;
    for (let i = 0; i < N; i++) {
      const r = await call(l.port("edge", 0), { headers: { host: "users" } });
      expect(r.status).toBe(200);
    }
    const server = `section[data-router="edge"] table[data-kind="servers"] tr[data-id="127.0.0.1:${l.port("edge", 0)}"]`;
    const service = `section[data-router="edge"] table[data-kind="services"] tr[data-id="/svc/users"]`;
    await expect
      .poll(() => text(page, `${server} td[data-stat="requests"]`), { timeout: 10_000 })
      .toBe(`${N}`);
    await expect.poll(() => text(page, `${service} td[data-stat="requests"]`)).toBe(`${N}`);
    expect(await text(page, `${service} td[data-stat="success"]`)).toBe("100%");
    expect(Number(await text(page, `${service} td[data-stat="p50"]`))).toBeGreaterThan(0);
    expect(await text(page, "h1")).toBe("Dashboard");
    await shoot(page, "dashboard");
    if (process.env.LINTEL_UPDATE_SCREENSHOTS === "1") {
      mkdirSync(resolve(docsImage, ".."), { recursive: true });
      await page.screenshot({ path: docsImage, fullPage: true });
      console.log(`wrote ${docsImage}`);
    }
  }, 60_000);

  it("the dtab playground resolves a path and shows what an override changes, without changing routing", async () => {
    if (!browser) return;
    const { l, users, other } = await lintel();
    const page = await open(l, "/dtab");
    await page.selectOption("#pg-router", "edge");
    await page.fill("#pg-path", "/svc/users");
    await page.click("button:text('Resolve')");
    await expect.poll(() => text(page, "#tree-base [data-binding]")).toBe("/#/io.l5d.fs/users");
    expect(await text(page, "#tree-base .tree")).toContain(`127.0.0.1:${users}`);

    await page.fill("#pg-dtab", "/svc/users => /#/io.l5d.fs/other");
    await page.click("button:text('Resolve')");
    await expect.poll(() => text(page, "#tree-override [data-binding]")).toBe("/#/io.l5d.fs/other");
    expect(await text(page, "#tree-base [data-binding]")).toBe("/#/io.l5d.fs/users");
    expect(await text(page, "#override-effect")).toBe(
      "With the override the path binds to /#/io.l5d.fs/other instead of /#/io.l5d.fs/users.",
    );
    // The override's own lines are marked: the dentry it adds and the address it reaches.
    const marked = await page.locator("#tree-override mark").allTextContents();
    expect(marked.join("\n")).toContain(`127.0.0.1:${other}`);
    expect(await text(page, "#pg-header")).toBe("l5d-dtab: /svc/users => /#/io.l5d.fs/other");
    expect(page.url()).toContain("path=%2Fsvc%2Fusers");
    await shoot(page, "dtab-playground");

    // Routing did not change: the name still goes to the users upstream.
    const r = await call(l.port("edge", 0), { headers: { host: "users" } });
    expect(JSON.parse(r.text)).toMatchObject({ upstream: "users" });
  }, 60_000);

  it("the certificates page lists a served certificate's name and expiry, and the recent requests", async () => {
    if (!browser) return;
    const { l } = await lintel();
    await call(l.port("edge", 0), { path: "/hello", headers: { host: "users" } });
    const page = await open(l, "/certificates");
    const row = `tr[data-names="app.test"]`;
    expect(await text(page, `${row} th`)).toBe("app.test (default)");
    expect(await text(page, `${row} td[data-stat="expiry"]`)).toBe(notAfter.toISOString());
    expect(await text(page, "section[aria-labelledby='h-recent']")).toContain("GET users/hello");
    await shoot(page, "certificates");
  }, 60_000);

  it("with admin.token set, the UI asks for the token once and then shows the dashboard", async () => {
    if (!browser) return;
    const { l } = await lintel(`, token: ${TOKEN}`);
    const page = await open(l, "/");
    await page.locator("#token-form").waitFor({ state: "visible" });
    await page.fill("#token", TOKEN);
    await page.click("button:text('Use token')");
    await page.locator(`section[data-router="edge"]`).waitFor({ state: "visible" });
    expect(await page.locator("#token-form").isVisible()).toBe(false);
    // Kept for the tab: another page of the UI needs no second entry.
    await page.goto(`http://127.0.0.1:${l.adminPort}/certificates`);
    expect(await text(page, `tr[data-names="app.test"] th`)).toBe("app.test (default)");
    expect(await page.locator("#token-form").isVisible()).toBe(false);
  }, 60_000);
});

describe("the dashboard's reading of /admin/metrics.json", () => {
  const at = (requests: number, success: number, failures: number) => ({
    "rt/edge/server/127.0.0.1/4140/requests": requests,
    "rt/edge/server/127.0.0.1/4140/success": success,
    "rt/edge/server/127.0.0.1/4140/failures": failures,
    "rt/edge/server/127.0.0.1/4140/request_latency_ms.p99": 12.5,
  });

  it("computes requests per second and the success rate from the difference of two readings", () => {
    const model = new MetricsModel();
    const [first] = model.read(at(100, 100, 0), 10_000);
    expect(first!.servers[0]).toMatchObject({
      shown: "127.0.0.1:4140",
      rps: undefined,
      successRate: 1,
    });
    const [second] = model.read(at(150, 140, 10), 12_000);
    expect(second!.servers[0]).toMatchObject({
      requests: 150,
      rps: 25,
      successRate: 0.8,
      p99: 12.5,
    });
    // A service first seen after the first reading counts from zero.
    const [third] = model.read(
      {
        ...at(150, 140, 10),
        "rt/edge/service/svc/users/requests": 4,
        "rt/edge/service/svc/users/success": 4,
      },
      14_000,
    );
    expect(third!.services[0]).toMatchObject({ shown: "/svc/users", rps: 2, successRate: 1 });
  });
});
