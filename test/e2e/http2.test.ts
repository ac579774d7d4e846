// HTTP/2 on the net engine: ALPN h2 over TLS and prior knowledge in cleartext, with real
// clients (curl, Node's http2 client) in front and an HTTP/1.1 upstream behind, so a
// stream is identified, bound and forwarded as any request is.

import { execFile } from "node:child_process";
import {
  type ClientHttp2Session,
  connect,
  createServer as createH2Server,
  createSecureServer as createSecureH2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from "node:http2";
import { connect as connectTcp } from "node:net";
import { connect as connectTls } from "node:tls";
import { promisify } from "node:util";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { encodeProxyV2 } from "../../gateway/server/proxy-protocol.js";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import { cleanup, echo, onCleanup, startLintel, startUpstream, type Upstream } from "./harness.js";

afterEach(cleanup);

const run = promisify(execFile);

let root: TestCa;
let leaf: Issued;
beforeAll(async () => {
  root = await TestCa.root();
  leaf = await root.leaf({ dns: ["app.test"] });
}, 30_000);

/** An upstream that answers with a chunked body and trailers on /trailers, else echoes. */
async function upstream(): Promise<Upstream> {
  const plain = echo("up");
  return startUpstream("up", (req, res, body) => {
    if (req.url === "/trailers") {
      res.writeHead(200, { "content-type": "text/plain", trailer: "x-checksum" });
      res.write("part one, ");
      res.addTrailers({ "x-checksum": "abc123" });
      res.end("part two");
      return;
    }
    plain(req, res, body);
  });
}

async function lintel(up: Upstream, server = "") {
  return startLintel(
    `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: h2
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: net${server}}
  - {ip: 127.0.0.1, port: 0, engine: net, tls: {certPath: app.crt, keyPath: app.key}${server}}
`,
    { "app.crt": chainPem(leaf, root), "app.key": leaf.keyPem() },
  );
}

/** curl's answer: the HTTP version it used, the status and the body. */
async function curl(args: string[]): Promise<{ version: string; status: string; body: string }> {
  const { stdout } = await run("curl", [
    "-sS",
    "--max-time",
    "10",
    "-w",
    "\n%{http_version} %{http_code}",
    ...args,
  ]);
  const at = stdout.lastIndexOf("\n");
  const [version, status] = stdout.slice(at + 1).split(" ");
  return { version: version!, status: status!, body: stdout.slice(0, at) };
}

function session(url: string, options = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = connect(url, options, () => resolve(s));
    s.once("error", reject);
    onCleanup(() => {
      s.destroy();
    });
  });
}

/** One request on a session: status, headers, body and trailers. */
function request(
  s: ClientHttp2Session,
  headers: Record<string, string>,
  body?: string,
): Promise<{
  status: number;
  headers: Record<string, unknown>;
  body: string;
  trailers: Record<string, unknown>;
}> {
  return new Promise((resolve, reject) => {
    const stream = s.request(headers, { endStream: body === undefined });
    let status = 0;
    let head: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    let text = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      head = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.setEncoding("utf8");
    stream.on("data", (d: string) => {
      text += d;
    });
    stream.on("end", () => resolve({ status, headers: head, body: text, trailers }));
    stream.on("error", reject);
    if (body !== undefined) stream.end(body);
  });
}

