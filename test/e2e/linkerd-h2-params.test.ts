// Linkerd 1's h2 router, server and client parameters, written as Linkerd configs write
// them, and what each does in lintel: the SETTINGS its HTTP/2 connections announce both
// ways, the client certificate forwarded upstream, the trace format sent, and the access
// log under its h2 name. (Service-level classificationTimeoutMs is in grpc.test.ts.)

import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  createServer as createH2Server,
  connect as h2Connect,
  type ServerHttp2Session,
  type Settings,
} from "node:http2";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import {
  cleanup,
  configErrors,
  eventually,
  freePort,
  onCleanup,
  startLintel,
  startUpstream,
  tempDir,
} from "./harness.js";

afterEach(cleanup);

/** The SETTINGS a peer announced on a new HTTP/2 connection to `url`. */
async function settingsOf(url: string): Promise<Settings> {
  const session = h2Connect(url);
  onCleanup(() => session.destroy());
  return new Promise((resolve, reject) => {
    session.once("remoteSettings", resolve);
    session.once("error", reject);
  });
}

describe("Linkerd h2 parameters", () => {
  it("a server announces the SETTINGS its config names", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: h2
  experimental: true
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  client: {protocol: http}
  servers:
  - ip: 127.0.0.1
    port: 0
    maxConcurrentStreamsPerConnection: 1000
    initialStreamWindowBytes: 1048576
    maxFrameBytes: 32768
    headerTableBytes: 8192
    maxHeaderListBytes: 40000
    windowUpdateRatio: 0.75
`);
    expect(await settingsOf(`http://127.0.0.1:${l.port()}`)).toMatchObject({
      maxConcurrentStreams: 1000,
      initialWindowSize: 1_048_576,
      maxFrameSize: 32_768,
      headerTableSize: 8192,
      maxHeaderListSize: 40_000,
      enablePush: false,
    });
  });

  it("a client announces its SETTINGS to the upstream", async () => {
    // An HTTP/2 upstream that answers and keeps what each connection announced.
    const seen: Settings[] = [];
    const h2 = createH2Server();
    const sessions = new Set<ServerHttp2Session>();
    h2.on("session", (s: ServerHttp2Session) => {
      sessions.add(s);
      s.once("remoteSettings", (v) => seen.push(v));
    });
    h2.on("stream", (stream) => {
      stream.respond({ ":status": 200 });
      stream.end("ok");
    });
    await new Promise<void>((r) => h2.listen(0, "127.0.0.1", r));
    onCleanup(
      () =>
        new Promise<void>((r) => {
          for (const s of sessions) s.destroy();
          h2.close(() => r());
        }),
    );
    const upPort = (h2.address() as AddressInfo).port;
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: h2
  dtab: /svc => /$/inet/127.0.0.1/${upPort}
  client:
    initialStreamWindowBytes: 262144
    maxFrameBytes: 65536
    headerTableBytes: 0
    maxHeaderListBytes: 50000
    windowUpdateRatio: 0.99
  servers:
  - {ip: 127.0.0.1, port: 0}
`);
    const r = await fetch(`http://127.0.0.1:${l.port()}/`, { headers: { host: "app" } });
    expect([r.status, await r.text()]).toEqual([200, "ok"]);
    await eventually(async () => seen.length > 0, 5000, "the upstream to see lintel's SETTINGS");
    expect(seen[0]).toMatchObject({
      initialWindowSize: 262_144,
      maxFrameSize: 65_536,
      headerTableSize: 0,
      maxHeaderListSize: 50_000,
    });
  });

  describe("forwardClientCert", () => {
    let root: TestCa;
    let server: Issued;
    let clientCert: Issued;
    beforeAll(async () => {
      root = await TestCa.root();
      server = await root.leaf({ dns: ["edge.test"] });
      clientCert = await root.leaf({ dns: ["caller.test"], client: true });
    }, 30_000);

    async function mtlsGet(forward: boolean): Promise<string | undefined> {
      const up = await startUpstream("up");
      const l = await startLintel(
        `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  client: {forwardClientCert: ${forward}}
  servers:
  - ip: 127.0.0.1
    port: 0
    tls: {certPath: edge.crt, keyPath: edge.key, caCertPath: ca.pem, requireClientAuth: true}
`,
        {
          "edge.crt": chainPem(server, root),
          "edge.key": server.keyPem(),
          "ca.pem": root.certPem,
        },
      );
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(
          {
            host: "127.0.0.1",
            port: l.port(),
            servername: "edge.test",
            headers: { host: "app", "x-forwarded-client-cert": "Hash=forged" },
            ca: root.certPem,
            cert: clientCert.certPem,
            key: clientCert.keyPem(),
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode!));
          },
        );
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(200);
      const v = up.seen[0]!.headers["x-forwarded-client-cert"];
      return Array.isArray(v) ? v.join(",") : v;
    }

    it("sends the downstream's certificate upstream as Linkerd writes it, replacing any sent", async () => {
      const der = new X509Certificate(clientCert.certPem).raw;
      const hash = createHash("sha256").update(der).digest("hex").toUpperCase();
      expect(await mtlsGet(true)).toBe(`Hash=${hash};DNS=caller.test;Subject="CN=caller.test"`);
    });

    it("leaves the field alone when off", async () => {
      expect(await mtlsGet(false)).toBe("Hash=forged");
    });
  });

  it("tracePropagator chooses the trace format sent when a request brings none", async () => {
    const sent = async (propagator: string) => {
      const up = await startUpstream("up");
      const nobody = await freePort();
      const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
telemetry:
- {kind: io.l5d.zipkin, host: 127.0.0.1, port: ${nobody}, sampleRate: 1.0}
routers:
- protocol: h2
  tracePropagator: {kind: ${propagator}}
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  client: {protocol: http}
  servers:
  - {ip: 127.0.0.1, port: 0}
`);
      await fetch(`http://127.0.0.1:${l.port()}/`, { headers: { host: "app" } });
      const h = up.seen[0]!.headers;
      return { l5d: "l5d-ctx-trace" in h, b3: "x-b3-traceid" in h };
    };
    expect(await sent("io.l5d.default")).toEqual({ l5d: true, b3: false });
    expect(await sent("io.l5d.zipkin")).toEqual({ l5d: false, b3: true });
  });

  it("h2AccessLog writes the router's access log", async () => {
    const up = await startUpstream("up");
    const dir = tempDir();
    const file = join(dir, "access.log");
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: h2
  h2AccessLog: ${file}
  h2AccessLogAppend: true
  h2AccessLogRotateCount: -1
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  client: {protocol: http}
  servers:
  - {ip: 127.0.0.1, port: 0}
`,
      {},
      dir,
    );
    await fetch(`http://127.0.0.1:${l.port()}/logged`, { headers: { host: "app" } });
    await eventually(
      async () => {
        try {
          return readFileSync(file, "utf8").includes("GET /logged");
        } catch {
          return false;
        }
      },
      5000,
      "the access log line",
    );
  });
});

