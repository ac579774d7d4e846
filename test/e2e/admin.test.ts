// The admin server: liveness and readiness, the delegator API (the same Linkerd-shaped
// tree as `lintel delegate --json`), the config as written, and graceful shutdown.

import { readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startAdminServer } from "../../gateway/admin/admin-server.js";
import { defaultUiDir, UI_BUDGET_BYTES } from "../../gateway/admin/ui-assets.js";
import { delegateCommand } from "../../gateway/cli/delegate.js";
import { main } from "../../gateway/cli/main.js";
import { startFromFile } from "../../gateway/cli/run.js";
import { silentLogger } from "../../gateway/log.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import {
  call,
  cleanup,
  ENGINES,
  type EngineName,
  eventually,
  onCleanup,
  type Reply,
  startLintel,
  startUpstream,
  tempDir,
  writeFiles,
} from "./harness.js";

afterEach(cleanup);

function config(engine: EngineName, dtab = "/svc => /#/io.l5d.fs", extra = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: edge
  dtab: |
    ${dtab}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}}
${extra}`;
}

const admin = (port: number, path: string, method = "GET", body?: string): Promise<Reply> =>
  call(port, {
    method,
    path,
    body,
    headers: body === undefined ? undefined : { "content-type": "application/json" },
  });

/** What `lintel delegate CONFIG --router LABEL PATH [--dtab D] --json` prints, parsed. */
async function cliDelegate(file: string, router: string, path: string, dtab?: string) {
  const out: string[] = [];
  const code = await delegateCommand(
    { config: file, router, path, dtab, json: true, timeoutMs: 2000 },
    (s) => out.push(s),
  );
  return { code, json: JSON.parse(out.join("\n")) as Record<string, unknown> };
}

/** True when a TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

describe.each(ENGINES)("admin server with a %s listener", (engine) => {
  it("/admin/ping answers pong", async () => {
    const l = await startLintel(config(engine));
    const r = await admin(l.adminPort, "/admin/ping");
    expect(r.status).toBe(200);
    expect(r.text).toBe("pong");
  });

  it("/admin/ready is 200 while running and 503 once shutdown started, while a request drains", async () => {
    let release: (() => void) | undefined;
    const slow = await startUpstream("slow", (_req, res) => {
      release = () => res.end("finally");
    });
    const l = await startLintel(config(engine, `/svc => /$/inet/127.0.0.1/${slow.port}`));
    const ready = await admin(l.adminPort, "/admin/ready");
    expect(ready.status).toBe(200);

    const inflight = call(l.port(), { headers: { host: "slow" } });
    await eventually(() => release !== undefined, 3000, "the slow request to reach the upstream");
    const stopped = l.runtime.shutdown(15_000);
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    const notReady = await admin(l.adminPort, "/admin/ready");
    expect(notReady.status).toBe(503);
    expect(notReady.text).toBe("not ready\n");
    expect(l.runtime.ready).toBe(false);
    // Draining: the request in flight is still being waited for.
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    release!();
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(r.text).toBe("finally");
    await stopped;
    expect(done).toBe(true);
  });

  it("/delegator.json (GET and POST) answers the tree `lintel delegate --json` prints, with a binding", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(config(engine), { "disco/users": `127.0.0.1 ${users.port}\n` });
    const q = new URLSearchParams({ namespace: "edge", path: "/svc/users" });
    const get = await admin(l.adminPort, `/delegator.json?${q}`);
    expect(get.status).toBe(200);
    expect(get.headers["content-type"]).toMatch(/^application\/json/);
    const tree = JSON.parse(get.text);
    expect(tree).toMatchObject({
      type: "delegate",
      path: "/svc/users",
      dentry: null,
      delegate: {
        type: "leaf",
        path: "/#/io.l5d.fs/users",
        dentry: { prefix: "/svc", dst: "/#/io.l5d.fs" },
        bound: {
          id: "/#/io.l5d.fs/users",
          residual: "/",
          addr: { type: "bound" },
          addrs: [{ ip: "127.0.0.1", port: users.port, meta: {} }],
        },
      },
      binding: {
        type: "leaf",
        bound: { id: "/#/io.l5d.fs/users", addrs: [{ ip: "127.0.0.1", port: users.port }] },
      },
    });
    const post = await admin(
      l.adminPort,
      "/delegator.json",
      "POST",
      JSON.stringify({ namespace: "edge", path: "/svc/users", dtab: "" }),
    );
    expect(post.status).toBe(200);
    expect(JSON.parse(post.text)).toEqual(tree);
    const cli = await cliDelegate(join(l.dir, "lintel.yaml"), "edge", "/svc/users");
    expect(cli.code).toBe(0);
    expect(cli.json).toEqual(tree);
  });

  it("/delegator.json applies the dtab given (GET and POST alike, as the CLI's --dtab)", async () => {
    const v1 = await startUpstream("v1");
    const v2 = await startUpstream("v2");
    const l = await startLintel(config(engine), {
      "disco/users": `127.0.0.1 ${v1.port}\n`,
      "disco/users-v2": `127.0.0.1 ${v2.port}\n`,
    });
    const dtab = "/svc/users => /#/io.l5d.fs/users-v2";
    const q = new URLSearchParams({ namespace: "edge", path: "/svc/users", dtab });
    const get = await admin(l.adminPort, `/delegator.json?${q}`);
    expect(get.status).toBe(200);
    const tree = JSON.parse(get.text);
    expect(tree.binding).toMatchObject({
      type: "leaf",
      bound: {
        id: "/#/io.l5d.fs/users-v2",
        addrs: [{ ip: "127.0.0.1", port: v2.port, meta: {} }],
      },
    });
    expect(JSON.stringify(tree)).toContain('"prefix":"/svc/users"');
    const post = await admin(
      l.adminPort,
      "/delegator.json",
      "POST",
      JSON.stringify({ namespace: "edge", path: "/svc/users", dtab }),
    );
    expect(post.status).toBe(200);
    expect(JSON.parse(post.text)).toEqual(tree);
    const cli = await cliDelegate(join(l.dir, "lintel.yaml"), "edge", "/svc/users", dtab);
    expect(cli.json).toEqual(tree);
  });

  it("/delegator.json for a name that binds nowhere answers the neg tree and binding", async () => {
    const l = await startLintel(config(engine));
    const q = new URLSearchParams({ namespace: "edge", path: "/svc/nobody" });
    const r = await admin(l.adminPort, `/delegator.json?${q}`);
    expect(r.status).toBe(200);
    const tree = JSON.parse(r.text);
    expect(tree.path).toBe("/svc/nobody");
    expect(tree.binding).toEqual({ type: "neg" });
    const cli = await cliDelegate(join(l.dir, "lintel.yaml"), "edge", "/svc/nobody");
    expect(cli.code).toBe(1);
    expect(cli.json).toEqual(tree);
  });

  it("/delegator.json errors: unknown namespace 404, bad path 400, bad dtab 400, malformed POST 400", async () => {
    const l = await startLintel(config(engine));
    const get = (params: Record<string, string>) =>
      admin(l.adminPort, `/delegator.json?${new URLSearchParams(params)}`);

    const unknown = await get({ namespace: "nope", path: "/svc/x" });
    expect(unknown.status).toBe(404);
    expect(unknown.text).toContain('"nope"');
    expect(unknown.text).toContain("edge");

    const badPath = await get({ namespace: "edge", path: "svc/x" });
    expect(badPath.status).toBe(400);
    expect(badPath.text).toMatch(/^Invalid path/);

    const noPath = await get({ namespace: "edge" });
    expect(noPath.status).toBe(400);
    expect(noPath.text).toContain("path is required");

    const badDtab = await get({ namespace: "edge", path: "/svc/x", dtab: "/svc => => /x" });
    expect(badDtab.status).toBe(400);
    expect(badDtab.text).toMatch(/^Invalid dtab/);

    const malformed = await admin(l.adminPort, "/delegator.json", "POST", "{not json");
    expect(malformed.status).toBe(400);
    expect(malformed.text).toContain("malformed delegation request");

    const postUnknown = await admin(
      l.adminPort,
      "/delegator.json",
      "POST",
      JSON.stringify({ namespace: "nope", path: "/svc/x" }),
    );
    expect(postUnknown.status).toBe(404);

    const postBadDtab = await admin(
      l.adminPort,
      "/delegator.json",
      "POST",
      JSON.stringify({ namespace: "edge", path: "/svc/x", dtab: "=>" }),
    );
    expect(postBadDtab.status).toBe(400);
    expect(postBadDtab.text).toMatch(/^Invalid dtab/);
  });

  it("unknown admin paths are 404", async () => {
    const l = await startLintel(config(engine));
    const r = await admin(l.adminPort, "/no/such/page");
    expect(r.status).toBe(404);
  });
});

describe("admin server of `lintel run`", () => {
  const BLOCK = (engine: EngineName) => `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: \${LINTEL_TEST_LABEL:-edge}
  dtab: /svc => /$/inet/127.0.0.1/9
  servers:
  - ip: 127.0.0.1
    port: \${LINTEL_TEST_PORT:-0}
    engine: ${engine}
