// End-to-end test harness: real upstream servers and a real lintel on loopback, all on
// ephemeral ports, all closed after each test even when it fails.

import { spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import {
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatConfigError } from "../../gateway/config/load.js";
import { createLogger, type Logger } from "../../gateway/log.js";
import { Runtime } from "../../gateway/runtime.js";
import { loadLintelConfig } from "../../gateway/setup.js";

export const ENGINES = ["net", "uws"] as const;
export type EngineName = (typeof ENGINES)[number];

const cleanups: (() => Promise<void> | void)[] = [];

/** Registers something to close after the current test (call cleanup() in afterEach). */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** Closes `server` (and the connections it holds) after the current test. */
export function closeOnCleanup(server: {
  closeAllConnections(): void;
  close(cb: () => void): unknown;
}): void {
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
}

/**
 * A plugin module (write it as `crashy.mjs`, list it in `plugins:`) whose identifier
 * `test.crashy` has a bug: a request carrying `x-crash` throws out of its thread.
 */
export const CRASHY_PLUGIN = `export default (lintel) => lintel.definePlugin({
  category: "identifier",
  kind: "test.crashy",
  schema: lintel.schema.object({}),
  create(_config, ctx) {
    return {
      identify(req) {
        if (req.header("x-crash")) setImmediate(() => { throw new Error("plugin bug"); });
        return lintel.identified(ctx.dstPrefix.concat(lintel.naming.Path.of(req.header("host"))));
      },
    };
  },
});
`;

export async function cleanup(): Promise<void> {
  const fns = cleanups.splice(0).reverse();
  for (const fn of fns) {
    try {
      await fn();
    } catch {
      // keep cleaning up the rest
    }
  }
}

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

export interface Upstream {
  readonly port: number;
  readonly name: string;
  readonly seen: SeenRequest[];
  readonly server: Server;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/**
 * An upstream that writes `body` as fast as its socket takes it, and says how far it got
 * and whether it is waiting for room: a client that stops reading should stop it.
 */
export async function startFirehose(
  body: Buffer,
): Promise<{ up: Upstream; state: { sent: number; waiting: boolean } }> {
  const state = { sent: 0, waiting: false };
  const up = await startUpstream(
    "firehose",
    (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const step = () => {
        state.waiting = false;
        while (state.sent < body.length) {
          const piece = body.subarray(state.sent, state.sent + 64 * 1024);
          state.sent += piece.length;
          if (!res.write(piece)) {
            state.waiting = true;
            res.once("drain", step);
            return;
          }
        }
        res.end();
      };
      step();
    },
    { streaming: true },
  );
  return { up, state };
}

/** Answers 200 with a small JSON naming the upstream and echoing what it received. */
export function echo(name: string): UpstreamHandler {
  return (req, res) => {
    const body = JSON.stringify({
      upstream: name,
      method: req.method,
      url: req.url,
      headers: req.headers,
    });
    res.writeHead(200, { "content-type": "application/json", "x-upstream": name });
    res.end(body);
  };
}

/** A raw TCP upstream on loopback for misbehaving upstreams: `onSocket` decides what each connection gets. */
export async function startTcpUpstream(
  onSocket: (s: Socket) => void,
): Promise<{ port: number; server: NetServer }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const a = server.address();
  return { port: typeof a === "object" && a ? a.port : 0, server };
}

/**
 * A real HTTP server on 127.0.0.1:0. With `streaming`, the handler gets the request
 * before its body is read (for large-body tests); otherwise the body is collected first.
 */
export async function startUpstream(
  name: string,
  handler: UpstreamHandler = echo(name),
  opts: { streaming?: boolean; maxHeaderSize?: number } = {},
): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const server = createServer({ maxHeaderSize: opts.maxHeaderSize }, (req, res) => {
    if (opts.streaming) {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.alloc(0),
      });
      handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  closeOnCleanup(server);
  const a = server.address();
  return { port: typeof a === "object" && a ? a.port : 0, name, seen, server };
}

export interface Lintel {
  readonly runtime: Runtime;
  readonly dir: string;
  /** The port of router `label`'s server number `index` (default the first). */
  port(label?: string, index?: number): number;
  readonly adminPort: number;
  readonly logs: string[];
}

/** A temporary directory removed after the test. */
export function tempDir(prefix = "lintel-e2e-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `files` (relative path → content) under `dir`. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const f = join(dir, rel);
    mkdirSync(join(f, ".."), { recursive: true });
    writeFileSync(f, text);
  }
}

