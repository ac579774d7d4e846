// The response layers end to end, on both engines against real upstreams on loopback:
// `compression` (the encoding chosen by Accept-Encoding, checked by decompressing what
// arrives; what is never compressed; a slow stream compressed as it comes; backpressure
// with a client that does not read; HTTP/2 clients; metrics) and `responseHeaders`
// (set/add/remove on forwarded responses and lintel's own answers, HSTS on TLS only), on
// a server or on one service prefix.

import { createHash, randomBytes } from "node:crypto";
import { type IncomingHttpHeaders, type IncomingMessage, request } from "node:http";
import { connect as connectH2 } from "node:http2";
import { request as httpsRequest } from "node:https";
import {
  brotliDecompressSync,
  createBrotliDecompress,
  createGunzip,
  gunzipSync,
  gzipSync,
} from "node:zlib";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import {
  cleanup,
  ENGINES,
  type EngineName,
  freePort,
  type Lintel,
  metricsJson,
  onCleanup,
  startFirehose,
  startLintel,
  startUpstream,
  type Upstream,
} from "./harness.js";

afterEach(cleanup);

let root: TestCa;
let leaf: Issued;
beforeAll(async () => {
  root = await TestCa.root();
  leaf = await root.leaf({ dns: ["app.test"] });
}, 30_000);

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** JSON-ish text that compresses well but not trivially. */
function text(bytes: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const line = `{"id":${i},"tag":"${randomBytes(4).toString("hex")}","note":"lorem ipsum dolor"}\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join("")).subarray(0, bytes);
}

const JSON_BODY = text(64 * 1024);
const SMALL = text(700);
const PNG = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), Buffer.alloc(8192, 7)]);
const ENCODED = gzipSync(JSON_BODY);

/** One upstream for most cases, by path. */
function site(): Promise<Upstream> {
  return startUpstream("site", (req, res) => {
    const fixed = (type: string, body: Buffer, extra: Record<string, string> = {}) => {
      res.writeHead(200, { "content-type": type, "content-length": body.length, ...extra });
      res.end(body);
    };
    switch (req.url) {
      case "/json":
        return fixed("application/json", JSON_BODY, { etag: '"j1"', "accept-ranges": "bytes" });
      case "/chunked":
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
        res.write(JSON_BODY.subarray(0, 1000));
        return res.end(JSON_BODY.subarray(1000));
      case "/small":
        return fixed("application/json", SMALL);
      case "/png":
        return fixed("image/png", PNG);
      case "/encoded":
        return fixed("application/json", ENCODED, { "content-encoding": "gzip" });
      case "/range": {
        const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ""));
        if (!m) return fixed("application/json", JSON_BODY);
        const part = JSON_BODY.subarray(Number(m[1]), Number(m[2]) + 1);
        res.writeHead(206, {
          "content-type": "application/json",
          "content-range": `bytes ${m[1]}-${m[2]}/${JSON_BODY.length}`,
          "content-length": part.length,
        });
        return res.end(part);
      }
      case "/ignores-range":
        return fixed("application/json", JSON_BODY);
      case "/fields":
        return fixed("text/html", SMALL, {
          server: "nginx/1.25",
          "x-powered-by": "PHP/8",
          "x-frame-options": "SAMEORIGIN",
          "strict-transport-security": "max-age=1",
        });
      default:
        res.writeHead(404, { "content-type": "text/plain" });
        return res.end("no such path\n");
    }
  });
}

function config(engine: EngineName, port: number, layers: string, extra = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: r
  dtab: /svc => /$/inet/127.0.0.1/${port}
${extra}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}, layers: ${layers}}
`;
}

interface Got {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as it arrived (not decoded). */
  readonly body: Buffer;
}

interface Get {
  readonly path?: string;
  readonly host?: string;
  readonly headers?: Record<string, string>;
  /** Over TLS, to app.test, trusting the test CA. */
  readonly tls?: boolean;
  /** Called with the response as it starts (to pause it, say). */
  readonly onResponse?: (res: IncomingMessage) => void;
  readonly timeoutMs?: number;
}