`;

  async function run(yaml: string) {
    const dir = tempDir();
    writeFiles(dir, { "lintel.yaml": yaml });
    const out: string[] = [];
    const h = await startFromFile(join(dir, "lintel.yaml"), silentLogger, (s) => out.push(s));
    if (typeof h === "number") throw new Error(`lintel did not start (${h}): ${out.join("\n")}`);
    onCleanup(() => h.runtime.shutdown(0));
    return h;
  }

  it("/config.json returns the config as written, ${VAR} references not expanded", async () => {
    process.env.LINTEL_TEST_LABEL = "secret-label";
    onCleanup(() => {
      delete process.env.LINTEL_TEST_LABEL;
    });
    const h = await run(BLOCK("net"));
    // The running config used the expanded values.
    expect(h.runtime.listeners[0]!.router).toBe("secret-label");
    expect(h.runtime.listeners[0]!.listener.port).toBeGreaterThan(0);
    const r = await admin(h.runtime.admin!.port, "/config.json");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    expect(r.text).not.toContain("secret-label");
    const json = JSON.parse(r.text);
    expect(json).toEqual({
      admin: { ip: "127.0.0.1", port: 0 },
      routers: [
        {
          protocol: "http",
          label: "${LINTEL_TEST_LABEL:-edge}",
          dtab: "/svc => /$/inet/127.0.0.1/9",
          servers: [{ ip: "127.0.0.1", port: "${LINTEL_TEST_PORT:-0}", engine: "net" }],
        },
      ],
    });
  });

  it("/config.json redacts an admin token written inline, and shows a ${VAR} one as written", async () => {
    const token = "inline-admin-token-0123456789";
    const inline = await run(BLOCK("net").replace("port: 0}", `port: 0, token: ${token}}`));
    const r = await call(inline.runtime.admin!.port, {
      path: "/config.json",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain(token);
    expect(JSON.parse(r.text).admin).toEqual({ ip: "127.0.0.1", port: 0, token: "(redacted)" });

    process.env.LINTEL_TEST_TOKEN = token;
    onCleanup(() => {
      delete process.env.LINTEL_TEST_TOKEN;
    });
    const fromEnv = await run(
      BLOCK("net").replace("port: 0}", "port: 0, token: ${LINTEL_TEST_TOKEN}}"),
    );
    const r2 = await call(fromEnv.runtime.admin!.port, {
      path: "/config.json",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(JSON.parse(r2.text).admin.token).toBe("${LINTEL_TEST_TOKEN}");
  });

  it("/config.json shows a config whose ${VAR} references sit in a flow mapping", async () => {
    const h = await run(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/9
  servers:
  - {ip: 127.0.0.1, port: \${LINTEL_TEST_PORT:-0}, engine: net}
`);
    expect(h.runtime.listeners[0]!.listener.port).toBeGreaterThan(0);
    const r = await admin(h.runtime.admin!.port, "/config.json");
    expect(r.status).toBe(200);
    // Regression: /config.json parsed the unsubstituted text, which is not valid YAML here
    // (`{` inside a flow mapping), and answered {}.
    const json = JSON.parse(r.text);
    expect(json.routers?.[0]?.label).toBe("edge");
    expect(json.routers?.[0]?.servers?.[0]?.port).toBe("${LINTEL_TEST_PORT:-0}");
  });

  it.each(ENGINES)("POST /admin/shutdown → 202, and lintel (%s listener) stops", async (engine) => {
    const h = await run(BLOCK(engine));
    const port = h.runtime.listeners[0]!.listener.port;
    expect(await refused(port)).toBe(false);
    const get = await admin(h.runtime.admin!.port, "/admin/shutdown");
    expect(get.status).toBe(405);
    const r = await admin(h.runtime.admin!.port, "/admin/shutdown", "POST");
    expect(r.status).toBe(202);
    const code = await Promise.race([
      h.stopped,
      new Promise<string>((res) => setTimeout(() => res("still running"), 5000)),
    ]);
    expect(code).toBe(0);
    await eventually(() => refused(port), 3000, "the router port to refuse connections");
    expect(await refused(h.runtime.admin!.port)).toBe(true);
  });
});

