// The upstream connection pool against real sockets on loopback: keep-alive reuse, the
// connection limit, stale keep-alive connections, body framing, and closing.

import { createServer as createHttpServer, type Server } from "node:http";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { UpstreamHandler, UpstreamRequest } from "../../gateway/client/http1/connection.js";
import { Http1Pool } from "../../gateway/client/http1/pool.js";

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function listen<S extends Server | NetServer>(server: S): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : 0);
    });
    closers.push(
      () =>
        new Promise<void>((r) => {
          if ("closeAllConnections" in server) (server as Server).closeAllConnections();
          server.close(() => r());
        }),
    );
  });
}

function pool(
  port: number,
  opts: Partial<ConstructorParameters<typeof Http1Pool>[0]> = {},
): Http1Pool {
  const p = new Http1Pool({ host: "127.0.0.1", port, ...opts });
  closers.push(() => p.destroy());
  return p;
}

interface Result {
  status: number;
  headers: string[];
  body: string;
  trailers?: string[];
}

function request(p: Http1Pool, req: Partial<UpstreamRequest> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const r: Result = { status: 0, headers: [], body: "" };
    const handler: UpstreamHandler = {
      onStart() {},
      onHead(status, headers) {
        r.status = status;
        r.headers = headers;
      },
      onData(chunk) {
        r.body += chunk.toString();
        return true;
      },
      onEnd(trailers) {
        r.trailers = trailers;
        resolve(r);
      },
      onError: reject,
    };
    p.dispatch(
      {
        method: "GET",
        path: "/",
        headers: ["host", "up"],
        body: null,
        contentLength: undefined,
        ...req,
      },
      handler,
    );
  });
}

