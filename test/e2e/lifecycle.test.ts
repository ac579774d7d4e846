// The life of requests and of lintel itself, on both engines: a client that goes away
// aborts the upstream request; an upstream that dies mid-response truncates the client's
// response instead of leaving it hanging; SIGTERM and POST /admin/shutdown drain the
// requests in flight, refuse new ones and exit 0; a config that is invalid or a port that
// is taken makes `lintel run` exit 1 without leaving anything half started.

import { request, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../gateway/log.js";
import { Runtime } from "../../gateway/runtime.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import {
  adminStatus,
  type ChildLintel,
  isListening,
  runLintel,
  sleep,
  startChildLintel,
  within,
} from "./child.js";
import {
  call,
  cleanup,
  ENGINES,
  type EngineName,
  eventually,
  freePort,
  onCleanup,
  startLintel,
  startUpstream,
  tempDir,
  writeFiles,
} from "./harness.js";

afterEach(cleanup);

function config(engine: EngineName, upstreamPort: number, extra = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: r
  dtab: /svc => /$/inet/127.0.0.1/${upstreamPort}
  servers: [{ip: 127.0.0.1, port: 0, engine: ${engine}${extra}}]
`;
}

function childConfig(engine: EngineName, upstreamPort: number, graceMs: number) {
  return (port: number, adminPort: number) => `
admin: {ip: 127.0.0.1, port: ${adminPort}, shutdownGraceMs: ${graceMs}}
routers:
- protocol: http
  label: r
  dtab: /svc => /$/inet/127.0.0.1/${upstreamPort}
  servers: [{ip: 127.0.0.1, port: ${port}, engine: ${engine}}]
`;
}

interface Outcome {
  readonly kind: "end" | "error" | "timeout";
  readonly status: number;
  readonly bytes: number;
  readonly body: string;
  readonly error?: string;
  /** Milliseconds from sending to the outcome. */
  readonly ms: number;
}

/**
 * One request on a fresh connection; resolves (never rejects) with how it ended:
 * the response completed, or failed, or nothing happened for `timeoutMs`.
 */
function attempt(
  port: number,
  opts: { path?: string; method?: string; body?: Buffer; timeoutMs?: number } = {},
): { outcome: Promise<Outcome>; req: ReturnType<typeof request> } {
  const t0 = performance.now();
  let status = 0;
  let bytes = 0;
  const chunks: Buffer[] = [];
  const req = request({
    host: "127.0.0.1",
    port,
    method: opts.method ?? "GET",
    path: opts.path ?? "/",
    headers: { host: "svc" },
    agent: false,
  });
  const outcome = new Promise<Outcome>((resolve) => {
    let done = false;
    const finish = (kind: Outcome["kind"], error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const body = Buffer.concat(chunks).toString("latin1");
      resolve({ kind, status, bytes, body, error, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => {
      finish("timeout");
      req.destroy();
    }, opts.timeoutMs ?? 5000);
    req.on("error", (e) => finish("error", (e as NodeJS.ErrnoException).code ?? e.message));
    req.on("response", (res) => {
      status = res.statusCode ?? 0;
      res.on("data", (d: Buffer) => {
        bytes += d.length;
        if (chunks.length < 64) chunks.push(d);
      });
      res.on("end", () => finish("end"));
      res.on("aborted", () => finish("error", "aborted"));
      res.on("error", (e) => finish("error", (e as NodeJS.ErrnoException).code ?? e.message));
    });
  });
  req.end(opts.body);
  return { outcome, req };
}

/** Records when the upstream's response closes and whether it had finished by then. */
function watchClose(res: ServerResponse, into: { closed?: { finished: boolean; at: number } }) {
  res.on("close", () => {
    into.closed = { finished: res.writableFinished, at: performance.now() };
  });
}

describe.each(ENGINES)("request lifecycle on the %s engine", (engine) => {
  it("aborts the upstream request when the client goes away before the answer", async () => {
    const state: { closed?: { finished: boolean; at: number } } = {};
    const up = await startUpstream("hold", (_req, res) => watchClose(res, state), {
      streaming: true,
    });
    const l = await startLintel(config(engine, up.port));
    const { outcome, req } = attempt(l.port(), { path: "/held" });
    await eventually(() => up.seen.length === 1, 3000, "the upstream to get the request");
    const t0 = performance.now();
    req.destroy();
    await outcome;
    await eventually(() => state.closed !== undefined, 2000, "the upstream request to close");
    expect(state.closed!.finished).toBe(false);
    expect(state.closed!.at - t0).toBeLessThan(2000);
    await eventually(() => l.runtime.routers[0]!.inflight === 0, 2000, "no request in flight");
  });

  it("aborts the upstream request when the client goes away while sending the body", async () => {
    const state: { closed?: { finished: boolean; at: number }; aborted?: boolean } = {};
    let received = 0;
    const up = await startUpstream(
      "hold",
      (req, res) => {
        watchClose(res, state);
        req.on("data", (c: Buffer) => {
          received += c.length;
        });
        req.on("aborted", () => {
          state.aborted = true;
        });
        req.on("error", () => {});
      },
      { streaming: true },
    );
    const l = await startLintel(config(engine, up.port));
    const req = request({
      host: "127.0.0.1",
      port: l.port(),
      method: "POST",
      path: "/upload",
      headers: { host: "svc", "content-length": String(1024 * 1024) },
      agent: false,
    });
    req.on("error", () => {});
    req.write(Buffer.alloc(64 * 1024, 1));
    await eventually(() => received === 64 * 1024, 3000, "the first 64 KiB upstream");
    const t0 = performance.now();
    req.destroy();
    await eventually(() => state.closed !== undefined, 2000, "the upstream request to close");
    expect(state.closed!.at - t0).toBeLessThan(2000);
    expect(state.closed!.finished).toBe(false);
    expect(received).toBeLessThan(1024 * 1024);
    await eventually(() => l.runtime.routers[0]!.inflight === 0, 2000, "no request in flight");
  });

  for (const framing of ["content-length", "chunked"] as const) {
    it(`truncates the client's response (${framing}) when the upstream dies mid-response`, async () => {
      const full = 1024 * 1024;
      const up = await startUpstream(
        "dies",
        (_req, res) => {
          res.writeHead(
            200,
            framing === "content-length" ? { "content-length": full } : { "x-framing": "chunked" },
          );
          res.write(Buffer.alloc(64 * 1024, 0x61));
          setTimeout(() => res.socket?.destroy(), 100);
        },
        { streaming: true },
      );
      const l = await startLintel(config(engine, up.port));
      const r = await attempt(l.port(), { timeoutMs: 5000 }).outcome;
      expect(r.status).toBe(200);
      // Not a hang and not a clean end: the client can tell the body is incomplete.
      expect(r.kind, `${r.kind} ${r.error ?? ""} after ${r.bytes} bytes`).toBe("error");
      expect(r.ms).toBeLessThan(2000);
      expect(r.bytes).toBeLessThan(full);
      await eventually(() => l.runtime.routers[0]!.inflight === 0, 2000, "no request in flight");
    });
  }

  it("with drainDelayMs keeps serving while not ready, then stops accepting", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(engine, up.port).replace(
        "admin: {ip: 127.0.0.1, port: 0}",
        "admin: {ip: 127.0.0.1, port: 0, drainDelayMs: 600}",
      ),
    );
    const port = l.port();
    const stopping = l.runtime.shutdown(5000);
    await new Promise((r) => setTimeout(r, 150));
    expect((await call(l.adminPort, { path: "/admin/ready" })).status).toBe(503);
    expect((await call(port, { headers: { host: "x" } })).status).toBe(200);
    await stopping;
    await expect(call(port, { headers: { host: "x" }, timeoutMs: 1000 })).rejects.toThrow();
  });

  it("answers 502 when the upstream closes the connection before answering", async () => {
    const up = await startUpstream("dies", (req) => req.socket.destroy(), { streaming: true });
    const l = await startLintel(config(engine, up.port));
    const r = await attempt(l.port(), { timeoutMs: 5000 }).outcome;
    expect(r.kind).toBe("end");
    expect(r.status).toBe(502);
    expect(r.ms).toBeLessThan(2000);
  });
});