describe("admin access: Origin check and token", () => {
  const TOKEN = "test-admin-token-0123456789";
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it("listens on 127.0.0.1 when the config gives no admin block", async () => {
    const dir = tempDir();
    writeFiles(dir, {
      "lintel.yaml": "routers:\n- protocol: http\n  servers: [{port: 0}]\n",
    });
    const loaded = await loadLintelConfig(join(dir, "lintel.yaml"));
    expect(loaded.ok && loaded.config.admin).toMatchObject({ ip: "127.0.0.1", port: 9990 });
  });

  it("refuses a POST a page of another origin sends (403); same-origin and Origin-less POSTs pass", async () => {
    const l = await startLintel(config("net"));
    const body = JSON.stringify({ namespace: "edge", path: "/svc/users" });
    const post = (path: string, origin?: string) =>
      call(l.adminPort, {
        method: "POST",
        path,
        body,
        headers: origin === undefined ? {} : { origin },
      });
    const shutdown = await post("/admin/shutdown", "http://evil.example");
    expect(shutdown.status).toBe(403);
    expect(shutdown.text).toContain("http://evil.example");
    expect((await admin(l.adminPort, "/admin/ready")).status).toBe(200);
    expect((await post("/delegator.json", "null")).status).toBe(403);
    expect((await post("/delegator.json", `http://localhost:${l.adminPort}`)).status).toBe(403);
    expect((await post("/delegator.json", `http://127.0.0.1:${l.adminPort}`)).status).toBe(200);
    expect((await post("/delegator.json")).status).toBe(200);
    // Reading is not state-changing: a GET with a foreign Origin is answered.
    const get = await call(l.adminPort, {
      path: "/admin/ping",
      headers: { origin: "http://evil.example" },
    });
    expect(get.status).toBe(200);
  });

  it("with admin.token, every path but /admin/ping, /admin/ready and the UI's files needs it", async () => {
    const l = await startLintel(config("net").replace("port: 0}", `port: 0, token: ${TOKEN}}`));
    for (const path of [
      "/admin/metrics.json",
      "/config.json",
      "/delegator.json",
      "/admin/ui.json",
    ]) {
      const none = await admin(l.adminPort, path);
      expect(none.status, path).toBe(401);
      expect(none.headers["www-authenticate"]).toBe('Bearer realm="lintel admin"');
      const wrong = await call(l.adminPort, { path, headers: bearer(`${TOKEN}x`) });
      expect(wrong.status, path).toBe(401);
      expect(wrong.text).toBe("the admin token given is wrong\n");
    }
    const right = await call(l.adminPort, { path: "/admin/metrics.json", headers: bearer(TOKEN) });
    expect(right.status).toBe(200);
    expect(JSON.parse(right.text)).toHaveProperty(["process/uptime_ms"]);
    const shutdownWithout = await admin(l.adminPort, "/admin/shutdown", "POST");
    expect(shutdownWithout.status).toBe(401);
    expect((await admin(l.adminPort, "/admin/ping")).status).toBe(200);
    expect((await admin(l.adminPort, "/admin/ready")).status).toBe(200);
    expect((await admin(l.adminPort, "/")).status).toBe(200);
    expect((await admin(l.adminPort, "/ui/lintel.js")).status).toBe(200);
  });

  it("the CLI sends LINTEL_ADMIN_TOKEN, and says to set it when the admin server asks", async () => {
    const l = await startLintel(config("net").replace("port: 0}", `port: 0, token: ${TOKEN}}`));
    const address = `127.0.0.1:${l.adminPort}`;
    const saved = process.env.LINTEL_ADMIN_TOKEN;
    const run = async (token: string | undefined) => {
      if (token === undefined) delete process.env.LINTEL_ADMIN_TOKEN;
      else process.env.LINTEL_ADMIN_TOKEN = token;
      const lines: string[] = [];
      const code = await main(["certs", "--admin", address, "--json"], (s) => lines.push(s));
      return { code, text: lines.join("\n") };
    };
    try {
      expect(await run(undefined)).toEqual({
        code: 1,
        text: `cannot read the certificates: the admin server at ${address} needs its token (admin.token): set LINTEL_ADMIN_TOKEN`,
      });
      expect((await run(`${TOKEN}x`)).text).toContain("refused the token in LINTEL_ADMIN_TOKEN");
      const ok = await run(TOKEN);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.text)).toHaveProperty("servers");
    } finally {
      if (saved === undefined) delete process.env.LINTEL_ADMIN_TOKEN;
      else process.env.LINTEL_ADMIN_TOKEN = saved;
    }
  });

  it("admin.tokenEnv reads the token from the environment at startup, and names the variable when it is unset", async () => {
    const yaml = config("net").replace("port: 0}", "port: 0, tokenEnv: LINTEL_TEST_ADMIN_TOKEN}");
    await expect(startLintel(yaml)).rejects.toThrow(
      "admin.tokenEnv: the environment variable LINTEL_TEST_ADMIN_TOKEN is not set",
    );
    process.env.LINTEL_TEST_ADMIN_TOKEN = "short";
    onCleanup(() => {
      delete process.env.LINTEL_TEST_ADMIN_TOKEN;
    });
    await expect(startLintel(yaml)).rejects.toThrow(
      "admin.tokenEnv: $LINTEL_TEST_ADMIN_TOKEN: the token has 5 characters; use at least 16",
    );
    process.env.LINTEL_TEST_ADMIN_TOKEN = TOKEN;
    const l = await startLintel(yaml);
    expect((await admin(l.adminPort, "/config.json")).status).toBe(401);
    const r = await call(l.adminPort, { path: "/config.json", headers: bearer(TOKEN) });
    expect(r.status).toBe(200);
  });
});