/** One GET on a fresh connection: status, head and the raw body (rejects on failure). */
function get(port: number, g: Get = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const opts = {
      host: "127.0.0.1",
      port,
      path: g.path ?? "/json",
      headers: { host: g.host ?? "svc", ...g.headers },
      agent: false as const,
    };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
      g.onResponse?.(res);
    };
    const req = g.tls
      ? httpsRequest({ ...opts, ca: root.certPem, servername: "app.test" }, onResponse)
      : request(opts, onResponse);
    req.setTimeout(g.timeoutMs ?? 10_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** The body as the client reads it once decoded by its Content-Encoding. */
function decoded(r: Got): Buffer {
  const e = r.headers["content-encoding"];
  if (e === "br") return brotliDecompressSync(r.body);
  if (e === "gzip") return gunzipSync(r.body);
  if (e === undefined) return r.body;
  throw new Error(`unexpected content-encoding ${e}`);
}

describe.each(ENGINES)("the compression layer on the %s engine", (engine) => {
  it("chooses br or gzip by the client's Accept-Encoding and q-values, else identity", async () => {
    const up = await site();
    const l = await startLintel(config(engine, up.port, "[{kind: compression}]"));
    const cases: [string | undefined, string | undefined][] = [
      ["gzip, deflate, br", "br"],
      ["br", "br"],
      ["gzip", "gzip"],
      ["br;q=0.5, gzip", "gzip"],
      ["br;q=0, gzip", "gzip"],
      ["*", "br"],
      ["br;q=0, gzip;q=0", undefined],
      ["*;q=0", undefined],
      ["identity", undefined],
      ["deflate", undefined],
      [undefined, undefined],
    ];
    for (const [ae, want] of cases) {
      const r = await get(l.port(), { headers: ae === undefined ? {} : { "accept-encoding": ae } });
      expect(r.status, String(ae)).toBe(200);
      expect(r.headers["content-encoding"], String(ae)).toBe(want);
      expect(r.headers.vary, String(ae)).toBe("accept-encoding");
      expect(sha(decoded(r)), String(ae)).toBe(sha(JSON_BODY));
      if (want !== undefined) {
        expect(r.headers["content-length"]).toBeUndefined();
        expect(r.body.length).toBeLessThan(JSON_BODY.length / 2);
        expect(r.headers.etag).toBe('W/"j1"');
        expect(r.headers["accept-ranges"]).toBeUndefined();
      } else {
        expect(r.headers["content-length"]).toBe(String(JSON_BODY.length));
        expect(r.headers.etag).toBe('"j1"');
      }
    }
  });

  it("prefers the configured order on a tie, and compresses chunked bodies too", async () => {
    const up = await site();
    const l = await startLintel(
      config(engine, up.port, "[{kind: compression, encodings: [gzip, br], gzipLevel: 1}]"),
    );
    const both = { "accept-encoding": "br, gzip" };
    const r = await get(l.port(), { headers: both });
    expect(r.headers["content-encoding"]).toBe("gzip");
    expect(sha(decoded(r))).toBe(sha(JSON_BODY));
    const c = await get(l.port(), { path: "/chunked", headers: both });
    expect(c.headers["content-encoding"]).toBe("gzip");
    expect(sha(decoded(c))).toBe(sha(JSON_BODY));
    const brOnly = await get(l.port(), { headers: { "accept-encoding": "br" } });
    expect(brOnly.headers["content-encoding"]).toBe("br");
    expect(sha(decoded(brOnly))).toBe(sha(JSON_BODY));
  });

  it("leaves small bodies, unlisted types and already encoded bodies as they are", async () => {
    const up = await site();
    const l = await startLintel(config(engine, up.port, "[{kind: compression}]"));
    const ae = { "accept-encoding": "gzip, br" };
    const small = await get(l.port(), { path: "/small", headers: ae });
    expect(small.headers["content-encoding"]).toBeUndefined();
    expect(small.headers["content-length"]).toBe(String(SMALL.length));
    expect(small.body.equals(SMALL)).toBe(true);
    const png = await get(l.port(), { path: "/png", headers: ae });
    expect(png.headers["content-encoding"]).toBeUndefined();
    expect(png.headers.vary).toBeUndefined();
    expect(png.body.equals(PNG)).toBe(true);
    const encoded = await get(l.port(), { path: "/encoded", headers: ae });
    expect(encoded.headers["content-encoding"]).toBe("gzip");
    expect(encoded.body.equals(ENCODED)).toBe(true);
    // A smaller minBytes takes the small body too.
    const l2 = await startLintel(config(engine, up.port, "[{kind: compression, minBytes: 500}]"));
    const now = await get(l2.port(), { path: "/small", headers: ae });
    expect(now.headers["content-encoding"]).toBe("br");
    expect(decoded(now).equals(SMALL)).toBe(true);
  });

  it("leaves Range requests and 206 answers as they are", async () => {
    const up = await site();
    const l = await startLintel(config(engine, up.port, "[{kind: compression}]"));
    const headers = { "accept-encoding": "gzip, br", range: "bytes=100-4195" };
    const part = await get(l.port(), { path: "/range", headers });
    expect(part.status).toBe(206);
    expect(part.headers["content-encoding"]).toBeUndefined();
    expect(part.headers["content-range"]).toBe(`bytes 100-4195/${JSON_BODY.length}`);
    expect(part.body.equals(JSON_BODY.subarray(100, 4196))).toBe(true);
    // An upstream that ignores the Range answers in full: still not encoded for that request.
    const whole = await get(l.port(), { path: "/ignores-range", headers });
    expect(whole.status).toBe(200);
    expect(whole.headers["content-encoding"]).toBeUndefined();
    expect(whole.body.equals(JSON_BODY)).toBe(true);
  });

  for (const encoding of ["br", "gzip"] as const)
    it(`sends a slow stream ${encoding}-compressed as it comes (flushed per batch)`, async () => {
      const first = text(20_000);
      const second = text(20_000);
      let clientDecoded!: () => void;
      const decodedFirst = new Promise<void>((r) => {
        clientDecoded = r;
      });
      const up = await startUpstream(
        "events",
        (_req, res) => {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.write(first);
          // The rest only once the client could decode all of the first part: a proxy
          // that held compressed bytes back until the end would never get it.
          void decodedFirst.then(() => res.end(second));
        },
        { streaming: true },
      );
      const l = await startLintel(config(engine, up.port, "[{kind: compression}]"));
      const out: Buffer[] = [];
      let seen = 0;
      const r = await get(l.port(), {
        path: "/events",
        headers: { "accept-encoding": encoding },
        timeoutMs: 5000,
        onResponse: (res) => {
          const d = encoding === "br" ? createBrotliDecompress() : createGunzip();
          d.on("data", (piece: Buffer) => {
            out.push(piece);
            seen += piece.length;
            if (seen >= first.length) clientDecoded();
          });
          res.on("data", (chunk: Buffer) => d.write(chunk));
          res.on("end", () => d.end());
        },
      });
      expect(r.headers["content-encoding"]).toBe(encoding);
      expect(sha(decoded(r))).toBe(sha(Buffer.concat([first, second])));
    });

  it("keeps backpressure through brotli: a client that does not read stops the upstream", async () => {
    const body = randomBytes(32 * 1024 * 1024);
    const { up, state } = await startFirehose(body);
    const l = await startLintel(
      config(engine, up.port, "[{kind: compression, contentTypes: ['*/*'], brotliQuality: 1}]"),
    );
    let stalled: { waiting: boolean; sent: number } | undefined;
    const r = await get(l.port(), {
      headers: { "accept-encoding": "br" },
      timeoutMs: 30_000,
      onResponse: (res) => {
        res.pause();
        setTimeout(() => {
          stalled = { ...state };
          res.resume();
        }, 700);
      },
    });
    // While the client did not read, the upstream waited for room, far from done: lintel
    // held a bounded amount (zlib's buffers and the sockets'), not the body.
    expect(stalled?.waiting).toBe(true);
    expect(stalled!.sent).toBeLessThan(body.length / 2);
    expect(r.headers["content-encoding"]).toBe("br");
    expect(sha(decoded(r))).toBe(sha(body));
  }, 30_000);

  it("counts compressed responses and bytes per encoding", async () => {
    const up = await site();
    const l = await startLintel(config(engine, up.port, "[{kind: compression}]"));
    const br = await get(l.port(), { headers: { "accept-encoding": "br" } });
    const gz = await get(l.port(), { headers: { "accept-encoding": "gzip" } });
    await get(l.port(), { path: "/png", headers: { "accept-encoding": "gzip" } });
    const m = await metricsJson(l);
    expect(m["rt/r/compression/br/responses"]).toBe(1);
    expect(m["rt/r/compression/br/uncompressed_bytes"]).toBe(JSON_BODY.length);
    expect(m["rt/r/compression/br/compressed_bytes"]).toBe(br.body.length);
    expect(m["rt/r/compression/gzip/responses"]).toBe(1);
    expect(m["rt/r/compression/gzip/compressed_bytes"]).toBe(gz.body.length);
  });

  it("applies a service prefix's layers to that prefix only", async () => {
    const up = await site();
    const service = `  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc/api
      layers:
      - {kind: compression, encodings: [gzip]}
      - {kind: responseHeaders, set: {x-served-by: api-edge}}`;
    const l = await startLintel(config(engine, up.port, "[]", service));
    const ae = { "accept-encoding": "gzip, br" };
    const api = await get(l.port(), { host: "api", headers: ae });
    expect(api.headers["content-encoding"]).toBe("gzip");
    expect(api.headers["x-served-by"]).toBe("api-edge");
    expect(sha(decoded(api))).toBe(sha(JSON_BODY));
    const web = await get(l.port(), { host: "web", headers: ae });
    expect(web.headers["content-encoding"]).toBeUndefined();
    expect(web.headers["x-served-by"]).toBeUndefined();
    expect(web.body.equals(JSON_BODY)).toBe(true);
  });
});

describe.each(ENGINES)("the responseHeaders layer on the %s engine", (engine) => {
  it("sets, adds and removes fields; lintel's own answers get what it sets and adds", async () => {
    const up = await site();
    const dead = await freePort();
    const layers = `[{kind: responseHeaders, set: {x-frame-options: DENY, x-content-type-options: nosniff}, add: {x-extra: [one, two]}, remove: [server, x-powered-by]}]`;
    const l = await startLintel(
      config(engine, up.port, layers).replace(
        `dtab: /svc => /$/inet/127.0.0.1/${up.port}`,
        `dtab: |\n    /svc => /$/inet/127.0.0.1/${up.port};\n    /svc/dead => /$/inet/127.0.0.1/${dead};`,
      ),
    );
    const r = await get(l.port(), { path: "/fields" });
    expect(r.status).toBe(200);
    expect(r.headers["x-frame-options"]).toBe("DENY");
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    expect(r.headers["x-extra"]).toBe("one, two");
    expect(r.headers.server).toBeUndefined();
    expect(r.headers["x-powered-by"]).toBeUndefined();
    // Plain HTTP: the upstream's own HSTS passes (this layer has no hsts).
    expect(r.headers["strict-transport-security"]).toBe("max-age=1");
    expect(r.body.equals(SMALL)).toBe(true);
    const err = await get(l.port(), { host: "dead", path: "/" });
    expect(err.status).toBe(502);
    expect(err.headers["l5d-err"]).toBeDefined();
    expect(err.headers["x-frame-options"]).toBe("DENY");
    expect(err.headers["x-extra"]).toBe("one, two");
  });

  it("sends HSTS on TLS requests only, in place of the upstream's", async () => {
    const up = await site();
    const layers =
      "[{kind: responseHeaders, hsts: {maxAgeSecs: 63072000, includeSubDomains: true}}]";
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: r
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}, layers: ${layers}}
  - {ip: 127.0.0.1, port: 0, engine: ${engine}, tls: {certPath: app.crt, keyPath: app.key}, layers: ${layers}}
`,
      { "app.crt": chainPem(leaf, root), "app.key": leaf.keyPem() },
    );
    const tls = await get(l.port("r", 1), { path: "/fields", tls: true });
    expect(tls.status).toBe(200);
    expect(tls.headers["strict-transport-security"]).toBe("max-age=63072000; includeSubDomains");
    const plain = await get(l.port("r", 0), { path: "/fields" });
    expect(plain.headers["strict-transport-security"]).toBe("max-age=1");
    const plainErr = await get(l.port("r", 0), { path: "/nowhere" });
    expect(plainErr.status).toBe(404);
    expect(plainErr.headers["strict-transport-security"]).toBeUndefined();
  });
});

describe("the compression layer to HTTP/2 clients (net engine)", () => {
  it("answers an h2 stream br-encoded, whole and intact, and a chunked one gzip-encoded", async () => {
    const up = await site();
    const l: Lintel = await startLintel(config("net", up.port, "[{kind: compression}]"));
    const session = await new Promise<ReturnType<typeof connectH2>>((resolve, reject) => {
      const s = connectH2(`http://127.0.0.1:${l.port()}`, () => resolve(s));
      s.once("error", reject);
      onCleanup(() => {
        s.destroy();
      });
    });
    const fetch = (path: string, ae: string) =>
      new Promise<Got>((resolve, reject) => {
        const stream = session.request({
          ":path": path,
          ":authority": "svc",
          "accept-encoding": ae,
        });
        let head: Record<string, unknown> = {};
        const chunks: Buffer[] = [];
        stream.on("response", (h) => {
          head = h;
        });
        stream.on("data", (d: Buffer) => chunks.push(d));
        stream.on("end", () =>
          resolve({
            status: Number(head[":status"]),
            headers: head as IncomingHttpHeaders,
            body: Buffer.concat(chunks),
          }),
        );
        stream.on("error", reject);
      });
    const [br, gz] = await Promise.all([fetch("/json", "br, gzip"), fetch("/chunked", "gzip")]);
    expect(br.status).toBe(200);
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers["content-length"]).toBeUndefined();
    expect(sha(decoded(br))).toBe(sha(JSON_BODY));
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(sha(decoded(gz))).toBe(sha(JSON_BODY));
  });
});