describe("Linkerd h2 parameters lintel refuses, and why", () => {
  it.each([
    [
      "h2AccessLog on an http router",
      "- protocol: http\n  h2AccessLog: a.log",
      "h2AccessLog is an h2 router's key",
    ],
    [
      "an access log started anew",
      "- protocol: h2\n  h2AccessLog: a.log\n  h2AccessLogAppend: false",
      "lintel appends",
    ],
    [
      "access log rotation",
      "- protocol: h2\n  h2AccessLog: a.log\n  h2AccessLogRollPolicy: daily",
      "access log rotation is left to the log shipper",
    ],
    [
      "HTTP/2 settings on a uws server",
      "- protocol: h2\n  servers:\n  - {port: 0, engine: uws, maxFrameBytes: 32768}",
      "HTTP/2 settings need engine: net",
    ],
    [
      "a frame size HTTP/2 does not allow",
      "- protocol: h2\n  servers:\n  - {port: 0, maxFrameBytes: 1024}",
      "maxFrameBytes: expected an integer from 16384 to 16777215",
    ],
    [
      "a window update ratio of 1",
      "- protocol: h2\n  client: {windowUpdateRatio: 1}",
      "a number between 0 and 1, exclusive",
    ],
  ])("%s", async (_, router, message) => {
    expect(await configErrors(`routers:\n${router}\n`)).toContain(message);
  });
});