describe("the admin UI's files", () => {
  it("serves the pages, the one script and the stylesheet with their types, an ETag and a CSP", async () => {
    const l = await startLintel(config("net"));
    const page = await admin(l.adminPort, "/");
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["cache-control"]).toBe("no-cache");
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    const etag = page.headers.etag!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await call(l.adminPort, { path: "/", headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    for (const p of ["/dtab", "/certificates"]) {
      const other = await admin(l.adminPort, p);
      expect(other.status).toBe(200);
      expect(other.text).toBe(page.text);
    }
    // One script bundle and one stylesheet, both from this server.
    expect(page.text.match(/<script\b[^>]*>/g)).toEqual(['<script defer src="/ui/lintel.js">']);
    const js = await admin(l.adminPort, "/ui/lintel.js");
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.text).toContain('define("main"');
    const css = await admin(l.adminPort, "/ui/lintel.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(css.headers.etag).not.toBe(etag);
  });

  it(`stays within its size budget (${UI_BUDGET_BYTES} bytes for script, page and stylesheet)`, () => {
    const dir = defaultUiDir();
    const sizes = Object.fromEntries(
      ["lintel.js", "index.html", "lintel.css"].map((f) => [f, statSync(join(dir, f)).size]),
    );
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    console.log(
      `admin UI size: ${JSON.stringify(sizes)}, total ${total} of ${UI_BUDGET_BYTES} bytes`,
    );
    expect(readFileSync(join(dir, "lintel.js"), "utf8")).toContain('define("dashboard"');
    expect(total).toBeLessThanOrEqual(UI_BUDGET_BYTES);
  });

  it("answers 503 naming the build command when the UI is not built, and serves the rest", async () => {
    const empty = tempDir();
    const server = await startAdminServer(
      {
        log: silentLogger,
        routers: new Map(),
        configJson: () => ({}),
        isReady: () => true,
        shutdown: () => {},
        metrics: () => ({ scopes: [] }),
        namers: new Map(),
        kubernetes: () => [],
        certificates: () => ({ servers: [], acme: [] }),
        clients: async () => [],
        uiDir: empty,
      },
      "127.0.0.1",
      0,
    );
    onCleanup(() => server.close());
    const r = await admin(server.port, "/");
    expect(r.status).toBe(503);
    expect(r.text).toContain("run `npm run build`");
    expect(r.text).toContain(join(empty, "index.html"));
    expect((await admin(server.port, "/admin/ping")).status).toBe(200);
    expect((await admin(server.port, "/admin/ui.json")).text).toContain('"routers": []');
  });

  it("/admin/ui.json names the routers and the telemeters' pages the UI links to", async () => {
    const l = await startLintel(
      `${config("net")}telemetry:\n- kind: io.l5d.recentRequests\n  sampleRate: 1.0\n`,
    );
    const index = JSON.parse((await admin(l.adminPort, "/admin/ui.json")).text);
    expect(index.routers).toEqual([{ label: "edge", dstPrefix: "/svc" }]);
    expect(index.namers).toEqual([]);
    expect(index.pages).toContain("/admin/recentRequests.json");
    // Without the telemeter the page is not there (the UI says how to turn it on).
    const without = await startLintel(config("net"));
    const plain = JSON.parse((await admin(without.adminPort, "/admin/ui.json")).text);
    expect(plain.pages).not.toContain("/admin/recentRequests.json");
  });
});
