// The lintel command line: `check` and `delegate`, in process and as the installed binary,
// and `demo` (what `npm start` runs) as the binary.

import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../gateway/cli/main.js";
import { requireBinary } from "../e2e/harness.js";

const root = resolve(import.meta.dirname, "../..");
let dir: string;
let config: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "lintel-cli-"));
  mkdirSync(join(dir, "disco"));
  writeFileSync(join(dir, "disco", "users"), "127.0.0.1 8081\n127.0.0.1 8082 * 3\n");
  config = join(dir, "lintel.yaml");
  writeFileSync(
    config,
    `namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: outgoing
  dtab: |
    /srv => /#/io.l5d.fs;
    /svc => /srv;
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.port
      port: 4141
  servers: [{port: 4140}]
- protocol: http
  label: incoming
  dtab: /svc => /#/io.l5d.fs
  servers: [{port: 4141}]
`,
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await main(args, (s) => lines.push(s));
  return { code, out: lines.join("\n") };
}

describe("lintel delegate", () => {
  it("prints each step and the binding, and exits 0 when the name binds to addresses", async () => {
    const { code, out } = await run("delegate", config, "--router", "outgoing", "/svc/users/x");
    expect(code).toBe(0);
    expect(out).toContain("/srv/users/x   (/svc=>/srv)");
    expect(out).toContain("transformer io.l5d.port: /#/io.l5d.fs/users");
    expect(out).toContain("Binding (what the router uses):");
    expect(out).toContain("/%/io.l5d.port/4141/#/io.l5d.fs/users [127.0.0.1:4141*4], residual /x");
  });

  it("binds the shipped egress config's CONNECT targets (host:port) to their port", async () => {
    const egress = join(import.meta.dirname, "../../configs/egress.yaml");
    const withPort = await run("delegate", egress, "--router", "egress", "/svc/localhost:8443");
    expect(withPort.out).toContain("/$/io.buoyant.rinet/8443/localhost [127.0.0.1:8443]");
    const bare = await run("delegate", egress, "--router", "egress", "/svc/localhost");
    expect(bare.out).toContain("/$/io.buoyant.rinet/443/localhost [127.0.0.1:443]");
  });

  it("exits 1 and says neg when nothing binds", async () => {
    const { code, out } = await run("delegate", config, "--router", "outgoing", "/svc/nobody");
    expect(code).toBe(1);
    expect(out).toContain("/#/io.l5d.fs/nobody   (/srv=>/#/io.l5d.fs)  → neg (nothing matches)");
    expect(out).toContain("neg: no dentry or namer binds this name");
  });

  it("prints Linkerd's delegator JSON shape with --json", async () => {
    const { code, out } = await run(
      "delegate",
      config,
      "--router",
      "incoming",
      "/svc/users",
      "--json",
    );
    expect(code).toBe(0);
    const tree = JSON.parse(out);
    expect(tree).toMatchObject({ type: "delegate", path: "/svc/users", dentry: null });
    const leaf = tree.delegate;
    expect(leaf).toMatchObject({
      type: "leaf",
      path: "/#/io.l5d.fs/users",
      dentry: { prefix: "/svc", dst: "/#/io.l5d.fs" },
      bound: {
        id: "/#/io.l5d.fs/users",
        residual: "/",
        addr: { type: "bound" },
        addrs: [
          { ip: "127.0.0.1", port: 8081, meta: {} },
          { ip: "127.0.0.1", port: 8082, meta: { weight: 3 } },
        ],
      },
    });
    expect(tree.binding).toMatchObject({ type: "leaf", bound: { id: "/#/io.l5d.fs/users" } });
  });

  it("applies --dtab dentries after the router's (so they win)", async () => {
    const { code, out } = await run(
      "delegate",
      config,
      "--router",
      "incoming",
      "/svc/users",
      "--dtab",
      "/svc/users => /$/inet/127.0.0.1/9999",
    );
    expect(code).toBe(0);
    expect(out).toContain(
      "Binding (what the router uses):\n  /$/inet/127.0.0.1/9999 [127.0.0.1:9999]",
    );
  });

  it("explains a bad path or dtab with a caret", async () => {
    const bad = await run("delegate", config, "--router", "incoming", "svc/users");
    expect(bad.code).toBe(1);
    expect(bad.out).toBe(
      "invalid path: expected '/' to start a path at column 1\n  svc/users\n  ^",
    );
    const badDtab = await run(
      "delegate",
      config,
      "--router",
      "incoming",
      "/svc/x",
      "--dtab",
      "/a => /b |",
    );
    expect(badDtab.code).toBe(1);
    expect(badDtab.out).toContain("invalid dtab: expected a name");
  });

  it("asks for --router when the config has several, and names the routers it has", async () => {
    expect(await run("delegate", config, "/svc/users")).toEqual({
      code: 1,
      out: "this config has several routers; pick one with --router (outgoing, incoming)",
    });
    expect(await run("delegate", config, "--router", "edge", "/svc/users")).toEqual({
      code: 1,
      out: 'no router labelled "edge"; routers: outgoing, incoming',
    });
  });

  it("refuses an invalid config with its errors", async () => {
    const { code, out } = await run(
      "delegate",
      join(root, "test/fixtures/broken/bad-port.yaml"),
      "/svc/x",
    );
    expect(code).toBe(1);
    expect(out).toContain('routers[0].servers[0].port: expected a port number, got "abc" (line 4)');
  });

  it("shows usage for a missing argument or an unknown command", async () => {
    expect((await run("delegate", config)).code).toBe(2);
    expect((await run("frobnicate")).out).toContain('unknown command "frobnicate"');
    expect((await run()).code).toBe(2);
  });
});

