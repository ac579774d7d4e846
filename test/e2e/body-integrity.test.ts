// Response bodies arrive byte for byte while backpressure starts and stops them: lintel
// reads upstream responses into a buffer it reuses, so any piece an engine keeps past a
// read (a write the client is not ready for) must be a copy. Random bytes, a client that
// keeps pausing, both engines, both framings, plain and TLS upstreams; the digests must
// match.

import { createHash, randomBytes } from "node:crypto";
import { request, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Issued, TestCa } from "../tls/test-ca.js";
import { cleanup, closeOnCleanup, ENGINES, startLintel, startUpstream } from "./harness.js";

afterEach(cleanup);

let ca: TestCa;
let upstreamCert: Issued;
beforeAll(async () => {
  ca = await TestCa.root("Body Integrity Root");
  upstreamCert = await ca.leaf({ dns: ["source.example.com"] });
});

/** 8 MiB of random bytes, sent by the upstream in 48 KiB pieces. */
const BODY = randomBytes(8 * 1024 * 1024);
const PIECE = 48 * 1024;
const DIGEST = createHash("sha256").update(BODY).digest("hex");

/**
 * GETs through lintel, pausing the response for `pauseMs` whenever `everyBytes` more have
 * arrived; returns its status, length and digest.
 */
function slowDigest(
  port: number,
  everyBytes: number,
  pauseMs: number,
): Promise<{ status: number; bytes: number; digest: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/", headers: { host: "source" }, agent: false },
      (res) => {
        const hash = createHash("sha256");
        let bytes = 0;
        let sincePause = 0;
        res.on("data", (d: Buffer) => {
          hash.update(d);
          bytes += d.length;
          sincePause += d.length;
          if (sincePause >= everyBytes) {
            sincePause = 0;
            res.pause();
            setTimeout(() => res.resume(), pauseMs);
          }
        });
        res.on("end", () =>
          resolve({ status: res.statusCode!, bytes, digest: hash.digest("hex") }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(30_000, () => req.destroy(new Error("the download timed out")));
    req.end();
  });
}

/** Sends BODY in PIECE-sized writes, honouring backpressure. */
function sendBody(res: ServerResponse, framing: Framing): void {
  res.writeHead(200, framing === "content-length" ? { "content-length": BODY.length } : {});
  let at = 0;
  const step = () => {
    while (at < BODY.length) {
      const piece = BODY.subarray(at, at + PIECE);
      at += piece.length;
      if (!res.write(piece)) {
        res.once("drain", step);
        return;
      }
    }
    res.end();
  };
  step();
}

type Framing = "content-length" | "chunked";

/** An HTTPS upstream answering BODY; returns its port. */
async function startHttpsSource(framing: Framing): Promise<number> {
  const server = createHttpsServer(
    { cert: upstreamCert.certPem, key: upstreamCert.keyPem() },
    (_req, res) => sendBody(res, framing),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  closeOnCleanup(server);
  const a = server.address();
  return typeof a === "object" && a ? a.port : 0;
}

const cases = ENGINES.flatMap((engine) =>
  (["plain", "tls"] as const).flatMap((upstream) =>
    (["content-length", "chunked"] as const).map((framing) => ({ engine, upstream, framing })),
  ),
);

describe("response bodies", () => {
  it.each(cases)(
    "arrive intact while a slow client pauses them: $engine engine, $upstream upstream, $framing",
    async ({ engine, upstream, framing }) => {
      const port =
        upstream === "tls"
          ? await startHttpsSource(framing)
          : (
              await startUpstream("source", (_req, res) => sendBody(res, framing), {
                streaming: true,
              })
            ).port;
      const client =
        upstream === "tls"
          ? "\n  client: {tls: {commonName: source.example.com, trustCerts: [ca.pem]}}"
          : "";
      const l = await startLintel(
        `
routers:
- protocol: http
  label: integrity
  dtab: /svc => /$/inet/127.0.0.1/${port}${client}
  servers: [{ip: 127.0.0.1, port: 0, engine: ${engine}}]
`,
        { "ca.pem": ca.certPem },
      );
      // Two at once, so the reused read buffer carries both responses' bytes in turn.
      const [a, b] = await Promise.all([
        slowDigest(l.port(), 256 * 1024, 20),
        slowDigest(l.port(), 256 * 1024, 20),
      ]);
      for (const r of [a, b]) {
        expect(r.status).toBe(200);
        expect(r.bytes).toBe(BODY.length);
        expect(r.digest).toBe(DIGEST);
      }
    },
    60_000,
  );
});

describe.each(ENGINES)("a length-framed response read slowly on the %s engine", (engine) => {
  it("arrives whole, three times over one lintel", async () => {
    const up = await startUpstream(
      "source",
      (_req, res) => {
        res.writeHead(200, { "content-length": BODY.length });
        res.end(BODY);
      },
      { streaming: true },
    );
    const l = await startLintel(`
routers:
- protocol: http
  label: late
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers: [{ip: 127.0.0.1, port: 0, engine: ${engine}}]
`);
    for (let i = 0; i < 3; i++) {
      // A pause after every read.
      const r = await slowDigest(l.port(), 1, 2);
      expect(r.bytes).toBe(BODY.length);
      expect(r.digest).toBe(DIGEST);
    }
  });
});