/**
 * Starts lintel in this process on `yaml` (written to a temp dir with `files` beside it,
 * and an empty disco/ directory for io.l5d.fs).
 * Use port 0 for servers and admin; the harness finds the bound ports.
 */
export async function startLintel(
  yaml: string,
  files: Record<string, string> = {},
  dir = tempDir(),
): Promise<Lintel> {
  mkdirSync(join(dir, "disco"), { recursive: true });
  // uws servers run on the control thread unless a test asks for workers.
  const text = /^workers:/m.test(yaml) ? yaml : `workers: 0\n${yaml}`;
  writeFiles(dir, { ...files, "lintel.yaml": text });
  const loaded = await loadLintelConfig(join(dir, "lintel.yaml"));
  if (!loaded.ok)
    throw new Error(`test config is invalid:\n${loaded.errors.map(formatConfigError).join("\n")}`);
  const logs: string[] = [];
  const log: Logger = createLogger({ level: "debug", sink: (line) => logs.push(line) });
  const runtime = await Runtime.start(loaded.config, {
    log,
    source: { file: loaded.file, text: loaded.text },
  });
  onCleanup(() => runtime.shutdown(0));
  return {
    runtime,
    dir,
    logs,
    adminPort: runtime.admin!.port,
    port(label?: string, index = 0) {
      const l = runtime.listeners.find(
        (x) => (label === undefined || x.router === label) && x.server === index,
      );
      if (!l) throw new Error(`no listener for router ${label ?? "(first)"} server ${index}`);
      return l.listener.port;
    },
  };
}

/**
 * What `lintel check` says of a config that must not load, its errors one per line; fails
 * the test when the config loads.
 */
export async function configErrors(yaml: string): Promise<string> {
  const dir = tempDir();
  writeFiles(dir, { "lintel.yaml": yaml });
  const r = await loadLintelConfig(join(dir, "lintel.yaml"));
  if (r.ok) throw new Error(`the config loaded, but an error was expected:\n${yaml}`);
  return r.errors.map(formatConfigError).join("\n");
}

