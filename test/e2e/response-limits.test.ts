// The router's response settings, end to end against real upstreams on loopback:
// maxResponseKB (a Content-Length over it is refused with 502 before a byte of the body
// reaches the client; a chunked or close-delimited body that grows past it is cut, and its
// upstream connection is not reused), maxChunkKB (a chunk declaring more: 502 before the
// head, truncated after), and compressionLevel (gzip at the edge, streamed, only where the
// client and the response allow it). Both engines.

import { createHash, randomBytes } from "node:crypto";
import { type IncomingHttpHeaders, request, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import {
  cleanup,
  ENGINES,
  type EngineName,
  eventually,
  type Lintel,
  metricsJson,
  startFirehose,
  startLintel,
  startTcpUpstream,
  startUpstream,
  type Upstream,
} from "./harness.js";

afterEach(cleanup);

function config(engine: EngineName, port: number, router = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: r
  dtab: /svc => /$/inet/127.0.0.1/${port}
${router}
  servers: [{ip: 127.0.0.1, port: 0, engine: ${engine}}]
`;
}

interface Outcome {
  /** The response ended cleanly, or failed (truncated, reset), or nothing came in time. */
  readonly kind: "end" | "error" | "timeout";
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly error?: string;
}

interface Fetch {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
  /** Called with the response as it starts (to pause it, say). */
  readonly onResponse?: (res: import("node:http").IncomingMessage) => void;
  /** Called with each body piece as it arrives. */
  readonly onData?: (piece: Buffer) => void;
}

/** One request on a fresh connection; resolves (never rejects) with how it ended. */
function fetch(port: number, f: Fetch = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (kind: Outcome["kind"], error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ kind, status, headers, body: Buffer.concat(chunks), error });
    };
    const req = request({
      host: "127.0.0.1",
      port,
      method: f.method ?? "GET",
      path: f.path ?? "/",
      headers: { host: "svc", ...f.headers },
      agent: false,
    });
    const timer = setTimeout(() => {
      finish("timeout");
      req.destroy();
    }, f.timeoutMs ?? 10_000);
    req.on("error", (e) => finish("error", (e as NodeJS.ErrnoException).code ?? e.message));
    req.on("response", (res) => {
      status = res.statusCode ?? 0;
      headers = res.headers;
      res.on("data", (d: Buffer) => {
        chunks.push(d);
        f.onData?.(d);
      });
      res.on("end", () => finish("end"));
      res.on("aborted", () => finish("error", "aborted"));
      res.on("error", (e) => finish("error", (e as NodeJS.ErrnoException).code ?? e.message));
      f.onResponse?.(res);
    });
    req.end();
  });
}

function l5dErr(o: Outcome): string {
  return decodeURIComponent(String(o.headers["l5d-err"] ?? ""));
}

/** A raw TCP upstream: `onRequest` gets each connection once a request head arrived. */
function tcpUpstream(onRequest: (s: Socket) => void): Promise<{ port: number }> {
  return startTcpUpstream((s) => {
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      s.off("data", onData);
      onRequest(s);
    };
    s.on("data", onData);
  });
}

/** The upstream's pieces, written `gapMs` apart (chunked when no Content-Length is set). */
function writeSlowly(res: ServerResponse, pieces: Buffer[], gapMs: number): void {
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    if (i === pieces.length) {
      res.end();
      return;
    }
    res.write(pieces[i++]);
    setTimeout(next, gapMs);
  };
  next();
}

/** Counts the upstream's connections (to see whether lintel reused one). */
function countConnections(up: Upstream): { n: number } {
  const c = { n: 0 };
  up.server.on("connection", () => c.n++);
  return c;
}

async function serverFailures(l: Lintel, reason: string): Promise<number> {
  const m = await metricsJson(l);
  return m[`rt/r/server/127.0.0.1/${l.port()}/failures/${reason}`] ?? 0;
}

/** Text that compresses well but not trivially: numbered lines with random words. */
function text(bytes: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const line = `{"line":${i},"word":"${randomBytes(6).toString("hex")}","pad":"lorem ipsum dolor sit amet"}\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join("")).subarray(0, bytes);
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe.each(ENGINES)("maxResponseKB on the %s engine", (engine) => {
  it("refuses a Content-Length over it with 502 and l5d-err, and nothing of the body", async () => {
    const up = await startUpstream("big", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": 4096 });
      res.end(Buffer.alloc(4096, "x"));
    });
    const l = await startLintel(config(engine, up.port, "  maxResponseKB: 2"));
    const r = await fetch(l.port());
    expect(r.kind).toBe("end");
    expect(r.status).toBe(502);
    expect(l5dErr(r)).toMatch(
      /^the response of \/svc\/svc from 127\.0\.0\.1:\d+ is over maxResponseKB \(2 KB\): its Content-Length is 4096 bytes$/,
    );
    expect(r.body.toString()).not.toContain("xxxx");
    expect(await serverFailures(l, "LINTEL_RESPONSE_TOO_LARGE")).toBe(1);
  });

  it("does not count refused responses against the endpoint in failure accrual", async () => {
    const up = await startUpstream("big", (req, res) => {
      const n = req.url === "/big" ? 4096 : 10;
      res.writeHead(200, { "content-type": "text/plain", "content-length": n });
      res.end(Buffer.alloc(n, "x"));
    });
    const accrual =
      "  client: {failureAccrual: {kind: io.l5d.consecutiveFailures, failures: 2, backoff: {kind: constant, ms: 60000}}}";
    const l = await startLintel(config(engine, up.port, `  maxResponseKB: 2\n${accrual}`));
    for (let i = 0; i < 4; i++) expect((await fetch(l.port(), { path: "/big" })).status).toBe(502);
    const small = await fetch(l.port(), { path: "/small" });
    expect(small.status).toBe(200);
    expect(small.body.toString()).toBe("x".repeat(10));
  });

  it("does not retry a response over it, even under a classifier that retries reads", async () => {
    const up = await startUpstream("big", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": 4096 });
      res.end(Buffer.alloc(4096, "x"));
    });
    const retrying = "  service: {responseClassifier: {kind: io.l5d.http.retryableRead5XX}}";
    const l = await startLintel(config(engine, up.port, `  maxResponseKB: 2\n${retrying}`));
    expect((await fetch(l.port())).status).toBe(502);
    expect(up.seen).toHaveLength(1);
  });

  it("passes a response of exactly the limit, a HEAD and a 304 whatever their Content-Length", async () => {
    const up = await startUpstream("edge", (req, res) => {
      if (req.headers["if-none-match"]) {
        res.writeHead(304, { etag: '"v1"', "content-length": 999_999 });
        res.end();
        return;
      }
      res.writeHead(200, { "content-type": "text/plain", "content-length": 2048 });
      res.end(req.method === "HEAD" ? undefined : Buffer.alloc(2048, "y"));
    });
    const l = await startLintel(config(engine, up.port, "  maxResponseKB: 2"));
    const whole = await fetch(l.port());
    expect(whole.status).toBe(200);
    expect(whole.body.equals(Buffer.alloc(2048, "y"))).toBe(true);
    const head = await fetch(l.port(), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe("2048");
    const notModified = await fetch(l.port(), { headers: { "if-none-match": '"v1"' } });
    expect(notModified.status).toBe(304);
  });

  it("cuts a chunked response that grows past it, and does not reuse its connection", async () => {
    const piece = Buffer.alloc(16 * 1024, "z");
    const up = await startUpstream(
      "grows",
      (req, res) => {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        if (req.url === "/" && req.headers["x-small"]) res.end(piece);
        else
          writeSlowly(
            res,
            Array.from({ length: 16 }, () => piece),
            10,
          );
      },
      { streaming: true },
    );
    const conns = countConnections(up);
    const l = await startLintel(config(engine, up.port, "  maxResponseKB: 64"));
    const r = await fetch(l.port());
    expect(r.status).toBe(200);
    expect(r.kind, `${r.kind} ${r.error ?? ""} after ${r.body.length} bytes`).toBe("error");
    expect(r.body.length).toBeLessThanOrEqual(64 * 1024);
    expect(r.body.length).toBeGreaterThan(0);
    await eventually(() => l.runtime.routers[0]!.inflight === 0, 2000, "no request in flight");
    expect(await serverFailures(l, "response_truncated")).toBe(1);
    // The cut connection is gone; the next two requests share a new one.
    for (let i = 0; i < 2; i++) {
      const ok = await fetch(l.port(), { headers: { "x-small": "1" } });
      expect(ok.kind).toBe("end");
      expect(ok.body.length).toBe(piece.length);
    }
    expect(conns.n).toBe(2);
  });

  it("cuts a close-delimited response that grows past it", async () => {
    const up = await tcpUpstream((s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n");
      let sent = 0;
      const timer = setInterval(() => {
        if (s.destroyed || sent >= 256 * 1024) {
          clearInterval(timer);
          s.end();
          return;
        }
        s.write(Buffer.alloc(8 * 1024, "c"));
        sent += 8 * 1024;
      }, 5);
    });
    const l = await startLintel(config(engine, up.port, "  maxResponseKB: 32"));
    const r = await fetch(l.port());
    expect(r.status).toBe(200);
    expect(r.kind).toBe("error");
    expect(r.body.length).toBeLessThanOrEqual(32 * 1024);
  });
});

