// The HAProxy configs shipped in deploy/haproxy/, checked with the real HAProxy:
// - every .cfg passes `haproxy -c` with no warning;
// - egress-lb.cfg, run for real in front of two stand-in lintel egress instances (small
//   node HTTP servers, each with its own "admin" server answering /admin/ready), spreads
//   connections round-robin, takes an instance out when its /admin/ready answers 503 and
//   puts it back when it answers 200 again;
// - edge-frontend.cfg, run for real in front of a stand-in lintel edge (raw TCP servers),
//   passes TLS through untouched with a PROXY v2 header, refuses non-TLS bytes on :443,
//   and forwards :80 with a PROXY v2 header too.
// The running tests use a test version of each file: the shipped text with its listen
// ports, server addresses, check ports and check interval replaced by loopback
// ephemeral ones, and the privileged global settings (chroot, user, syslog, runtime
// socket, large maxconn) removed. Every replacement must match, so a change to the
// shipped file's shape fails here instead of silently testing something else.
//
// HAProxy is the Debian package `haproxy`. Without it these tests skip with a printed
// reason, or fail under CI=true.
//
// This file is self-contained (no import of the gateway) on purpose: it tests
// deployment files, not lintel.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import {
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const CONFIG_DIR = join(ROOT, "deploy", "haproxy");
const SHIPPED = readdirSync(CONFIG_DIR)
  .filter((f) => f.endsWith(".cfg"))
  .sort();

const CI = process.env.CI === "true";
const HAPROXY = findHaproxy();
const SKIP = HAPROXY === undefined && !CI;
if (SKIP)
  console.warn(
    "test/deploy/haproxy-configs.test.ts: SKIPPED: `haproxy` is not installed " +
      "(Debian package haproxy: apt-get install -y haproxy). Under CI=true this fails instead.",
  );