describe("the lintel binary", () => {
  const bin = join(root, "bin/lintel.js");
  const exec = promisify(execFile);

  beforeAll(() => {
    if (!existsSync(join(root, "dist/gateway/cli/main.js"))) {
      throw new Error(
        "dist/ is missing: run `npm run build` (npm test does it) before these tests",
      );
    }
  });

  it("exits 0 for a valid config and 1 for a broken one", async () => {
    const ok = await exec(process.execPath, [bin, "check", config]);
    expect(ok.stdout).toBe(`${config}: ok\n`);
    const broken = await exec(process.execPath, [
      bin,
      "check",
      join(root, "test/fixtures/broken/protocols.yaml"),
    ]).then(
      () => undefined,
      (e: { code: number; stdout: string }) => e,
    );
    expect(broken?.code).toBe(1);
    expect(broken?.stdout).toContain('routers[0].protocol: protocol "thrift" is not supported');
  });

  it("exits with delegate's status and prints its tree", async () => {
    const r = await exec(process.execPath, [
      bin,
      "delegate",
      config,
      "-r",
      "incoming",
      "/svc/users",
    ]);
    expect(r.stdout).toContain("→ bound /#/io.l5d.fs/users [127.0.0.1:8081, 127.0.0.1:8082*3]");
  });

  it("says what a uws server will not do (WebSocket, HTTP/2) and that node is net now, and still exits 0", async () => {
    const file = join(dir, "uws.yaml");
    writeFileSync(
      file,
      "routers:\n- protocol: http\n  servers:\n  - {port: 4141, engine: uws}\n  - {port: 4142}\n  - {port: 4143, engine: node}\n",
    );
    const r = await exec(process.execPath, [bin, "check", file]);
    expect(r.stdout.split("\n")).toEqual([
      `${file}: ok`,
      "  note: routers[0].servers[0]: the uws engine does not tunnel Upgrade (WebSocket) requests and does not speak HTTP/2: such requests reach the upstream as plain HTTP/1.1 requests (engine: net does both; docs/engines.md)",
      "  note: routers[0].servers[2]: engine: node is served by the net engine (lintel's own, which does everything Node's server did); write engine: net",
      "",
    ]);
  });

  it.each(["demo.yaml", "node.yaml", "egress.yaml", "ingress-controller.yaml"])(
    "checks the shipped configs/%s without errors or warnings",
    async (name) => {
      const file = join(root, "configs", name);
      const r = await exec(process.execPath, [bin, "check", file]);
      expect(r.stdout).toBe(`${file}: ok\n`);
    },
  );

  it("lintel demo (what npm start runs) prints its banner once, serves curl over HTTP/1.0 and HTTP/2 and ab, and stops on SIGTERM", async () => {
    // The demo's fixed ports (configs/demo.yaml, configs/demo/disco): 4140, 9990, 9100-9103.
    const child = spawn(process.execPath, [bin, "demo"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (code) => resolve(code)),
    );
    try {
      const deadline = Date.now() + 15_000;
      while (!stdout.includes("Stop with Ctrl-C.")) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`the demo did not start:\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // A request through the edge (the welcome service answers the banner's text), then
      // a moment for anything printed late.
      const welcome = await fetch("http://127.0.0.1:4140/");
      expect(await welcome.text()).toMatch(/^lintel demo: /);
      // The clients a new user tries first: curl over HTTP/1.0 and HTTP/2 (h2c upgrade),
      // and ApacheBench (HTTP/1.0).
      // (An HTTP/1.0 request is answered in HTTP/1.1, the server's version, RFC 9110 §2.5.)
      for (const [flag, version] of [
        ["--http1.0", "1.1"],
        ["--http2", "2"],
      ] as const) {
        const r = await exec("curl", [
          "-sS",
          "--max-time",
          "5",
          flag,
          "-w",
          "\n%{http_version} %{http_code}",
          "http://127.0.0.1:4140/",
        ]);
        expect(r.stdout).toMatch(/^lintel demo: /);
        expect(r.stdout.slice(r.stdout.lastIndexOf("\n") + 1)).toBe(`${version} 200`);
      }
      const ab = requireBinary("ab", "apache2-utils", "ApacheBench against the demo");
      if (ab) {
        const r = await exec(ab, ["-n", "200", "-c", "4", "-s", "5", "http://127.0.0.1:4140/"]);
        expect(/Complete requests:\s+(\d+)/.exec(r.stdout)?.[1]).toBe("200");
        expect(/Failed requests:\s+(\d+)/.exec(r.stdout)?.[1]).toBe("0");
        expect(r.stdout).not.toContain("Non-2xx");
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(stdout.split("lintel demo: ").length - 1, stdout).toBe(1);
    expect(stderr).not.toContain("lintel demo: ");
  });

  it("prints its version", async () => {
    const r = await exec(process.execPath, [bin, "version"]);
    expect(r.stdout).toMatch(/^lintel \d+\.\d+\.\d+\n$/);
  });
});
