// HTTP/1.1 semantics through lintel: bodiless responses, chunked bodies both ways, large
// bodies byte for byte, Expect: 100-continue, repeated headers, upstreams dying mid-answer,
// the net engine's full HTTP/1.x (absolute-form, HTTP/1.0, trailers), the uws engine's
// documented limits, and the httpAccessLog line format.

import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  call,
  cleanup,
  ENGINES,
  type EngineName,
  eventually,
  onCleanup,
  raw,
  startLintel,
  startUpstream,
  type UpstreamHandler,
} from "./harness.js";

afterEach(cleanup);

function config(engine: EngineName, dtab: string, router = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: r
${router}
  dtab: |
    ${dtab}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}}
`;
}

/** An upstream and a lintel routing every name to it. */
async function through(engine: EngineName, handler: UpstreamHandler, router = "") {
  const up = await startUpstream("up", handler);
  const l = await startLintel(config(engine, `/svc => /$/inet/127.0.0.1/${up.port}`, router));
  return { up, l, port: l.port() };
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Splits a raw HTTP/1.1 response into its head and whatever followed the blank line. */
function splitRaw(text: string): { statusLine: string; head: string; rest: string } {
  const i = text.indexOf("\r\n\r\n");
  expect(i).toBeGreaterThan(0);
  const head = text.slice(0, i);
  return { statusLine: head.split("\r\n")[0]!, head: head.toLowerCase(), rest: text.slice(i + 4) };
}

/** raw() with a settle time: stray body bytes after a bodiless response are caught. */
const rawAnswer = (port: number, bytes: string, settleMs = 250, timeoutMs = 3000) =>
  raw(port, bytes, timeoutMs, settleMs);

/** Sends `parts` as a chunked request body, one write per part, `gapMs` apart. */
function chunkedPost(
  port: number,
  parts: Buffer[],
  gapMs: number,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/upload",
        headers: { host: "up", "transfer-encoding": "chunked" },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    let i = 0;
    const next = () => {
      if (i === parts.length) {
        req.end();
        return;
      }
      const part = parts[i++]!;
      const ok = req.write(part);
      if (gapMs > 0) setTimeout(next, gapMs);
      else if (ok) setImmediate(next);
      else req.once("drain", next);
    };
    next();
  });
}

/** Echoes the request body's sha256 and length, as headers. */
const bodyDigest: UpstreamHandler = (req, res, body) => {
  res.writeHead(200, {
    "x-sha256": sha256(body),
    "x-length": String(body.length),
    "x-te": String(req.headers["transfer-encoding"] ?? ""),
  });
  res.end(body.subarray(0, 64));
};

describe.each(ENGINES)("HTTP semantics on the %s engine", (engine) => {
  it("HEAD: no body, the upstream's content-length passed through", async () => {
    const { up, port } = await through(engine, (req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "1234" });
      res.end(req.method === "HEAD" ? undefined : "x".repeat(1234));
    });
    const r = await rawAnswer(port, "HEAD /doc HTTP/1.1\r\nHost: up\r\n\r\n");
    const { statusLine, head, rest } = splitRaw(r.text);
    expect(statusLine).toBe("HTTP/1.1 200 OK");
    expect(head).toContain("\r\ncontent-length: 1234");
    expect(head).not.toContain("transfer-encoding");
    expect(rest).toBe("");
    expect(up.seen[0]!.method).toBe("HEAD");
    // And through a client that knows HEAD.
    const h = await call(port, { method: "HEAD", path: "/doc", headers: { host: "up" } });
    expect(h.status).toBe(200);
    expect(h.headers["content-length"]).toBe("1234");
    expect(h.body.length).toBe(0);
  });

  it("HEAD with an upstream that states no length: no body, and no invented content-length", async () => {
    const { port } = await through(engine, (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
      res.end();
    });
    const r = await rawAnswer(port, "HEAD /doc HTTP/1.1\r\nHost: up\r\n\r\n");
    const { statusLine, head, rest } = splitRaw(r.text);
    expect(statusLine).toBe("HTTP/1.1 200 OK");
    // Regression: the uws engine answered `Content-Length: 9223372036854775808`.
    expect(head).not.toMatch(/\r\ncontent-length:/);
    expect(rest).toBe("");
  });

  it("204 No Content: no body, no framing headers", async () => {
    const { port } = await through(engine, (_req, res) => {
      res.writeHead(204, { "x-kind": "none" });
      res.end();
    });
    const r = await rawAnswer(port, "DELETE /item HTTP/1.1\r\nHost: up\r\n\r\n");
    const { statusLine, head, rest } = splitRaw(r.text);
    expect(statusLine).toBe("HTTP/1.1 204 No Content");
    expect(head).toContain("\r\nx-kind: none");
    expect(head).not.toContain("transfer-encoding");
    // RFC 9110 §8.6: a server must not send Content-Length in a 204.
    // Regression: the uws engine sent `Content-Length: 9223372036854775808`.
    expect(head).not.toMatch(/\r\ncontent-length:/);
    expect(rest).toBe("");
  });

  it("304 Not Modified: no body, and no invented content-length", async () => {
    const { port } = await through(engine, (_req, res) => {
      res.writeHead(304, { etag: '"v1"' });
      res.end();
    });
    const r = await rawAnswer(port, 'GET /doc HTTP/1.1\r\nHost: up\r\nIf-None-Match: "v1"\r\n\r\n');
    const { statusLine, head, rest } = splitRaw(r.text);
    expect(statusLine).toBe("HTTP/1.1 304 Not Modified");
    expect(head).toContain('\r\netag: "v1"');
    expect(head).not.toContain("transfer-encoding");
    // Regression: the uws engine sent `Content-Length: 9223372036854775808`.
    expect(head).not.toMatch(/\r\ncontent-length:/);
    expect(rest).toBe("");
  });

  it("Connection: close on a request answered without a body (204) closes the connection", async () => {
    const { port } = await through(engine, (_req, res) => {
      res.writeHead(204);
      res.end();
    });
    const t0 = performance.now();
    const r = await raw(
      port,
      "DELETE /item HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n",
      3000,
    );
    const { statusLine, head } = splitRaw(r.text);
    expect(statusLine).toBe("HTTP/1.1 204 No Content");
    // RFC 9112 §9.6. Regression: the uws engine kept the connection open after a bodiless
    // response.
    expect(r.closed).toBe(true);
    expect(head).toMatch(/\r\nconnection: close(\r|$)/);
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it("Connection: close on a request answered with a body closes the connection", async () => {
    const { port } = await through(engine, (_req, res) => res.end("bye"));
    const r = await raw(port, "GET / HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n", 3000);
    expect(r.closed).toBe(true);
    const { head, rest } = splitRaw(r.text);
    expect(rest).toBe("bye");
    // The response says the connection closes (regression: uws closed without saying so,
    // and clients such as wrk counted every such response as a read error).
    expect(head.match(/\r\nconnection: close(\r|$)/g)).toHaveLength(1);
  });

  it("a chunked request body (raw chunks) reaches the upstream intact", async () => {
    const { up, port } = await through(engine, bodyDigest);
    const r = await raw(
      port,
      "POST /upload HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        "5\r\nhello\r\n6\r\n world\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
      3000,
    );
    expect(splitRaw(r.text).statusLine).toBe("HTTP/1.1 200 OK");
    const seen = up.seen[0]!;
    expect(seen.body.toString()).toBe("hello worldabcdefghijklmnopqrstuvwxyz");
    // Framing is hop-by-hop: lintel may re-frame a body it already holds whole, but the
    // framing it picks must describe the body.
    if (seen.headers["content-length"] !== undefined)
      expect(seen.headers["content-length"]).toBe("37");
    else expect(seen.headers["transfer-encoding"]).toBe("chunked");
  });

  it("a streamed chunked request body (written in parts over time) reaches the upstream intact", async () => {
    const { up, port } = await through(engine, bodyDigest);
    const parts = Array.from({ length: 6 }, (_, i) => Buffer.from(`part-${i};`.repeat(100 + i)));
    const r = await chunkedPost(port, parts, 30);
    expect(r.status).toBe(200);
    const sent = Buffer.concat(parts);
    expect(up.seen[0]!.body.length).toBe(sent.length);
    expect(sha256(up.seen[0]!.body)).toBe(sha256(sent));
  });

  it("a chunked response (several writes, no content-length) reaches the client intact", async () => {
    const parts = ["first,", "second,", "third,", "x".repeat(20_000), ",last"];
    const { port } = await through(engine, (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      let i = 0;
      const next = () => {
        if (i === parts.length) {
          res.end();
          return;
        }
        res.write(parts[i++]);
        setTimeout(next, 20);
      };
      next();
    });
    const r = await call(port, { headers: { host: "up" } });
    expect(r.status).toBe(200);
    expect(r.headers["content-length"]).toBeUndefined();
    expect(r.headers["transfer-encoding"]).toBe("chunked");
    expect(r.text).toBe(parts.join(""));
  });

  it("5 MB bodies both ways, byte for byte (content-length)", async () => {
    const down = randomBytes(5 << 20);
    const { up, port } = await through(engine, (_req, res, body) => {
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": String(down.length),
        "x-sha256": sha256(body),
      });
      res.end(down);
    });
    const upload = randomBytes(5 << 20);
    const r = await call(port, {
      method: "POST",
      headers: { host: "up", "content-type": "application/octet-stream" },
      body: upload,
      timeoutMs: 15_000,
    });
    expect(r.status).toBe(200);
    expect(up.seen[0]!.body.length).toBe(upload.length);
    expect(r.headers["x-sha256"]).toBe(sha256(upload));
    expect(r.headers["content-length"]).toBe(String(down.length));
    expect(r.body.length).toBe(down.length);
    expect(sha256(r.body)).toBe(sha256(down));
  });

  it("5 MB bodies both ways, byte for byte (chunked)", async () => {
    const down = randomBytes(5 << 20);
    const { up, port } = await through(engine, (_req, res, body) => {
      res.writeHead(200, { "x-sha256": sha256(body) });
      for (let o = 0; o < down.length; o += 256 << 10) res.write(down.subarray(o, o + (256 << 10)));
      res.end();
    });
    const upload = randomBytes(5 << 20);
    const parts: Buffer[] = [];
    for (let o = 0; o < upload.length; o += 64 << 10)
      parts.push(upload.subarray(o, o + (64 << 10)));
    const r = await chunkedPost(port, parts, 0);
    expect(r.status).toBe(200);
    expect(up.seen[0]!.body.length).toBe(upload.length);
    expect(sha256(up.seen[0]!.body)).toBe(sha256(upload));
    expect(r.body.length).toBe(down.length);
    expect(sha256(r.body)).toBe(sha256(down));
  });

  it("Expect: 100-continue: the client gets 100 Continue, the upstream the body and no Expect", async () => {
    const { up, port } = await through(engine, bodyDigest);
    const body = Buffer.from("payload after continue");
    const result = await new Promise<{ continued: boolean; status: number; sha: string }>(
      (resolve, reject) => {
        let continued = false;
        const req = request(
          {
            host: "127.0.0.1",
            port,
            method: "POST",
            path: "/upload",
            headers: { host: "up", expect: "100-continue", "content-length": body.length },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on("end", () =>
              resolve({
                continued,
                status: res.statusCode!,
                sha: String(res.headers["x-sha256"]),
              }),
            );
          },
        );
        req.on("continue", () => {
          continued = true;
          req.end(body);
        });
        req.setTimeout(5000, () => req.destroy(new Error("no 100 Continue or no answer")));
        req.on("error", reject);
        req.flushHeaders();
      },
    );
    expect(result.continued).toBe(true);
    expect(result.status).toBe(200);
    expect(result.sha).toBe(sha256(body));
    expect(up.seen[0]!.body.toString()).toBe("payload after continue");
    expect(up.seen[0]!.headers.expect).toBeUndefined();
  });

  it("repeated response headers (two set-cookie values) survive", async () => {
    const { port } = await through(engine, (_req, res) => {
      res.setHeader("set-cookie", ["a=1; Path=/", "b=2; HttpOnly"]);
      res.setHeader("x-multi", ["one", "two"]);
      res.end("ok");
    });
    const r = await call(port, { headers: { host: "up" } });
    expect(r.status).toBe(200);
    expect(r.headers["set-cookie"]).toEqual(["a=1; Path=/", "b=2; HttpOnly"]);
    const multi: string[] = [];
    for (let i = 0; i < r.rawHeaders.length; i += 2)
      if (r.rawHeaders[i]!.toLowerCase() === "x-multi") multi.push(r.rawHeaders[i + 1]!);
    expect(multi.join(", ")).toBe("one, two");
  });

  it("an upstream that dies mid-response: the client sees it truncated within seconds, not a hang", async () => {
    const sockets = new Set<Socket>();
    const server = createNetServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
      s.once("data", () => {
        s.write(
          `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n${"y".repeat(100)}`,
        );
        setTimeout(() => s.destroy(), 50);
      });
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
    const upPort = typeof a === "object" && a ? a.port : 0;
    const l = await startLintel(config(engine, `/svc => /$/inet/127.0.0.1/${upPort}`));
    const t0 = performance.now();
    const r = await raw(l.port(), "GET / HTTP/1.1\r\nHost: up\r\n\r\n", 5000);
    const took = performance.now() - t0;
    expect(r.closed).toBe(true);
    expect(took).toBeLessThan(2500);
    const { statusLine, head, rest } = splitRaw(r.text);
    expect(statusLine).toBe("HTTP/1.1 200 OK");
    // The client was told a length and got less: it knows the answer is truncated.
    expect(head).toContain("content-length: 1000");
    expect(rest.length).toBeLessThan(1000);
    expect(rest).toBe("y".repeat(rest.length));
    // Through an HTTP client, the response errors rather than completing.
    await expect(call(l.port(), { headers: { host: "up" }, timeoutMs: 5000 })).rejects.toThrow(
      /aborted|socket hang up|ECONNRESET/,
    );
  });

  it("an upstream answer with Transfer-Encoding and Content-Length: framed by the coding, its Content-Length not passed on", async () => {
    // RFC 9112 §6.3. Passed on, the Content-Length would frame a different body for the
    // client than the one lintel forwards: the rest would read as another response.
    const answers: Record<string, string> = {
      "/chunked":
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
      // Without chunked last, the body runs until the connection closes.
      "/gzip": "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ncontent-length: 2\r\n\r\nhello world",
    };
    const server = createNetServer((s) => {
      s.on("error", () => {});
      s.once("data", (d: Buffer) => {
        const path = d.toString("latin1").split(" ")[1]!;
        s.end(answers[path]);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const a = server.address();
    const upPort = typeof a === "object" && a ? a.port : 0;
    const l = await startLintel(config(engine, `/svc => /$/inet/127.0.0.1/${upPort}`));
    for (const path of Object.keys(answers)) {
      const r = await call(l.port(), { path, headers: { host: "up" } });
      expect(r.status, path).toBe(200);
      expect(r.headers["content-length"], path).toBeUndefined();
      expect(r.text, path).toBe("hello world");
    }
  });

  it("httpAccessLog writes one Combined Log Format line per request", async () => {
    const { port, l } = await through(
      engine,
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("hello, log");
      },
      "  httpAccessLog: access.log",
    );
    const r = await call(port, {
      path: "/path/to?x=1",
      headers: { host: "users", "user-agent": "lintel-test/1.0" },
    });
    expect(r.status).toBe(200);
    const file = join(l.dir, "access.log");
    await eventually(
      () => existsSync(file) && readFileSync(file, "utf8").endsWith("\n"),
      3000,
      "the access log line",
    );
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    const m =
      /^127\.0\.0\.1 - - \[(\d{2})\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) \+0000\] "GET \/path\/to\?x=1 HTTP\/1\.1" 200 10 "-" "lintel-test\/1\.0" \/svc\/users (\S+) (\d+(?:\.\d+)?)ms$/.exec(
        lines[0]!,
      );
    expect(m, lines[0]).not.toBeNull();
    expect(m![7]).toMatch(/^\/\$\/inet\/127\.0\.0\.1\/\d+$/);
    const when = Date.UTC(
      Number(m![3]),
      ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].indexOf(
        m![2]!,
      ),
      Number(m![1]),
      Number(m![4]),
      Number(m![5]),
      Number(m![6]),
    );
    expect(Math.abs(Date.now() - when)).toBeLessThan(60_000);
    expect(Number(m![8])).toBeLessThan(5000);
  });
});

describe("HTTP semantics the net engine has and uws lacks", () => {
  it("an absolute-form request is identified by its authority and forwarded with the relative URI", async () => {
    const { up, port } = await through("net", (_req, res) => res.end("ok"));
    const r = await raw(
      port,
      "GET http://users/x?q=1 HTTP/1.1\r\nHost: proxy.example\r\nConnection: close\r\n\r\n",
      3000,
    );
    expect(splitRaw(r.text).statusLine).toBe("HTTP/1.1 200 OK");
    const seen = up.seen[0]!;
    expect(seen.url).toBe("/x?q=1");
    expect(seen.headers.host).toBe("users");
    expect(seen.headers["l5d-dst-service"]).toBe("/svc/users");
  });

  it("an HTTP/1.0 request without Host works with io.l5d.methodAndHost (/svc/1.0/GET)", async () => {
    const up = await startUpstream("up", (_req, res) => res.end("old"));
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  identifier: {kind: io.l5d.methodAndHost}
  dtab: /svc/1.0/GET => /$/inet/127.0.0.1/${up.port}
  servers: [{ip: 127.0.0.1, port: 0, engine: net}]
`);
    const r = await raw(l.port(), "GET /legacy HTTP/1.0\r\n\r\n", 3000);
    expect(r.closed).toBe(true);
    const { statusLine, rest } = splitRaw(r.text);
    expect(statusLine).toMatch(/^HTTP\/1\.[01] 200 OK$/);
    expect(rest).toBe("old");
    expect(up.seen[0]!.url).toBe("/legacy");
    expect(up.seen[0]!.headers["l5d-dst-service"]).toBe("/svc/1.0/GET");
  });

  it("response trailers from the upstream reach the client", async () => {
    const { port } = await through("net", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", trailer: "x-checksum" });
      res.write("part one, ");
      res.write("part two");
      res.addTrailers({ "x-checksum": "abc123" });
      res.end();
    });
    const r = await call(port, { headers: { host: "up", te: "trailers" } });
    expect(r.status).toBe(200);
    expect(r.text).toBe("part one, part two");
    expect(r.trailers["x-checksum"]).toBe("abc123");
  });
});

