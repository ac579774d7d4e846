// Limits an edge proxy enforces on what clients send: request head and request line
// size, header count, slow and idle connections, request body size and concurrency.
// Each must end in a clean answer (or, for slow/idle clients, a bounded close), never a
// hang, and what is refused must not reach the upstream.
//
// Observed behaviour (lintel 4fcc031, uWebSockets.js 20.30, Node 20) is noted next to
// each assertion as "net:" / "uws:" ("node:" records Node's own server, the retired node
// engine, whose place net took); `// BUG: <engine>:` marks an engine that does not
// behave as the test expects (the test fails on that engine until it is fixed). "left open" = no close from lintel within the watch window.

import type { ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  call,
  cleanup,
  ENGINES,
  type EngineName,
  eventually,
  onCleanup,
  type RawExchange,
  raw,
  startLintel,
  startUpstream,
  type Upstream,
  type UpstreamHandler,
} from "./harness.js";

afterEach(cleanup);

/** How long a connection is watched for an answer and a close. */
const WATCH_MS = 2000;
/** After a complete response head, how long to wait for more bytes or the close. */
const SETTLE_MS = 300;

/**
 * A client trickling its request head must be cut off within this long of connecting.
 * (It has to be well under 10 s for the test to stay short; whatever header timeout the
 * engines get, it must fit in here.)
 */
const SLOWLORIS_BOUND_MS = 8000;
/**
 * uws cuts a slow client off with its own fixed idle timeout: 10 s with 4 s granularity
 * (docs/engines.md), not configurable; the net engine uses `headersTimeoutMs` (3 s here).
 */
const UWS_SLOWLORIS_BOUND_MS = 14_000;
/** An idle keep-alive connection must be closed within this long after its response. */
const IDLE_BOUND_MS = 15_000;

/** Writes `bytes` on a fresh connection and collects the answer (see raw()). */
const send = (port: number, bytes: string) => raw(port, bytes, WATCH_MS, SETTLE_MS);

/** The first response's status line cut to `HTTP/1.1 NNN`, or "(no response)". */
function status(text: string): string {
  return /^HTTP\/\d\.\d \d{3}/.exec(text)?.[0] ?? (text === "" ? "(no response)" : "(junk)");
}

const outcome = (e: RawExchange) => ({ status: status(e.text), closed: e.closed });

function config(engine: EngineName, upPort: number, router = "", server = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: r
${router}
  dtab: /svc => /$/inet/127.0.0.1/${upPort}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}${server}}
