// The handshake and h2 rows' reference point: Node's own TLS and HTTP/2 servers answering
// every request themselves, nothing proxied, pinned to the proxies' core like a proxy.
// No engine built on node:tls or node:http2 (lintel's net engine is one) can serve more
// than these on those rows: they are Node's ceiling there, next to HAProxy's numbers.
//
//   node dist/loadtest/lib/node-ceiling.js TLS_PORT H2_PORT CERT_FILE KEY_FILE BODY_BYTES
//
// TLS_PORT speaks HTTP/1.1 over node:tls with the least parsing that answers wrk (a
// request ends at its blank line; `connection: close` ends the connection after the
// answer); H2_PORT is node:http2 over TLS (ALPN h2). Both answer BODY_BYTES of "x", the
// bench backend's body.

import { readFileSync } from "node:fs";
import { createSecureServer } from "node:http2";
import { createServer as createTlsServer } from "node:tls";

const [tlsPort, h2Port, certFile, keyFile, bodyBytes] = process.argv.slice(2);
if (!tlsPort || !h2Port || !certFile || !keyFile || !bodyBytes) {
  console.error("usage: node node-ceiling.js TLS_PORT H2_PORT CERT_FILE KEY_FILE BODY_BYTES");
  process.exit(2);
}
const cert = readFileSync(certFile);
const key = readFileSync(keyFile);
const body = Buffer.alloc(Number(bodyBytes), "x");
const head = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n`;
const keepAlive = Buffer.concat([Buffer.from(`${head}\r\n`), body]);
const closing = Buffer.concat([Buffer.from(`${head}connection: close\r\n\r\n`), body]);
const END_OF_HEAD = Buffer.from("\r\n\r\n");
const CLOSE = /\r\nconnection:\s*close\r\n/i;

const tls = createTlsServer({ cert, key, ALPNProtocols: ["http/1.1"] }, (socket) => {
  let pending = "";
  socket.on("data", (d: Buffer) => {
    pending += d.toString("latin1");
    for (;;) {
      const end = pending.indexOf("\r\n\r\n");
      if (end < 0) return;
      const request = pending.slice(0, end + END_OF_HEAD.length);
      pending = pending.slice(end + END_OF_HEAD.length);
      if (CLOSE.test(request)) {
        socket.end(closing);
        return;
      }
      socket.write(keepAlive);
    }
  });
  socket.on("error", () => socket.destroy());
});
tls.on("tlsClientError", () => {});

const h2 = createSecureServer({ cert, key });
h2.on("stream", (stream) => {
  stream.respond({ ":status": 200, "content-type": "text/plain", "content-length": body.length });
  stream.end(body);
});
h2.on("sessionError", () => {});

tls.listen(Number(tlsPort), "127.0.0.1", () =>
  h2.listen(Number(h2Port), "127.0.0.1", () =>
    console.log(`node ceiling: node:tls on ${tlsPort}, node:http2 on ${h2Port}`),
  ),
);
for (const sig of ["SIGTERM", "SIGINT"] as const)
  process.once(sig, () => {
    tls.close();
    h2.close();
    process.exit(0);
  });