/** haproxy on PATH, or in the sbin directories a non-root PATH often lacks. */
function findHaproxy(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    const f = join(d, "haproxy");
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

function haproxyBin(): string {
  if (HAPROXY === undefined)
    throw new Error(
      "haproxy is not installed, and CI=true requires it for the deploy/haproxy tests: " +
        "install the Debian package (apt-get install -y haproxy)",
    );
  return HAPROXY;
}

// ---------------------------------------------------------------------------------------
// Cleanup, waits

const cleanups: (() => Promise<void> | void)[] = [];
function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // keep cleaning up the rest
    }
  }
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves true when `p` settles within `ms`, false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(() => true),
    new Promise<boolean>((res) => {
      timer = setTimeout(() => res(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return r;
}

/** Polls `check` until it holds; fails after `timeoutMs` with `what()` in the message. */
async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: () => string,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(50);
  }
}

/** A free TCP port on loopback (bound and released), for HAProxy's fixed binds. */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

function portOf(server: HttpServer | NetServer): number {
  const a = server.address();
  return typeof a === "object" && a ? a.port : 0;
}

// ---------------------------------------------------------------------------------------
// Test versions of the shipped configs

/** `text.replace(pattern, by)`, failing when the pattern matches nothing. */
function mustReplace(text: string, pattern: RegExp, by: string, what: string): string {
  if (!new RegExp(pattern.source, pattern.flags.replace("g", "")).test(text))
    throw new Error(`the shipped config no longer has ${what} (${pattern}); update this test`);
  return text.replace(pattern, by);
}

interface ServerLine {
  readonly backend: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly options: string;
}

const SECTION = /^(?:backend|listen|frontend|defaults|global)\b\s*(\S*)/;
const SERVER = /^(\s+server\s+)(\S+)\s+([^\s:]+):(\d+)(.*)$/;

/** Calls `each` for every line, with the server it declares (if any) and its section. */
function mapLines(cfg: string, each: (line: string, server?: ServerLine) => string[]): string {
  let section = "";
  return cfg
    .split("\n")
    .flatMap((line) => {
      const sec = SECTION.exec(line);
      if (sec) section = sec[1]!;
      const m = SERVER.exec(line);
      if (!m) return each(line);
      return each(line, {
        backend: section,
        name: m[2]!,
        host: m[3]!,
        port: Number(m[4]),
        options: m[5]!,
      });
    })
    .join("\n");
}

/** The `server` lines of a config, with the backend each belongs to. */
function serverLines(cfg: string): ServerLine[] {
  const out: ServerLine[] = [];
  mapLines(cfg, (line, s) => {
    if (s) out.push(s);
    return [line];
  });
  return out;
}

interface Target {
  readonly port: number;
  readonly checkPort: number;
}

/**
 * The shipped config made runnable here: privileged global settings removed, logs to
 * stdout, `binds` (shipped bind address → loopback port) rewritten, each server line
 * pointed at what `target` returns (or dropped when it returns undefined), check port
 * rewritten per server, and `inter` shortened.
 */
function testVersion(
  shipped: string,
  binds: Record<string, number>,
  target: (s: ServerLine) => Target | undefined,
  inter = "200ms",
): string {
  let cfg = shipped;
  cfg = mustReplace(cfg, /^[ \t]*chroot\s.*$/m, "", "a chroot line");
  cfg = mustReplace(cfg, /^[ \t]*user\s.*$/m, "", "a user line");
  cfg = mustReplace(cfg, /^[ \t]*group\s.*$/m, "", "a group line");
  cfg = mustReplace(cfg, /^[ \t]*stats socket\s.*$/m, "", "a runtime API socket");
  cfg = mustReplace(cfg, /^([ \t]*)log \/dev\/log (\S+)$/m, "$1log stdout format raw $2", "syslog");
  // A non-root test cannot raise the fd limit a large maxconn needs (strict-limits).
  cfg = mustReplace(cfg, /^([ \t]*maxconn) \d+$/gm, "$1 256", "maxconn");
  for (const [from, port] of Object.entries(binds))
    cfg = mustReplace(
      cfg,
      new RegExp(`^([ \\t]*bind) ${from.replace(/[.]/g, "\\.")}$`, "m"),
      `$1 127.0.0.1:${port}`,
      `bind ${from}`,
    );
  return mapLines(cfg, (line, s) => {
    if (!s) return [line];
    const t = target(s);
    if (!t) return [];
    let options = mustReplace(s.options, / port \d+/, ` port ${t.checkPort}`, "check port");
    options = mustReplace(options, / inter \S+/, ` inter ${inter}`, "inter");
    return [`${SERVER.exec(line)![1]}${s.name} 127.0.0.1:${t.port}${options}`];
  });
}

// ---------------------------------------------------------------------------------------
// HAProxy as a child process

interface Haproxy {
  readonly pid: number;
  readonly output: () => string;
  readonly config: string;
}

/** Runs `haproxy -f <cfg> -db` (foreground); killed by PID after the test. */
async function startHaproxy(cfgText: string, readyPort: number): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), "lintel-haproxy-"));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, cfgText);
  const proc: ChildProcess = spawn(haproxyBin(), ["-f", file, "-db"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error("could not spawn haproxy");
  let out = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  let exited = false;
  const exit = new Promise<void>((r) =>
    proc.once("exit", () => {
      exited = true;
      r();
    }),
  );
  onCleanup(async () => {
    if (exited) return;
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      return;
    }
    if (await within(exit, 3000)) return;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return;
    }
    await within(exit, 3000);
  });
  await eventually(
    async () => {
      if (exited) throw new Error(`haproxy exited at startup:\n${out}\nconfig:\n${cfgText}`);
      return isListening(readyPort);
    },
    5000,
    () => `haproxy to listen on ${readyPort}:\n${out}`,
  );
  return { pid, output: () => out, config: cfgText };
}

function isListening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, "127.0.0.1");
    s.setTimeout(1000, () => {
      s.destroy();
      res(false);
    });
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
  });
}