describe("Http1Pool", () => {
  it("reuses one keep-alive connection for requests in sequence", async () => {
    const sockets = new Set<Socket>();
    const server = createHttpServer((req, res) => res.end(`${req.method} ${req.url}`));
    server.on("connection", (s) => sockets.add(s));
    const p = pool(await listen(server));
    for (let i = 0; i < 5; i++)
      expect((await request(p, { path: `/${i}` })).body).toBe(`GET /${i}`);
    expect(sockets.size).toBe(1);
    expect(p.size).toBe(1);
  });

  it("never opens more than maxConnections and queues the rest in order", async () => {
    let open = 0;
    let peak = 0;
    const server = createHttpServer((req, res) => {
      setTimeout(() => res.end(req.url), 30);
    });
    server.on("connection", (s) => {
      open++;
      peak = Math.max(peak, open);
      s.on("close", () => open--);
    });
    const p = pool(await listen(server), { maxConnections: 2 });
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => request(p, { path: `/${i}` })),
    );
    expect(results.map((r) => r.body)).toEqual(["/0", "/1", "/2", "/3", "/4", "/5"]);
    expect(peak).toBe(2);
  });

  it("sends a GET again on a new connection when a reused one closes without answering", async () => {
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      let served = 0;
      s.on("data", () => {
        served++;
        // The first request on each connection is answered; a second one finds the
        // connection closing, as when the upstream's keep-alive timer fires.
        if (served === 1) s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        else s.destroy();
      });
    });
    const p = pool(await listen(server));
    expect((await request(p)).body).toBe("ok");
    expect((await request(p)).body).toBe("ok");
    expect(connections).toBe(2);
  });

  it("does not send a POST again: its failure is reported", async () => {
    const server = createServer((s) => {
      let served = 0;
      s.on("data", () => {
        served++;
        if (served === 1) s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        else s.destroy();
      });
    });
    const p = pool(await listen(server));
    await request(p);
    await expect(request(p, { method: "POST" })).rejects.toThrow(
      "closed the connection without answering",
    );
  });

  it("reports a refused connection with its code", async () => {
    const server = createServer();
    const port = await listen(server);
    await new Promise<void>((r) => server.close(() => r()));
    await expect(request(pool(port))).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("sends a body of known length with Content-Length and one of unknown length chunked", async () => {
    const seen: { te?: string; cl?: string; body: string }[] = [];
    const server = createHttpServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        seen.push({
          te: req.headers["transfer-encoding"],
          cl: req.headers["content-length"],
          body,
        });
        res.end("done");
      });
    });
    const p = pool(await listen(server));
    await request(p, {
      method: "POST",
      headers: ["host", "up", "content-length", "6"],
      body: Readable.from([Buffer.from("abc"), Buffer.from("def")]),
      contentLength: 6,
    });
    await request(p, {
      method: "POST",
      body: Readable.from([Buffer.from("ghi"), Buffer.from("jkl")]),
    });
    expect(seen).toEqual([
      { te: undefined, cl: "6", body: "abcdef" },
      { te: "chunked", cl: undefined, body: "ghijkl" },
    ]);
  });

  it("does not reuse a connection the upstream answered before the request body was sent", async () => {
    let connections = 0;
    const server = createHttpServer((req, res) => {
      if (req.url === "/early") {
        res.writeHead(413);
        res.end("too big");
        return;
      }
      req.resume();
      req.on("end", () => res.end("ok"));
    });
    server.on("connection", () => connections++);
    const p = pool(await listen(server));
    const endless = new Readable({ read() {} });
    endless.push(Buffer.alloc(1024));
    const r = await request(p, { method: "POST", path: "/early", body: endless });
    expect(r.status).toBe(413);
    expect((await request(p)).body).toBe("ok");
    expect(connections).toBe(2);
  });

  it("counts the connections it opens and holds", async () => {
    const server = createHttpServer((_req, res) => setTimeout(() => res.end("ok"), 20));
    const counters = { connects: { n: 0 }, connections: { n: 0 } };
    const p = pool(await listen(server), { idleTimeMs: 100, counters });
    await Promise.all([request(p), request(p), request(p)]);
    expect(counters).toEqual({ connects: { n: 3 }, connections: { n: 3 } });
    // Reused: no new connection.
    await request(p);
    expect(counters.connects.n).toBe(3);
    await new Promise((r) => setTimeout(r, 1600));
    expect(counters).toEqual({ connects: { n: 3 }, connections: { n: 0 } });
  });

  it("closes idle connections after idleTimeMs", async () => {
    let closed = 0;
    const server = createHttpServer((_req, res) => res.end("ok"));
    server.on("connection", (s) => s.on("close", () => closed++));
    const p = pool(await listen(server), { idleTimeMs: 100 });
    await request(p);
    expect(p.size).toBe(1);
    // The sweep runs every second.
    await new Promise((r) => setTimeout(r, 1600));
    expect(p.size).toBe(0);
    expect(closed).toBe(1);
  });

  it("keeps minConnections idle connections past idleTimeMs, closing the least recently used", async () => {
    let closed = 0;
    const server = createHttpServer((_req, res) => setTimeout(() => res.end("ok"), 20));
    server.on("connection", (s) => s.on("close", () => closed++));
    const p = pool(await listen(server), { idleTimeMs: 100, minConnections: 2 });
    // Four at once: four connections.
    await Promise.all([request(p), request(p), request(p), request(p)]);
    expect(p.size).toBe(4);
    await new Promise((r) => setTimeout(r, 1600));
    expect(p.size).toBe(2);
    expect(closed).toBe(2);
    // The two kept still carry requests.
    await Promise.all([request(p), request(p)]);
    expect(p.size).toBe(2);
  });

  it("close() lets the request in flight finish; destroy() fails it", async () => {
    const server = createHttpServer((_req, res) => {
      setTimeout(() => res.end("late"), 100);
    });
    const port = await listen(server);
    const gentle = pool(port);
    const inflight = request(gentle);
    await new Promise((r) => setTimeout(r, 20));
    await gentle.close();
    expect((await inflight).body).toBe("late");
    await expect(request(gentle)).rejects.toThrow(/pool to 127.0.0.1:\d+ is closed/);

    const hard = pool(port);
    const cut = request(hard);
    await new Promise((r) => setTimeout(r, 20));
    await hard.destroy();
    await expect(cut).rejects.toThrow(/was closed/);
  });

  it("passes trailers of a chunked response through", async () => {
    const server = createHttpServer((_req, res) => {
      res.writeHead(200, { trailer: "x-sum" });
      res.write("a");
      res.addTrailers({ "x-sum": "1" });
      res.end();
    });
    const r = await request(pool(await listen(server)));
    expect(r.body).toBe("a");
    expect(r.trailers).toEqual(["x-sum", "1"]);
  });
});