// docs/engines.md: uws gives these requests no response and leaves the connection to its
// idle timeout (~10 s); they never reach the upstream.
describe("HTTP limits of the uws engine", () => {
  it("uws gives an absolute-form request no response (documented limit)", async () => {
    const { up, port } = await through("uws", (_req, res) => res.end("ok"));
    const r = await raw(port, "GET http://users/x HTTP/1.1\r\nHost: users\r\n\r\n", 3000);
    expect(r.text).toBe("");
    expect(up.seen).toHaveLength(0);
  });

  it("uws gives an HTTP/1.0 request no response (documented limit)", async () => {
    const { up, port } = await through("uws", (_req, res) => res.end("ok"));
    const r = await raw(port, "GET /x HTTP/1.0\r\nHost: users\r\n\r\n", 3000);
    expect(r.text).toBe("");
    expect(up.seen).toHaveLength(0);
  });

  it("uws gives a request with `_` in a header name no response (documented limit)", async () => {
    const { up, port } = await through("uws", (_req, res) => res.end("ok"));
    // The same request without the underscore is served.
    const ok = await raw(
      port,
      "GET /x HTTP/1.1\r\nHost: users\r\nX-Custom: 1\r\nConnection: close\r\n\r\n",
      3000,
    );
    expect(splitRaw(ok.text).statusLine).toBe("HTTP/1.1 200 OK");
    expect(up.seen).toHaveLength(1);
    const r = await raw(port, "GET /x HTTP/1.1\r\nHost: users\r\nX_Custom: 1\r\n\r\n", 3000);
    expect(r.text).toBe("");
    expect(up.seen).toHaveLength(1);
  });

  it("uws gives a request with a 10-digit Content-Length no response (documented limit)", async () => {
    const { up, port } = await through("uws", (_req, res) => res.end("ok"));
    const ok = await raw(
      port,
      "POST /x HTTP/1.1\r\nHost: users\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
      3000,
    );
    expect(splitRaw(ok.text).statusLine).toBe("HTTP/1.1 200 OK");
    const r = await raw(
      port,
      "POST /x HTTP/1.1\r\nHost: users\r\nContent-Length: 1000000000\r\n\r\nhi",
      2000,
    );
    expect(r.text).toBe("");
    expect(up.seen).toHaveLength(1);
  });
});