describe.each(ENGINES)("maxChunkKB on the %s engine", (engine) => {
  it("answers 502 when the first chunk declares more, before anything reaches the client", async () => {
    const up = await startUpstream(
      "chunky",
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(Buffer.alloc(100 * 1024, "k"));
      },
      { streaming: true },
    );
    const l = await startLintel(config(engine, up.port, "  maxChunkKB: 64"));
    const r = await fetch(l.port());
    expect(r.kind).toBe("end");
    expect(r.status).toBe(502);
    expect(l5dErr(r)).toMatch(
      /^the response of \/svc\/svc from 127\.0\.0\.1:\d+ declares a chunk of 102400 bytes, over maxChunkKB \(64 KB\)$/,
    );
    expect(r.body.toString()).not.toContain("kkkk");
  });

  it("cuts the response when a later chunk declares more", async () => {
    const up = await startUpstream(
      "chunky",
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        writeSlowly(res, [Buffer.alloc(1024, "a"), Buffer.alloc(100 * 1024, "b")], 50);
      },
      { streaming: true },
    );
    const l = await startLintel(config(engine, up.port, "  maxChunkKB: 64"));
    const r = await fetch(l.port());
    expect(r.status).toBe(200);
    expect(r.kind).toBe("error");
    expect(r.body.toString()).toBe("a".repeat(1024));
    await eventually(() => l.runtime.routers[0]!.inflight === 0, 2000, "no request in flight");
    expect(await serverFailures(l, "response_truncated")).toBe(1);
  });

  it("passes chunks up to the limit, trailers and an empty chunked body intact", async () => {
    const up = await startUpstream(
      "fine",
      (req, res) => {
        res.writeHead(200, { "content-type": "text/plain", trailer: "x-sum" });
        if (req.headers["x-empty"]) {
          res.end();
          return;
        }
        res.write(Buffer.alloc(64 * 1024, "p"));
        res.write(Buffer.alloc(10, "q"));
        res.addTrailers({ "x-sum": "42" });
        res.end();
      },
      { streaming: true },
    );
    const l = await startLintel(config(engine, up.port, "  maxChunkKB: 64\n  maxResponseKB: 65"));
    const r = await fetch(l.port());
    expect(r.kind).toBe("end");
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(64 * 1024 + 10);
    const empty = await fetch(l.port(), { headers: { "x-empty": "1" } });
    expect(empty.kind).toBe("end");
    expect(empty.status).toBe(200);
    expect(empty.body.length).toBe(0);
  });
});