/** HAProxy's stats CSV as `proxy/server` → status (UP, DOWN, "UP 1/2", ...). */
async function serverStates(statsPort: number): Promise<Record<string, string>> {
  const csv = await get(statsPort, "/;csv");
  const rows = csv.body.split("\n");
  const head = rows[0]!.replace(/^# /, "").split(",");
  const [px, sv, st] = ["pxname", "svname", "status"].map((k) => head.indexOf(k));
  const states: Record<string, string> = {};
  for (const row of rows.slice(1)) {
    const f = row.split(",");
    if (f.length < head.length || f[sv!] === "FRONTEND" || f[sv!] === "BACKEND") continue;
    states[`${f[px!]}/${f[sv!]}`] = f[st!]!;
  }
  return states;
}

// ---------------------------------------------------------------------------------------
// Stand-ins for lintel

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** GET on a fresh connection (so HAProxy balances every request anew); 10 s bound. */
function get(port: number, path: string): Promise<Reply> {
  return new Promise((res, rej) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (r) => {
      let body = "";
      r.setEncoding("utf8");
      r.on("data", (d: string) => {
        body += d;
      });
      r.on("end", () => res({ status: r.statusCode ?? 0, body }));
      r.on("error", rej);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} on ${port} timed out`)));
    req.on("error", rej);
    req.end();
  });
}

async function listenHttp(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<HttpServer> {
  const server = createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return server;
}

/** What a lintel admin server does for HAProxy: /admin/ready, 200 or 503. */
interface Admin {
  readonly port: number;
  ready: boolean;
  readonly checks: string[];
}

async function startAdmin(): Promise<Admin> {
  const admin = { port: 0, ready: true, checks: [] as string[] };
  const server = await listenHttp((req, res) => {
    admin.checks.push(`${req.method} ${req.url}`);
    if (req.url !== "/admin/ready") {
      res.writeHead(404).end();
      return;
    }
    if (admin.ready) res.writeHead(200, { "content-type": "text/plain" }).end("ready\n");
    else res.writeHead(503, { "content-type": "text/plain" }).end("not ready\n");
  });
  admin.port = portOf(server);
  return admin;
}

/** A stand-in lintel egress instance: its router port answers its name. */
interface Egress {
  readonly name: string;
  readonly port: number;
  readonly admin: Admin;
  readonly seen: string[];
}

async function startEgress(name: string): Promise<Egress> {
  const seen: string[] = [];
  const server = await listenHttp((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { "content-type": "text/plain" }).end(name);
  });
  return { name, port: portOf(server), admin: await startAdmin(), seen };
}

/** A raw TCP listener recording the bytes of each connection (a stand-in lintel edge). */
interface RawListener {
  readonly port: number;
  readonly conns: { bytes: Buffer; socket: Socket }[];
}

async function startRaw(onData?: (bytes: Buffer, socket: Socket) => void): Promise<RawListener> {
  const conns: { bytes: Buffer; socket: Socket }[] = [];
  const server = createNetServer((socket) => {
    const c = { bytes: Buffer.alloc(0), socket };
    conns.push(c);
    socket.on("data", (d: Buffer) => {
      c.bytes = Buffer.concat([c.bytes, d]);
      onData?.(c.bytes, socket);
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => r());
      }),
  );
  return { port: portOf(server), conns };
}

const PROXY_V2_SIGNATURE = Buffer.from("0d0a0d0a000d0a515549540a", "hex");

interface ProxyV2 {
  readonly command: number;
  readonly family: number;
  readonly src: string;
  readonly srcPort: number;
  readonly dst: string;
  readonly dstPort: number;
  /** The bytes after the header: the client's own stream. */
  readonly rest: Buffer;
}

/** Parses a PROXY protocol v2 header (TCP over IPv4) at the start of `b`. */
function parseProxyV2(b: Buffer): ProxyV2 {
  if (b.length < 16 || !b.subarray(0, 12).equals(PROXY_V2_SIGNATURE))
    throw new Error(`no PROXY v2 signature: ${b.subarray(0, 16).toString("hex")}`);
  const len = b.readUInt16BE(14);
  const ip = (o: number) => [...b.subarray(o, o + 4)].join(".");
  return {
    command: b[12]!,
    family: b[13]!,
    src: ip(16),
    dst: ip(20),
    srcPort: b.readUInt16BE(24),
    dstPort: b.readUInt16BE(26),
    rest: b.subarray(16 + len),
  };
}

// ---------------------------------------------------------------------------------------

describe("deploy/haproxy configs", () => {
  it("ships the edge and egress configs", () => {
    expect(SHIPPED).toEqual(expect.arrayContaining(["edge-frontend.cfg", "egress-lb.cfg"]));
  });

  it.skipIf(SKIP).each(SHIPPED)("haproxy -c accepts %s with no warning", (file) => {
    const r = spawnSync(haproxyBin(), ["-c", "-f", join(CONFIG_DIR, file)], {
      encoding: "utf8",
      timeout: 10_000,
    });
    const output = `${r.stdout}${r.stderr}`;
    expect(r.error, output).toBeUndefined();
    expect(r.status, output).toBe(0);
    expect(output).toContain("Configuration file is valid");
    expect(output).not.toMatch(/\[(WARNING|ALERT)\]/);
  });

  it.skipIf(SKIP)(
    "egress-lb.cfg balances round-robin and follows /admin/ready",
    async () => {
      const shipped = readFileSync(join(CONFIG_DIR, "egress-lb.cfg"), "utf8");
      const servers = serverLines(shipped);
      expect(servers.map((s) => `${s.name} :${s.port}`)).toEqual([
        "egress1 :4140",
        "egress2 :4140",
        "egress3 :4140",
      ]);
      for (const s of servers) expect(s.options).toMatch(/\bcheck port 9990\b/);
      expect(shipped).toMatch(/^\s*balance roundrobin$/m);
      expect(shipped).toMatch(/^\s*option httpchk GET \/admin\/ready$/m);

      const a = await startEgress("egress1");
      const b = await startEgress("egress2");
      const byName: Record<string, Egress> = { egress1: a, egress2: b };
      const [lbPort, statsPort] = [await freePort(), await freePort()];
      const cfg = testVersion(shipped, { ":8888": lbPort, "127.0.0.1:8404": statsPort }, (s) => {
        const e = byName[s.name];
        return e && { port: e.port, checkPort: e.admin.port };
      });
      const hap = await startHaproxy(cfg, statsPort);
      const states = () => serverStates(statsPort);
      const why = async () =>
        `states ${JSON.stringify(await states().catch(() => ({})))}\n${hap.output()}`;

      // Both instances checked and UP.
      await eventually(
        async () => {
          const s = await states();
          return s["lintel_egress/egress1"] === "UP" && s["lintel_egress/egress2"] === "UP";
        },
        5000,
        () => "both egress instances UP",
      );
      // The checks went to each admin port, as GET /admin/ready; never to the router port.
      for (const e of [a, b]) {
        expect(e.admin.checks.length).toBeGreaterThan(0);
        expect(new Set(e.admin.checks)).toEqual(new Set(["GET /admin/ready"]));
      }

      const send = async (n: number) => {
        const who: string[] = [];
        for (let i = 0; i < n; i++) {
          const r = await get(lbPort, `/uuid?i=${i}`);
          expect(r.status, await why()).toBe(200);
          who.push(r.body);
        }
        return who;
      };
      const count = (who: string[], name: string) => who.filter((w) => w === name).length;

      // Round-robin: one connection per request, so the two alternate.
      const first = await send(10);
      expect(count(first, "egress1"), first.join(" ")).toBe(5);
      expect(count(first, "egress2"), first.join(" ")).toBe(5);
      expect(a.seen.every((s) => s.startsWith("GET /uuid"))).toBe(true);

      // egress1 starts draining: /admin/ready answers 503. Within a few checks HAProxy
      // stops sending to it.
      a.admin.ready = false;
      const flipped = Date.now();
      let last: string[] = [];
      await eventually(
        async () => {
          last = await send(4);
          return count(last, "egress2") === 4;
        },
        5000,
        () => `every request to go to egress2 (last: ${last.join(" ")})`,
      );
      const seenByA = a.seen.length;
      const after = await send(10);
      expect(count(after, "egress2"), after.join(" ")).toBe(10);
      expect(a.seen.length).toBe(seenByA);
      expect((await states())["lintel_egress/egress1"]).toMatch(/^DOWN/);
      expect(Date.now() - flipped).toBeLessThan(5000);

      // Ready again: egress1 comes back into the rotation.
      a.admin.ready = true;
      await eventually(
        async () => {
          last = await send(4);
          return count(last, "egress1") > 0 && count(last, "egress2") > 0;
        },
        5000,
        () => `egress1 back in the rotation (last: ${last.join(" ")})`,
      );
    },
    30_000,
  );

  it.skipIf(SKIP)(
    "edge-frontend.cfg passes TLS through with PROXY v2, refuses non-TLS, forwards :80",
    async () => {
      const shipped = readFileSync(join(CONFIG_DIR, "edge-frontend.cfg"), "utf8");
      const servers = serverLines(shipped);
      expect(servers.map((s) => `${s.backend}/${s.name} :${s.port}`)).toEqual([
        "lintel_edge_https/edge1 :443",
        "lintel_edge_https/edge2 :443",
        "lintel_edge_https/edge3 :443",
        "lintel_edge_http/edge1 :80",
        "lintel_edge_http/edge2 :80",
        "lintel_edge_http/edge3 :80",
      ]);
      for (const s of servers) expect(s.options).toMatch(/\bsend-proxy-v2\b.*\bcheck port 9990\b/);

      // One stand-in lintel edge: a TLS port (records, never answers), an HTTP port
      // (answers a redirect once the request is complete) and an admin server.
      const tlsSide = await startRaw();
      const httpSide = await startRaw((bytes, socket) => {
        if (bytes.includes("\r\n\r\n"))
          socket.end("HTTP/1.1 301 Moved Permanently\r\nLocation: https://user.example/\r\n\r\n");
      });
      const admin = await startAdmin();
      const [httpsPort, httpPort, statsPort] = [
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      const cfg = testVersion(
        shipped,
        { ":443": httpsPort, ":80": httpPort, "127.0.0.1:8404": statsPort },
        (s) => {
          if (s.name !== "edge1") return undefined;
          return { port: s.port === 443 ? tlsSide.port : httpSide.port, checkPort: admin.port };
        },
      );
      const hap = await startHaproxy(cfg, statsPort);
      await eventually(
        async () => {
          const s = await serverStates(statsPort);
          return s["lintel_edge_https/edge1"] === "UP" && s["lintel_edge_http/edge1"] === "UP";
        },
        5000,
        () => `edge1 UP in both backends\n${hap.output()}`,
      );
      expect(new Set(admin.checks)).toEqual(new Set(["GET /admin/ready"]));

      // A TLS client: lintel gets a PROXY v2 header, then the ClientHello as sent (SNI in
      // it), so TLS is terminated by lintel, not HAProxy.
      const client = tlsConnect({
        host: "127.0.0.1",
        port: httpsPort,
        servername: "user.example",
        rejectUnauthorized: false,
      });
      client.on("error", () => {});
      onCleanup(() => {
        client.destroy();
      });
      await new Promise<void>((r) => client.once("connect", () => r()));
      const clientPort = client.localPort;
      // The connection HAProxy opened for this client, once the ClientHello is in.
      const fromClient = () =>
        tlsSide.conns
          .map((c) => (c.bytes.length >= 28 ? parseProxyV2(c.bytes) : undefined))
          .find((x) => x?.srcPort === clientPort);
      await eventually(
        () => {
          const rest = fromClient()?.rest;
          return !!rest && rest.length >= 5 && rest.length >= 5 + rest.readUInt16BE(3);
        },
        5000,
        () =>
          `the PROXY header and the ClientHello at the lintel TLS port; got ${tlsSide.conns
            .map((c) => c.bytes.toString("hex"))
            .join(" / ")}\n${hap.output()}`,
      );
      const p = fromClient()!;
      expect(p.command).toBe(0x21); // version 2, PROXY
      expect(p.family).toBe(0x11); // TCP over IPv4
      expect(p.src).toBe("127.0.0.1");
      expect(p.srcPort).toBe(clientPort);
      expect(p.dstPort).toBe(httpsPort);
      expect(p.rest[0]).toBe(0x16); // TLS handshake record
      expect(p.rest[5]).toBe(0x01); // ClientHello
      expect(p.rest.includes("user.example")).toBe(true);
      client.destroy();

      // Plain HTTP on :443 is not TLS: HAProxy closes it, lintel never sees it.
      const before = tlsSide.conns.length;
      const refused = await rawExchange(httpsPort, "GET / HTTP/1.1\r\nHost: user.example\r\n\r\n");
      expect(refused.closed, "HAProxy closes a non-TLS connection on :443 at once").toBe(true);
      expect(refused.text).toBe("");
      await sleep(200);
      expect(tlsSide.conns.length).toBe(before);

      // :80: PROXY v2 header then the request as sent; lintel's answer comes back.
      const acme = "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: user.example\r\n\r\n";
      const answered = await rawExchange(httpPort, acme);
      expect(answered.text).toMatch(/^HTTP\/1\.1 301 /);
      const h = parseProxyV2(httpSide.conns[0]!.bytes);
      expect(h.src).toBe("127.0.0.1");
      expect(h.dstPort).toBe(httpPort);
      expect(h.rest.toString("latin1")).toBe(acme);
    },
    30_000,
  );
});

/** Writes `bytes` and reads until the peer closes (at most `timeoutMs`). */
function rawExchange(
  port: number,
  bytes: string,
  timeoutMs = 4000,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((res) => {
    const s = connect(port, "127.0.0.1", () => s.write(bytes));
    let text = "";
    let closed = false;
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
    });
    s.on("end", () => {
      closed = true;
    });
    s.on("error", () => {
      closed = true;
    });
    s.on("close", () => {
      clearTimeout(timer);
      res({ text, closed });
    });
  });
}