/** Sends SIGTERM to the child; returns performance.now() at the signal. */
function sigterm(l: ChildLintel): number {
  process.kill(l.pid, "SIGTERM");
  return performance.now();
}

describe.each(ENGINES)("lintel run on the %s engine", (engine) => {
  it("on SIGTERM finishes the request in flight, refuses new ones and exits 0", async () => {
    const body = Buffer.alloc(100 * 1024, 0x62);
    const up = await startUpstream("slow", (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.end(body);
      }, 1500);
    });
    const l = await startChildLintel(childConfig(engine, up.port, 5000));
    const inflight = attempt(l.port, { path: "/inflight", timeoutMs: 8000 }).outcome;
    await eventually(() => up.seen.length === 1, 3000, "the upstream to get the request");
    const signalled = sigterm(l);
    await sleep(300);
    const late = await attempt(l.port, { path: "/late", timeoutMs: 3000 }).outcome;
    // Refused (or answered with an error), but never routed upstream.
    expect(late.kind === "error" || late.status >= 500, JSON.stringify(late)).toBe(true);
    // Draining: the admin server still answers, and says not ready.
    expect(await adminStatus(l.adminPort, "/admin/ready")).toBe(503);
    const r = await inflight;
    expect(r.kind).toBe("end");
    expect(r.status).toBe(200);
    expect(r.bytes).toBe(body.length);
    expect(r.body).toBe(body.toString("latin1"));
    expect(await within(l.exited, 7000)).toBe(true);
    const exit = l.exit()!;
    expect(exit).toMatchObject({ code: 0, signal: null });
    // It waited for the request in flight, and no longer than the grace period.
    expect(exit.at - signalled).toBeGreaterThan(1000);
    expect(exit.at - signalled).toBeLessThan(5000);
    expect(up.seen.map((s) => s.url)).toEqual(["/inflight"]);
    expect(l.output()).toMatch(/shutting down.*reason=SIGTERM/);
    expect(await isListening(l.port)).toBe(false);
    expect(await isListening(l.adminPort)).toBe(false);
  }, 30_000);

  it("cuts a request still in flight when the grace period is over, and exits 0", async () => {
    const state: { closed?: { finished: boolean; at: number } } = {};
    const up = await startUpstream("never", (_req, res) => watchClose(res, state));
    const l = await startChildLintel(childConfig(engine, up.port, 500));
    const inflight = attempt(l.port, { path: "/never", timeoutMs: 8000 }).outcome;
    await eventually(() => up.seen.length === 1, 3000, "the upstream to get the request");
    const signalled = sigterm(l);
    expect(await within(l.exited, 5000)).toBe(true);
    const exit = l.exit()!;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - signalled).toBeGreaterThan(400);
    expect(exit.at - signalled).toBeLessThan(3000);
    const r = await inflight;
    expect(r.kind === "error" || r.status >= 500, JSON.stringify(r)).toBe(true);
    expect(r.ms).toBeLessThan(5000);
    await eventually(() => state.closed !== undefined, 2000, "the upstream request to close");
    expect(state.closed!.finished).toBe(false);
    expect(l.output()).toMatch(/shutting down/);
    expect(l.output()).toMatch(/grace period over/);
  }, 30_000);

  it("shuts down gracefully on POST /admin/shutdown and exits 0", async () => {
    const up = await startUpstream("up");
    const l = await startChildLintel(childConfig(engine, up.port, 5000));
    expect((await call(l.port, { headers: { host: "x" } })).status).toBe(200);
    const t0 = performance.now();
    expect(await adminStatus(l.adminPort, "/admin/shutdown", "POST")).toBe(202);
    expect(await within(l.exited, 5000)).toBe(true);
    const exit = l.exit()!;
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit.at - t0).toBeLessThan(3000);
    expect(l.output()).toMatch(/shutting down.*reason="POST \/admin\/shutdown"/);
    expect(await isListening(l.port)).toBe(false);
  }, 30_000);

  it("exits 1 naming the address when a router port is taken, leaving nothing listening", async () => {
    const taken = await occupy();
    const first = await freePort();
    const admin = await freePort();
    const dir = tempDir("lintel-child-");
    writeFiles(dir, {
      "lintel.yaml": `
admin: {ip: 127.0.0.1, port: ${admin}}
routers:
- protocol: http
  label: r
  dtab: /svc => /$/inet/127.0.0.1/1
  servers:
  - {ip: 127.0.0.1, port: ${first}, engine: ${engine}}
  - {ip: 127.0.0.1, port: ${taken.port}, engine: ${engine}}
`,
    });
    const run = runLintel(["run", join(dir, "lintel.yaml")], dir);
    expect(await within(run.exited, 10_000)).toBe(true);
    expect(run.exit()).toMatchObject({ code: 1, signal: null });
    expect(run.output()).toContain(`127.0.0.1:${taken.port}`);
    expect(run.output()).toContain("routers[0].servers[1]");
    expect(run.output()).not.toContain("admin server listening");
    expect(await isListening(first)).toBe(false);
    expect(await isListening(admin)).toBe(false);
  }, 20_000);

  it("in process, a taken port stops what already started: its ports are free again", async () => {
    const taken = await occupy();
    const first = await freePort();
    const admin = await freePort();
    const dir = tempDir();
    writeFiles(dir, {
      "lintel.yaml": `
admin: {ip: 127.0.0.1, port: ${admin}}
routers:
- protocol: http
  label: a
  dtab: /svc => /$/inet/127.0.0.1/1
  servers: [{ip: 127.0.0.1, port: ${first}, engine: ${engine}}]
- protocol: http
  label: b
  dtab: /svc => /$/inet/127.0.0.1/1
  servers: [{ip: 127.0.0.1, port: ${taken.port}, engine: ${engine}}]
`,
    });
    const loaded = await loadLintelConfig(join(dir, "lintel.yaml"));
    if (!loaded.ok) throw new Error("test config is invalid");
    const started = Runtime.start(loaded.config, {
      log: createLogger({ sink: () => {} }),
      source: { file: loaded.file, text: loaded.text },
    });
    started.then((rt) => onCleanup(() => rt.shutdown(0))).catch(() => {});
    await expect(started).rejects.toThrow(`cannot listen on 127.0.0.1:${taken.port}`);
    expect(await isListening(first)).toBe(false);
    expect(await isListening(admin)).toBe(false);
    // Free, not merely refusing: the ports can be bound again.
    await occupy(first);
  });

  it("in process, a taken admin port stops the routers already listening", async () => {
    const taken = await occupy();
    const first = await freePort();
    const dir = tempDir();
    writeFiles(dir, {
      "lintel.yaml": `
admin: {ip: 127.0.0.1, port: ${taken.port}}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1
  servers: [{ip: 127.0.0.1, port: ${first}, engine: ${engine}}]
`,
    });
    const loaded = await loadLintelConfig(join(dir, "lintel.yaml"));
    if (!loaded.ok) throw new Error("test config is invalid");
    const started = Runtime.start(loaded.config, {
      log: createLogger({ sink: () => {} }),
      source: { file: loaded.file, text: loaded.text },
    });
    started.then((rt) => onCleanup(() => rt.shutdown(0))).catch(() => {});
    await expect(started).rejects.toThrow(
      `the admin server cannot listen on 127.0.0.1:${taken.port}`,
    );
    expect(await isListening(first)).toBe(false);
    await occupy(first);
  });
});