/** lintel with one router sending every name to the upstream on `upPort`, through one server. */
export function startLintelTo(upPort: number): Promise<Lintel> {
  return startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${upPort}
  servers:
  - {ip: 127.0.0.1, port: 0}
`);
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingMessage["headers"];
  readonly rawHeaders: string[];
  readonly trailers: IncomingMessage["trailers"];
  readonly body: Buffer;
  readonly text: string;
}

export interface Call {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
}

/** One HTTP/1.1 request on a fresh connection. */
export function call(port: number, c: Call = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: c.method ?? "GET",
        path: c.path ?? "/",
        headers: c.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            trailers: res.trailers,
            body,
            text: body.toString("utf8"),
          });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(c.timeoutMs ?? 10_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(c.body);
  });
}

/** What came back on a raw connection (latin1), and whether lintel closed it. */
/**
 * A config with the io.l5d.fs namer (names in `disco/`) and one router, `edge`, with one
 * server on an ephemeral port: `server` is added inside its flow mapping, `extra` (router
 * keys, indented) and `plugins` (a top-level line) as given.
 */
export function fsEdgeConfig(o: {
  workers: number;
  engine?: EngineName;
  dtab?: string;
  server?: string;
  extra?: string;
  plugins?: string;
}): string {
  return `
workers: ${o.workers}
${o.plugins ?? ""}
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: edge
  dtab: ${o.dtab ?? "/svc => /#/io.l5d.fs"}
${o.extra ?? ""}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${o.engine ?? "uws"}${o.server ?? ""}}
`;
}

/** `n` requests at once, each on its own connection (so the kernel spreads them over workers). */
export function burst(port: number, n: number, host = "users"): Promise<Reply[]> {
  return Promise.all(Array.from({ length: n }, () => call(port, { headers: { host } })));
}

/** The admin server's /admin/metrics.json (Linkerd 1's flat names). */
export async function metricsJson(l: Lintel): Promise<Record<string, number>> {
  const r = await call(l.adminPort, { path: "/admin/metrics.json" });
  if (r.status !== 200 || r.headers["content-type"] !== "application/json")
    throw new Error(`/admin/metrics.json answered ${r.status} ${r.headers["content-type"]}`);
  return JSON.parse(r.text) as Record<string, number>;
}

export interface RawExchange {
  readonly text: string;
  readonly closed: boolean;
}

/**
 * Writes raw bytes on a fresh connection and collects what comes back: until lintel
 * closes the connection, or (with `settleMs`) that long after a response head arrived with
 * nothing more coming, so stray bytes after a response are caught; at most `timeoutMs`.
 */
export function raw(
  port: number,
  bytes: string | Buffer,
  timeoutMs = 2000,
  settleMs?: number,
): Promise<RawExchange> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => s.write(bytes));
    let text = "";
    let closed = false;
    let settle: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (settleMs !== undefined && text.includes("\r\n\r\n")) {
        clearTimeout(settle);
        settle = setTimeout(() => s.destroy(), settleMs);
      }
    });
    s.on("end", () => {
      closed = true;
      s.destroy();
    });
    s.on("error", () => {
      closed = true;
    });
    s.on("close", () => {
      clearTimeout(timer);
      clearTimeout(settle);
      resolve({ text, closed });
    });
  });
}

/** Waits for `check` to hold, polling; fails after `timeoutMs`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A free TCP port on loopback (bound and released), for configs that need a fixed port. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A free port below Linux's ephemeral range (32768 and up), for a test that must name its
 * port before lintel listens (Pebble validates on fixed ports): a port from freePort()
 * may be taken meanwhile by another test's listener on port 0, one from here may not.
 */
export async function freeFixedPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/**
 * A binary from a Debian package that some tests need (haproxy, openssl). Returns its path,
 * or undefined after printing why the tests that need it are skipped; under CI=true a
 * missing binary throws instead, so CI cannot pass by skipping.
 */
export function requireBinary(
  name: string,
  debianPackage: string,
  suite: string,
): string | undefined {
  for (const d of [
    ...(process.env.PATH ?? "").split(":"),
    "/usr/sbin",
    "/usr/local/sbin",
    "/sbin",
  ]) {
    if (!d) continue;
    const f = join(d, name);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  const why = `${suite} needs \`${name}\` (Debian package ${debianPackage}: apt-get install -y ${debianPackage})`;
  if (process.env.CI === "true") throw new Error(`${why}; CI=true requires it`);
  console.warn(`SKIPPED: ${why}`);
  return undefined;
}

/**
 * Runs HAProxy (the binary at `haproxy`) on the config file `cfg` in the foreground,
 * stopped after the current test; resolves once it accepts connections on `port`.
 */
export async function runHaproxy(haproxy: string, cfg: string, port: number): Promise<void> {
  const child = spawn(haproxy, ["-f", cfg, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  onCleanup(
    () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once("exit", () => r());
        child.kill("SIGKILL");
      }),
  );
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        if (child.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
        const s = connect(port, "127.0.0.1");
        s.once("connect", () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(false));
      }),
    5000,
    "haproxy to listen",
  );
}