describe.each(ENGINES)("compressionLevel on the %s engine", (engine) => {
  /** An upstream answering `body` with `headers` (chunked unless they give a length). */
  async function serving(
    body: Buffer,
    headers: Record<string, string | number>,
    status = 200,
  ): Promise<Upstream> {
    return startUpstream(
      "site",
      (_req, res) => {
        res.writeHead(status, headers);
        res.end(status === 204 || status === 304 ? undefined : body);
      },
      { streaming: true },
    );
  }

  it("gzips a large chunked text body when the client accepts gzip, streamed and intact", async () => {
    const body = text(2 * 1024 * 1024);
    const up = await startUpstream(
      "site",
      (_req, res) => {
        res.writeHead(200, { "content-type": "application/json", vary: "origin" });
        const pieces: Buffer[] = [];
        for (let at = 0; at < body.length; at += 48 * 1024)
          pieces.push(body.subarray(at, at + 48 * 1024));
        writeSlowly(res, pieces, 0);
      },
      { streaming: true },
    );
    const l = await startLintel(config(engine, up.port, "  compressionLevel: -1"));
    const r = await fetch(l.port(), { headers: { "accept-encoding": "gzip, deflate, br" } });
    expect(r.kind).toBe("end");
    expect(r.status).toBe(200);
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(r.headers["content-length"]).toBeUndefined();
    expect(r.headers.vary).toBe("origin, accept-encoding");
    expect(r.body.length).toBeLessThan(body.length / 2);
    expect(sha(gunzipSync(r.body))).toBe(sha(body));
  });

  it("sends compressed bytes before the upstream has finished (no buffering of the body)", async () => {
    let clientGotBytes!: () => void;
    const got = new Promise<void>((r) => {
      clientGotBytes = r;
    });
    const first = text(32 * 1024);
    const rest = text(32 * 1024);
    const up = await startUpstream(
      "stream",
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(first);
        // The rest only once the client has seen compressed bytes of the first part.
        void got.then(() => res.end(rest));
      },
      { streaming: true },
    );
    const l = await startLintel(config(engine, up.port, "  compressionLevel: 6"));
    const r = await fetch(l.port(), {
      headers: { "accept-encoding": "gzip" },
      onData: () => clientGotBytes(),
      timeoutMs: 5000,
    });
    expect(r.kind).toBe("end");
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(r.body).equals(Buffer.concat([first, rest]))).toBe(true);
  });

  it("gzips a Content-Length body of 1 KiB or more, not a smaller one", async () => {
    const big = text(1024);
    const small = text(1023);
    const up = await startUpstream("site", (req, res) => {
      const b = req.headers["x-small"] ? small : big;
      res.writeHead(200, { "content-type": "text/html", "content-length": b.length });
      res.end(b);
    });
    const l = await startLintel(config(engine, up.port, "  compressionLevel: 1"));
    const r = await fetch(l.port(), { headers: { "accept-encoding": "gzip" } });
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(r.headers["content-length"]).toBeUndefined();
    expect(gunzipSync(r.body).equals(big)).toBe(true);
    const s = await fetch(l.port(), { headers: { "accept-encoding": "gzip", "x-small": "1" } });
    expect(s.headers["content-encoding"]).toBeUndefined();
    expect(s.headers["content-length"]).toBe("1023");
    expect(s.body.equals(small)).toBe(true);
  });

  it("does not gzip when the client does not accept it (absent, not listed, q=0)", async () => {
    const body = text(8 * 1024);
    const up = await serving(body, { "content-type": "text/plain" });
    const l = await startLintel(config(engine, up.port, "  compressionLevel: 9"));
    for (const ae of [undefined, "deflate, br", "gzip;q=0, deflate", "*, gzip;q=0.000"]) {
      const r = await fetch(l.port(), { headers: ae ? { "accept-encoding": ae } : {} });
      expect(r.status, String(ae)).toBe(200);
      expect(r.headers["content-encoding"], String(ae)).toBeUndefined();
      expect(r.body.equals(body), String(ae)).toBe(true);
    }
    for (const ae of ["GZIP;Q=0.5", "x-gzip", "br;q=1, *;q=0.1"]) {
      const r = await fetch(l.port(), { headers: { "accept-encoding": ae } });
      expect(r.headers["content-encoding"], ae).toBe("gzip");
      expect(gunzipSync(r.body).equals(body), ae).toBe(true);
    }
  });

  it("passes an already encoded response and a no-transform one as they are", async () => {
    const body = randomBytes(4096);
    const encoded = await serving(body, { "content-type": "text/plain", "content-encoding": "br" });
    const l = await startLintel(config(engine, encoded.port, "  compressionLevel: 6"));
    const r = await fetch(l.port(), { headers: { "accept-encoding": "gzip, br" } });
    expect(r.headers["content-encoding"]).toBe("br");
    expect(r.body.equals(body)).toBe(true);

    const plain = text(4096);
    const fixed = await serving(plain, {
      "content-type": "text/plain",
      "cache-control": "public, no-transform",
    });
    const l2 = await startLintel(config(engine, fixed.port, "  compressionLevel: 6"));
    const r2 = await fetch(l2.port(), { headers: { "accept-encoding": "gzip" } });
    expect(r2.headers["content-encoding"]).toBeUndefined();
    expect(r2.body.equals(plain)).toBe(true);
  });

  it("leaves image/png alone under -1 but gzips it under level 6", async () => {
    const png = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), Buffer.alloc(8192, 7)]);
    const up = await serving(png, { "content-type": "image/png", "content-length": png.length });
    const textOnly = await startLintel(config(engine, up.port, "  compressionLevel: -1"));
    const r = await fetch(textOnly.port(), { headers: { "accept-encoding": "gzip" } });
    expect(r.headers["content-encoding"]).toBeUndefined();
    expect(r.headers["content-length"]).toBe(String(png.length));
    expect(r.body.equals(png)).toBe(true);
    const all = await startLintel(config(engine, up.port, "  compressionLevel: 6"));
    const g = await fetch(all.port(), { headers: { "accept-encoding": "gzip" } });
    expect(g.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(g.body).equals(png)).toBe(true);
  });

  it("does not gzip HEAD, 204 or 304 answers", async () => {
    const body = text(4096);
    const up = await startUpstream("site", (req, res) => {
      if (req.url === "/204") {
        res.writeHead(204, { "content-type": "text/plain" });
        res.end();
      } else if (req.url === "/304") {
        res.writeHead(304, { "content-type": "text/plain", etag: '"v1"' });
        res.end();
      } else {
        res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
        res.end(req.method === "HEAD" ? undefined : body);
      }
    });
    const l = await startLintel(config(engine, up.port, "  compressionLevel: 6"));
    const gzip = { "accept-encoding": "gzip" };
    const head = await fetch(l.port(), { method: "HEAD", headers: gzip });
    expect(head.status).toBe(200);
    expect(head.headers["content-encoding"]).toBeUndefined();
    expect(head.headers["content-length"]).toBe(String(body.length));
    for (const status of [204, 304]) {
      const r = await new Promise<Outcome>((resolve) => {
        const req = request(
          {
            host: "127.0.0.1",
            port: l.port(),
            path: `/${status}`,
            headers: { host: "svc", ...gzip },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on("end", () =>
              resolve({
                kind: "end",
                status: res.statusCode!,
                headers: res.headers,
                body: Buffer.alloc(0),
              }),
            );
          },
        );
        req.end();
      });
      expect(r.status).toBe(status);
      expect(r.headers["content-encoding"]).toBeUndefined();
    }
  });

  it("does not compress on a router without compressionLevel", async () => {
    const body = text(8192);
    const up = await serving(body, { "content-type": "text/plain" });
    const l = await startLintel(config(engine, up.port));
    const r = await fetch(l.port(), { headers: { "accept-encoding": "gzip" } });
    expect(r.headers["content-encoding"]).toBeUndefined();
    expect(r.body.equals(body)).toBe(true);
  });

  it("keeps backpressure through gzip: a client that stops reading stops the upstream", async () => {
    const body = randomBytes(32 * 1024 * 1024);
    const { up, state } = await startFirehose(body);
    const l = await startLintel(config(engine, up.port, "  compressionLevel: 1"));
    let stalled: { waiting: boolean; sent: number } | undefined;
    const out = await fetch(l.port(), {
      headers: { "accept-encoding": "gzip" },
      timeoutMs: 30_000,
      onResponse: (res) => {
        res.pause();
        setTimeout(() => {
          stalled = { ...state };
          res.resume();
        }, 700);
      },
    });
    // While the client did not read, the upstream waited for room, far from done.
    expect(stalled?.waiting).toBe(true);
    expect(stalled!.sent).toBeLessThan(body.length / 2);
    expect(out.kind).toBe("end");
    expect(out.headers["content-encoding"]).toBe("gzip");
    expect(sha(gunzipSync(out.body))).toBe(sha(body));
  }, 30_000);

  it("tears the compressed response down when the client leaves", async () => {
    const state: { closed?: boolean; finished?: boolean } = {};
    const up = await startUpstream(
      "endless",
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.on("close", () => {
          state.closed = true;
          state.finished = res.writableFinished;
        });
        const timer = setInterval(() => {
          if (res.destroyed) clearInterval(timer);
          else res.write(text(4096));
        }, 5);
      },
      { streaming: true },
    );
    const l = await startLintel(config(engine, up.port, "  compressionLevel: 6"));
    const encoding = await new Promise<string | undefined>((resolve) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: l.port(),
          path: "/",
          headers: { host: "svc", "accept-encoding": "gzip" },
          agent: false,
        },
        (res) => {
          res.once("data", () => {
            req.destroy();
            resolve(res.headers["content-encoding"]);
          });
        },
      );
      req.on("error", () => resolve("error"));
      req.end();
    });
    expect(encoding).toBe("gzip");
    await eventually(() => state.closed === true, 3000, "the upstream response to close");
    expect(state.finished).toBe(false);
    await eventually(() => l.runtime.routers[0]!.inflight === 0, 3000, "no request in flight");
  });

  it("finishes the request when a client stops reading a compressed response and leaves", async () => {
    const body = randomBytes(8 * 1024 * 1024);
    const up = await serving(body, { "content-type": "application/octet-stream" });
    const l = await startLintel(config(engine, up.port, "  compressionLevel: 1"));
    await new Promise<void>((resolve) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: l.port(),
          path: "/",
          headers: { host: "svc", "accept-encoding": "gzip" },
          agent: false,
        },
        (res) => {
          res.pause();
          setTimeout(() => {
            req.destroy();
            resolve();
          }, 300);
        },
      );
      req.on("error", () => {});
      req.end();
    });
    await eventually(() => l.runtime.routers[0]!.inflight === 0, 3000, "no request in flight");
  });
});