describe("lintel run on an invalid config", () => {
  it("exits 1 and prints every error as lintel check does", async () => {
    const admin = await freePort();
    const dir = tempDir("lintel-child-");
    writeFiles(dir, {
      "bad.yaml": `admin: {ip: 127.0.0.1, port: ${admin}}
routers:
  - protocol: http
    servers:
      - port: abc
      - port: 70000
`,
    });
    const file = join(dir, "bad.yaml");
    const run = runLintel(["run", file], dir);
    expect(await within(run.exited, 10_000)).toBe(true);
    expect(run.exit()).toMatchObject({ code: 1, signal: null });
    expect(run.stdout()).toContain(`${file}: invalid config`);
    expect(run.stdout()).toContain(
      '  routers[0].servers[0].port: expected a port number, got "abc" (line 5)',
    );
    expect(run.stdout()).toContain(
      "  routers[0].servers[1].port: expected a port number, got 70000 (line 6)",
    );
    expect(await isListening(admin)).toBe(false);
  }, 20_000);
});

/** Listens on 127.0.0.1:`port` (a free one by default) until the test ends. */
async function occupy(port = 0): Promise<{ port: number; server: NetServer }> {
  const server = createNetServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  const a = server.address();
  return { port: typeof a === "object" && a ? a.port : port, server };
}
