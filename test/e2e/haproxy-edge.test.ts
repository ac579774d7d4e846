// Scenario S1 with a real HAProxy in front: HAProxy in TCP mode passes TLS through by SNI
// and prepends a PROXY header (v2 with send-proxy-v2, v1 with send-proxy); lintel (net engine, TLS with several certificates)
// picks the certificate by SNI and puts the client's address, not a spoofed one, in
// X-Forwarded-For for the service.

import { writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { TestCa } from "../tls/test-ca.js";
import {
  cleanup,
  freePort,
  requireBinary,
  runHaproxy,
  startLintel,
  startUpstream,
  tempDir,
} from "./harness.js";

afterEach(cleanup);

const HAPROXY = requireBinary("haproxy", "haproxy", "the HAProxy end-to-end test");

/** The client connects from this loopback address, so it differs from HAProxy's own. */
const CLIENT_IP = "127.0.0.5";

async function startHaproxy(frontPort: number, lintelPort: number, send: string): Promise<void> {
  const dir = tempDir("lintel-haproxy-");
  const cfg = join(dir, "haproxy.cfg");
  // The shipped deploy/haproxy/edge-frontend.cfg, reduced to one edge on loopback.
  writeFileSync(
    cfg,
    `global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend https_in
  bind 127.0.0.1:${frontPort}
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  tcp-request content reject
  default_backend edges
backend edges
  server edge1 127.0.0.1:${lintelPort} ${send}
`,
  );
  await runHaproxy(HAPROXY!, cfg, frontPort);
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly peerCn: string | undefined;
}

function get(
  port: number,
  servername: string,
  ca: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        servername,
        ca,
        localAddress: CLIENT_IP,
        path: "/",
        headers: { host: servername, ...headers },
        agent: false,
      },
      (res) => {
        const cn = (res.socket as TLSSocket).getPeerCertificate().subject?.CN;
        let body = "";
        res.on("data", (d) => {
          body += d;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode!,
            body,
            peerCn: typeof cn === "string" ? cn : undefined,
          }),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

describe.skipIf(HAPROXY === undefined)(
  "HAProxy (TCP, SNI passthrough, PROXY header) in front of lintel",
  () => {
    it.each([
      { proxyProtocol: "v2", send: "send-proxy-v2" },
      { proxyProtocol: "v1", send: "send-proxy" },
      { proxyProtocol: "any", send: "send-proxy" },
      { proxyProtocol: "any", send: "send-proxy-v2" },
    ])(
      "proxyProtocol: $proxyProtocol, HAProxy $send: SNI picks the certificate, the client address goes into X-Forwarded-For",
      async ({ proxyProtocol, send }) => {
        const root = await TestCa.root();
        const user = await root.leaf({ dns: ["user.example"] });
        const booking = await root.leaf({ dns: ["booking.example"] });
        const fallback = await root.leaf({ dns: ["edge.example"] });
        const up = await startUpstream("service");
        const lintelPort = await freePort();
        await startLintel(
          `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - ip: 127.0.0.1
    port: ${lintelPort}
    engine: net
    clearContext: true
    proxyProtocol: ${proxyProtocol}
    proxyProtocolFrom: [127.0.0.1]
    tls:
      certPath: certs/default.crt
      keyPath: certs/default.key
      certs:
      - {certPath: certs/user.crt, keyPath: certs/user.key}
      - {certPath: certs/booking.crt, keyPath: certs/booking.key}
`,
          {
            "certs/default.crt": fallback.certPem,
            "certs/default.key": fallback.keyPem(),
            "certs/user.crt": user.certPem,
            "certs/user.key": user.keyPem(),
            "certs/booking.crt": booking.certPem,
            "certs/booking.key": booking.keyPem(),
          },
        );
        const front = await freePort();
        await startHaproxy(front, lintelPort, send);
        const ca = root.certPem;

        const a = await get(front, "user.example", ca, {
          "x-forwarded-for": "6.6.6.6",
          "l5d-dtab": "/svc => /$/fail",
        });
        expect(a.status).toBe(200);
        expect(a.peerCn).toBe("user.example");
        const b = await get(front, "booking.example", ca);
        expect(b.peerCn).toBe("booking.example");

        // The service sees the client's own address (from the PROXY header), not the spoofed
        // one, not HAProxy's; the internet's l5d-dtab had no effect.
        expect(up.seen).toHaveLength(2);
        expect(up.seen[0]!.headers["x-forwarded-for"]).toBe(CLIENT_IP);
        expect(up.seen[0]!.headers["x-forwarded-proto"]).toBe("https");
        expect(up.seen[0]!.headers["l5d-dtab"]).toBeUndefined();
        expect(up.seen[1]!.headers["x-forwarded-for"]).toBe(CLIENT_IP);
      },
    );
  },
);