`;
}

async function gateway(
  engine: EngineName,
  opts: { router?: string; server?: string; handler?: UpstreamHandler } = {},
): Promise<{ up: Upstream; port: number }> {
  const up = await startUpstream("up", opts.handler);
  const l = await startLintel(config(engine, up.port, opts.router, opts.server));
  return { up, port: l.port() };
}

/** Lets a request lintel forwarded at the last moment arrive before `up.seen` is read. */
const quiet = () => new Promise((r) => setTimeout(r, 100));

/** `n` header lines: Host and n - 1 others. */
function headerLines(n: number): string {
  let h = "Host: up\r\n";
  for (let i = 1; i < n; i++) h += `X-H${i}: v\r\n`;
  return h;
}

describe.each(ENGINES)("request limits on the %s engine", (engine) => {
  it("a request head over maxHeadersKB (2 KB) gets 431", async () => {
    const { up, port } = await gateway(engine, { router: "  maxHeadersKB: 2" });
    const r = await send(
      port,
      `GET /big HTTP/1.1\r\nHost: up\r\nX-Big: ${"a".repeat(3072)}\r\n\r\n`,
    );
    await quiet();
    // BUG: node: 200, forwarded.
    // BUG: uws: 200, forwarded.
    // Both engines get one byte budget of (maxHeadersKB + maxInitialLineKB) KB = 6 KB here
    // (runtime.ts maxHeaderBytes), so headers may use the request line's unused 4 KB:
    // maxHeadersKB on its own is not enforced.
    expect(outcome(r)).toEqual({ status: "HTTP/1.1 431", closed: true });
    expect(up.seen).toHaveLength(0);
  });

  it("a request head over both limits combined gets 431, and the connection is closed", async () => {
    const { up, port } = await gateway(engine, { router: "  maxHeadersKB: 2" });
    const big = `X-Big: ${"a".repeat(10_000)}\r\n`;
    const [plain, closing] = await Promise.all([
      send(port, `GET /big HTTP/1.1\r\nHost: up\r\n${big}\r\n`),
      send(port, `GET /big HTTP/1.1\r\nHost: up\r\n${big}Connection: close\r\n\r\n`),
    ]);
    await quiet();
    // net: 431 and close, both (Node's parser).
    // BUG: uws: 431 (lintel's check after uws parsed the head) but the connection is LEFT
    // OPEN, even when the client sent `Connection: close` (RFC 9112 §9.6 requires the
    // close then): the 431 path in uws-engine.ts finishes the response with write()
    // (tryEnd), so closeAfterResponse() never takes effect.
    expect({ plain: outcome(plain), closing: outcome(closing) }).toEqual({
      plain: { status: "HTTP/1.1 431", closed: true },
      closing: { status: "HTTP/1.1 431", closed: true },
    });
    expect(up.seen).toHaveLength(0);
  });

  it("a request line over maxInitialLineKB (1 KB) gets 414", async () => {
    const { up, port } = await gateway(engine, { router: "  maxInitialLineKB: 1" });
    const [over, farOver] = await Promise.all([
      send(port, `GET /${"p".repeat(2048)} HTTP/1.1\r\nHost: up\r\n\r\n`),
      // Over maxInitialLineKB + maxHeadersKB (1 + 8 KB) as well.
      send(port, `GET /${"p".repeat(10_000)} HTTP/1.1\r\nHost: up\r\n\r\n`),
    ]);
    await quiet();
    // RFC 9112 §3: a server that receives a request-target longer than it wishes to parse
    // MUST answer 414.
    // node and uws: 414 and close for both (lintel checks the target on its own).
    expect({ over: outcome(over), farOver: outcome(farOver) }).toEqual({
      over: { status: "HTTP/1.1 414", closed: true },
      farOver: { status: "HTTP/1.1 414", closed: true },
    });
    expect(up.seen).toHaveLength(0);
  });

  it("a request with 40 header lines is served (control for the header-count test)", async () => {
    const { up, port } = await gateway(engine);
    const r = await send(port, `GET /h40 HTTP/1.1\r\n${headerLines(40)}Connection: close\r\n\r\n`);
    await quiet();
    // net: 200. uws: 200 (uws serves up to 48 header lines; 49 and more get no response
    // and the connection is left open — the documented "~50 headers" limit).
    expect(outcome(r)).toEqual({ status: "HTTP/1.1 200", closed: true });
    expect(up.seen).toHaveLength(1);
  });

  it("a request with more than 100 header lines gets 431", async () => {
    const { up, port } = await gateway(engine);
    const r = await send(port, `GET /h101 HTTP/1.1\r\n${headerLines(101)}\r\n`);
    await quiet();
    // net: 431 and close (lintel's maxHeaderCount, 100).
    // uws: no response (its own 48-header-line limit, docs/engines.md); nothing forwarded.
    if (engine === "uws") expect(outcome(r).status).toBe("(no response)");
    else expect(outcome(r)).toEqual({ status: "HTTP/1.1 431", closed: true });
    expect(up.seen).toHaveLength(0);
  });

  it(
    "a slow-loris client (one byte of the head every 500 ms) is cut off in bounded time",
    async () => {
      const bound = engine === "uws" ? UWS_SLOWLORIS_BOUND_MS : SLOWLORIS_BOUND_MS;
      const { up, port } = await gateway(engine, {
        server: engine === "uws" ? "" : ", headersTimeoutMs: 3000",
      });
      // Longer than the test: the head never completes.
      const head = `GET /slow HTTP/1.1\r\nHost: up\r\nX-Pad: ${"a".repeat(100)}\r\n\r\n`;
      const t0 = performance.now();
      const r = await new Promise<{ text: string; closed: boolean; ms: number }>((resolve) => {
        const s: Socket = connect(port, "127.0.0.1");
        let i = 0;
        let text = "";
        let closed = false;
        const tick = setInterval(() => {
          if (i < head.length && s.writable) s.write(head[i++]!);
        }, 500);
        const timer = setTimeout(() => s.destroy(), bound);
        s.on("data", (d: Buffer) => {
          text += d.toString("latin1");
        });
        s.on("end", () => {
          closed = true;
          s.destroy();
        });
        s.on("error", () => {
          closed = true;
        });
        s.on("close", () => {
          clearInterval(tick);
          clearTimeout(timer);
          resolve({ text, closed, ms: Math.round(performance.now() - t0) });
        });
      });
      // net: 408, then close, about headersTimeoutMs (checked every second) after connecting.
      // uws: closed without a response 8–12 s after connecting (its idle timeout is not
      // reset by the trickled bytes); lintel has no hook into a uws connection before a full head.
      if (engine !== "uws") expect(status(r.text)).toBe("HTTP/1.1 408");
      expect({ closed: r.closed, withinBound: r.ms <= bound }).toEqual({
        closed: true,
        withinBound: true,
      });
      expect(up.seen).toHaveLength(0);
    },
    UWS_SLOWLORIS_BOUND_MS + 1500,
  );

  it(
    "an idle keep-alive connection is closed by lintel in bounded time",
    async () => {
      const { port } = await gateway(engine);
      const r = await new Promise<{ status: string; closed: boolean; idleMs: number }>(
        (resolve) => {
          const s = connect(port, "127.0.0.1", () =>
            s.write("GET /idle HTTP/1.1\r\nHost: up\r\n\r\n"),
          );
          let text = "";
          let answeredAt = 0;
          let closed = false;
          const timer = setTimeout(() => s.destroy(), IDLE_BOUND_MS);
          s.on("data", (d: Buffer) => {
            text += d.toString("latin1");
            if (answeredAt === 0) answeredAt = performance.now();
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
            resolve({
              status: status(text),
              closed,
              idleMs: answeredAt === 0 ? -1 : Math.round(performance.now() - answeredAt),
            });
          });
        },
      );
      // net: closed ~11.0 s after the response (keepAliveTimeout 10 s).
      // uws: closed 8.5–12 s after the response (10 s idle timeout, 4 s granularity).
      // Kept open at least a second (keep-alive works), closed within 15 s.
      expect(r.status).toBe("HTTP/1.1 200");
      expect(r.closed).toBe(true);
      expect(r.idleMs).toBeGreaterThan(1000);
      expect(r.idleMs).toBeLessThanOrEqual(IDLE_BOUND_MS);
    },
    IDLE_BOUND_MS + 1000,
  );

  it("a request body over maxRequestKB (1 KB) gets 413 and is not forwarded", async () => {
    const { up, port } = await gateway(engine, { router: "  maxRequestKB: 1" });
    const [small, big] = await Promise.all([
      send(
        port,
        `POST /small HTTP/1.1\r\nHost: up\r\nContent-Length: 512\r\nConnection: close\r\n\r\n${"s".repeat(512)}`,
      ),
      send(
        port,
        `POST /big HTTP/1.1\r\nHost: up\r\nContent-Length: 4096\r\n\r\n${"b".repeat(4096)}`,
      ),
    ]);
    await quiet();
    // Under the limit: node 200, uws 200.
    expect(outcome(small)).toEqual({ status: "HTTP/1.1 200", closed: true });
    // BUG: node: 200, the 4 KB body forwarded (maxRequestKB is read but not applied; lintel
    // only warns).
    // BUG: uws: the same.
    expect(outcome(big)).toEqual({ status: "HTTP/1.1 413", closed: true });
    expect(up.seen.map((s) => s.url)).toEqual(["/small"]);
  });

  it("maxConcurrentRequests: 2 — with 4 slow requests in flight, the extra 2 get 503 and l5d-err", async () => {
    const held: ServerResponse[] = [];
    const release = () => {
      for (const res of held.splice(0)) res.end("slow");
    };
    onCleanup(release);
    const { up, port } = await gateway(engine, {
      server: ", maxConcurrentRequests: 2",
      handler: (_req, res) => {
        held.push(res);
      },
    });
    const results: { status: number; l5dErr: string | undefined }[] = [];
    const calls = [1, 2, 3, 4].map((i) =>
      call(port, { path: `/c${i}`, headers: { host: "up" }, timeoutMs: 5000 }).then((r) => {
        results.push({ status: r.status, l5dErr: r.headers["l5d-err"] as string | undefined });
      }),
    );
    // Two requests reach the upstream and are held there; give the other two time to be
    // refused (or, wrongly, to reach the upstream too), then let the held ones finish.
    await eventually(() => up.seen.length >= 2, 3000, "two requests at the upstream");
    await new Promise((r) => setTimeout(r, 500));
    const reachedWhileFull = up.seen.length;
    release();
    await Promise.all(calls);
    release();
    // net: 2 × 200, 2 × 503 with l5d-err; only 2 reached the upstream. uws: the same.
    // (Applied since fc4421d; before it, all 4 reached the upstream and got 200.)
    expect({
      reachedWhileFull,
      statuses: results.map((r) => r.status).sort(),
      refusedWithL5dErr: results.filter((r) => r.status === 503 && r.l5dErr).length,
    }).toEqual({ reachedWhileFull: 2, statuses: [200, 200, 503, 503], refusedWithL5dErr: 2 });
  });
});