describe("HTTP/2 on the net engine", () => {
  it("serves curl over TLS with ALPN h2, and HTTP/1.1 to clients that ask for it", async () => {
    const up = await upstream();
    const l = await lintel(up);
    const tls = l.port("h2", 1);
    const common = ["--cacert", `${l.dir}/ca.pem`, "--resolve", `app.test:${tls}:127.0.0.1`];
    await import("node:fs").then((fs) => fs.writeFileSync(`${l.dir}/ca.pem`, root.certPem));
    const h2 = await curl([...common, "--http2", `https://app.test:${tls}/over-h2`]);
    const h1 = await curl([...common, "--http1.1", `https://app.test:${tls}/over-h1`]);
    expect([h2.version, h2.status, h1.version, h1.status]).toEqual(["2", "200", "1.1", "200"]);
    // Both reached the upstream as HTTP/1.1 requests with the Host the client named.
    expect(up.seen.map((s) => `${s.url} ${s.headers.host}`)).toEqual([
      `/over-h2 app.test:${tls}`,
      `/over-h1 app.test:${tls}`,
    ]);
  });

  it("serves cleartext HTTP/2 with prior knowledge on the same port as HTTP/1", async () => {
    const up = await upstream();
    const l = await lintel(up);
    const port = l.port("h2", 0);
    const h2 = await curl(["--http2-prior-knowledge", `http://127.0.0.1:${port}/prior`]);
    const h1 = await curl([`http://127.0.0.1:${port}/plain`]);
    expect([h2.version, h2.status, h1.version, h1.status]).toEqual(["2", "200", "1.1", "200"]);
  });

  it("upgrades a cleartext request that asks for h2c, the request being stream 1", async () => {
    const up = await upstream();
    const l = await lintel(up);
    const port = l.port("h2", 0);
    // Two requests on one connection: the first upgrades, the second is a stream after it.
    const { stdout } = await run("curl", [
      "-sS",
      "--max-time",
      "10",
      "--http2",
      "-H",
      "x-from-client: kept",
      "-w",
      "\n%{http_version} %{http_code} %{num_connects}\n",
      `http://127.0.0.1:${port}/first`,
      `http://127.0.0.1:${port}/second`,
    ]);
    const answers = stdout.split("\n").filter((line) => /^\d/.test(line));
    expect(answers).toEqual(["2 200 1", "2 200 0"]);
    expect(up.seen.map((s) => s.url)).toEqual(["/first", "/second"]);
    const first = up.seen[0]!.headers;
    expect(first.host).toBe(`127.0.0.1:${port}`);
    expect(first["x-from-client"]).toBe("kept");
    // The upgrade's own fields stay on the hop they were meant for.
    expect([first.upgrade, first["http2-settings"]]).toEqual([undefined, undefined]);
  });

  it("carries an upgraded request's head larger than one frame (HEADERS + CONTINUATION)", async () => {
    const up = await startUpstream("up", echo("up"), { maxHeaderSize: 128 * 1024 });
    const l = await startLintel(`
routers:
- protocol: http
  label: big
  maxHeadersKB: 64
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: net}
`);
    const big = "v".repeat(40_000);
    const r = await curl(["--http2", "-H", `x-big: ${big}`, `http://127.0.0.1:${l.port()}/big`]);
    expect([r.version, r.status]).toEqual(["2", "200"]);
    expect(up.seen[0]!.headers["x-big"]).toBe(big);
  });

  it("serves an h2c request with a body in HTTP/1.1, and nghttp's upgrade in HTTP/2", async () => {
    const up = await upstream();
    const l = await lintel(up);
    const port = l.port("h2", 0);
    const post = await curl(["--http2", "-d", "a body", `http://127.0.0.1:${port}/post`]);
    expect([post.version, post.status]).toEqual(["1.1", "200"]);
    expect(String(up.seen[0]!.body)).toBe("a body");
    const nghttp = await run("nghttp", ["-u", "-v", `http://127.0.0.1:${port}/nghttp`]);
    expect(nghttp.stdout).toContain("HTTP Upgrade response");
    expect(nghttp.stdout).toMatch(/recv HEADERS frame <length=\d+, flags=0x04, stream_id=1>/);
    expect(up.seen[1]!.url).toBe("/nghttp");
  });

  it("runs many concurrent streams on one connection, bodies both ways", async () => {
    const up = await upstream();
    const l = await lintel(up);
    const s = await session(`http://127.0.0.1:${l.port("h2", 0)}`);
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        request(
          s,
          { ":method": "POST", ":path": `/stream/${i}`, ":authority": "svc" },
          `body-${i}`,
        ),
      ),
    );
    expect(replies.every((r) => r.status === 200)).toBe(true);
    // Each stream's body reached the upstream with its own request, and its answer came back.
    for (const [i, r] of replies.entries()) expect(JSON.parse(r.body).url).toBe(`/stream/${i}`);
    const bodies = new Map(up.seen.map((s) => [s.url, s.body.toString()]));
    expect(Array.from({ length: 50 }, (_, i) => bodies.get(`/stream/${i}`))).toEqual(
      Array.from({ length: 50 }, (_, i) => `body-${i}`),
    );
    // The limit lintel announces (HAProxy and nginx use 100 and 128).
    expect(s.remoteSettings.maxConcurrentStreams).toBe(100);
  });

  it("passes trailers to a client that takes them (te: trailers)", async () => {
    const up = await upstream();
    const l = await lintel(up);
    const s = await session(`https://127.0.0.1:${l.port("h2", 1)}`, {
      ca: root.certPem,
      servername: "app.test",
    });
    const r = await request(s, {
      ":path": "/trailers",
      ":authority": "app.test",
      te: "trailers",
    });
    expect({ status: r.status, body: r.body, checksum: r.trailers["x-checksum"] }).toEqual({
      status: 200,
      body: "part one, part two",
      checksum: "abc123",
    });
    // Without te: trailers the body arrives whole, and no trailers.
    const plain = await request(s, { ":path": "/trailers", ":authority": "app.test" });
    expect({ body: plain.body, trailers: plain.trailers["x-checksum"] }).toEqual({
      body: "part one, part two",
      trailers: undefined,
    });
  });

  it("chooses the upstream protocol per client: h2 in cleartext and over TLS, HTTP/1.1 beside", async () => {
    const h1 = await upstream();
    const answer = (name: string) => (req: Http2ServerRequest, res: Http2ServerResponse) =>
      res.end(`${name} ${req.httpVersion} ${req.url}`);
    const plain = createH2Server(answer("plain"));
    const secure = createSecureH2Server(
      { cert: chainPem(leaf, root), key: leaf.keyPem() },
      answer("secure"),
    );
    const ports: number[] = [];
    for (const server of [plain, secure]) {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      onCleanup(() => new Promise<void>((r) => server.close(() => r())));
      ports.push((server.address() as { port: number }).port);
    }
    const l = await startLintel(
      `
routers:
- protocol: http
  label: mixed
  dtab: |
    /svc/h1 => /$/inet/127.0.0.1/${h1.port};
    /svc/plain => /$/inet/127.0.0.1/${ports[0]};
    /svc/secure => /$/inet/127.0.0.1/${ports[1]};
  client:
    kind: io.l5d.static
    configs:
    - {prefix: "/$/inet/127.0.0.1/${ports[0]}", protocol: h2}
    - prefix: "/$/inet/127.0.0.1/${ports[1]}"
      protocol: h2
      tls: {commonName: app.test, trustCerts: [ca.pem]}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: net}
`,
      { "ca.pem": root.certPem },
    );
    const got: string[] = [];
    for (const host of ["h1", "plain", "secure"]) {
      const r = await curl(["-H", `Host: ${host}`, `http://127.0.0.1:${l.port()}/${host}`]);
      got.push(`${r.status} ${r.body.split("\n")[0]}`);
    }
    expect(got[0]).toMatch(/^200 /);
    expect(got.slice(1)).toEqual(["200 plain 2.0 /plain", "200 secure 2.0 /secure"]);
    expect(h1.seen.map((s) => s.url)).toEqual(["/h1"]);
  });

  it("answers lintel's own errors on the stream, and the session goes on", async () => {
    const up = await upstream();
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: h2
  dtab: /svc/known => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: net}
`);
    const s = await session(`http://127.0.0.1:${l.port()}`);
    const miss = await request(s, { ":path": "/", ":authority": "unknown" });
    const hit = await request(s, { ":path": "/", ":authority": "known" });
    expect([miss.status, hit.status]).toEqual([502, 200]);
    expect(decodeURIComponent(String(miss.headers["l5d-err"]))).toContain("/svc/unknown");
  });

  it("with http2: false, offers only HTTP/1 by ALPN and refuses the preface", async () => {
    const up = await upstream();
    const l = await lintel(up, ", http2: false");
    const tls = l.port("h2", 1);
    await import("node:fs").then((fs) => fs.writeFileSync(`${l.dir}/ca.pem`, root.certPem));
    const r = await curl([
      "--cacert",
      `${l.dir}/ca.pem`,
      "--resolve",
      `app.test:${tls}:127.0.0.1`,
      "--http2",
      `https://app.test:${tls}/`,
    ]);
    expect([r.version, r.status]).toEqual(["1.1", "200"]);
    const upgrade = await curl(["--http2", `http://127.0.0.1:${l.port("h2", 0)}/`]);
    expect([upgrade.version, upgrade.status]).toEqual(["1.1", "200"]);
    const prior = await run("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--max-time",
      "5",
      "--http2-prior-knowledge",
      `http://127.0.0.1:${l.port("h2", 0)}/`,
    ]).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    // The preface is not an HTTP/1 request line lintel serves.
    expect(prior.stdout).not.toBe("200");
  });

  it("knows the client a PROXY v2 header names on an HTTP/2 connection over TLS", async () => {
    const up = await upstream();
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: h2
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - {ip: 127.0.0.1, port: 0, clearContext: true, proxyProtocol: v2, proxyProtocolFrom: [127.0.0.1], tls: {certPath: app.crt, keyPath: app.key}}
`,
      { "app.crt": chainPem(leaf, root), "app.key": leaf.keyPem() },
    );
    const raw = connectTcp(l.port(), "127.0.0.1");
    await new Promise<void>((resolve) => raw.once("connect", () => resolve()));
    raw.write(
      encodeProxyV2({ address: "203.0.113.9", port: 4444 }, { address: "127.0.0.1", port: 443 }),
    );
    const s = await session("https://app.test", {
      createConnection: () =>
        connectTls({
          socket: raw,
          servername: "app.test",
          ca: root.certPem,
          ALPNProtocols: ["h2"],
        }),
    });
    const r = await request(s, { ":path": "/proxied", ":authority": "app.test" });
    expect(r.status).toBe(200);
    expect(up.seen[0]!.headers["x-forwarded-for"]).toBe("203.0.113.9");
  });
});
