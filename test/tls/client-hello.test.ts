// The ClientHello reader against real ClientHellos (captured from Node's TLS client),
// split at every byte, spread over several records, and against what is not TLS.

import { createServer, type Server } from "node:net";
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readClientHello } from "../../tls/client-hello.js";

let server: Server;
let port = 0;
let nextHello: ((b: Buffer) => void) | undefined;

beforeAll(async () => {
  // Records the first bytes of each connection, then hangs up.
  server = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        nextHello?.(buf);
        s.destroy();
      }
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});
afterAll(() => server.close());

function captureHello(servername: string | undefined, ALPNProtocols?: string[]): Promise<Buffer> {
  return new Promise((resolve) => {
    nextHello = resolve;
    const s = connect({
      port,
      host: "127.0.0.1",
      servername,
      ALPNProtocols,
      rejectUnauthorized: false,
    });
    s.on("error", () => {});
  });
}

/** The same handshake message cut into records of at most `size` bytes. */
function reRecord(hello: Buffer, size: number): Buffer {
  const body = hello.subarray(5);
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) {
    const part = body.subarray(at, at + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

describe("readClientHello", () => {
  it("finds the server name a client sends", async () => {
    const hello = await captureHello("app.example.com");
    expect(readClientHello(hello)).toEqual({
      status: "hello",
      serverName: "app.example.com",
      alpn: [],
    });
  });

  it("reads the application protocols offered (ALPN), as an ACME TLS-ALPN-01 validation sends them", async () => {
    expect(readClientHello(await captureHello("app.example.com", ["acme-tls/1"]))).toEqual({
      status: "hello",
      serverName: "app.example.com",
      alpn: ["acme-tls/1"],
    });
    expect(
      readClientHello(await captureHello("app.example.com", ["h2", "http/1.1"])),
    ).toMatchObject({
      alpn: ["h2", "http/1.1"],
    });
  });

  it("reports no server name for a client that sends none", async () => {
    // Node sends no SNI when the name is empty (as for an IP address).
    const hello = await captureHello("");
    expect(readClientHello(hello)).toEqual({ status: "hello", serverName: undefined, alpn: [] });
  });

  it("asks for more at every byte until the ClientHello is complete", async () => {
    const hello = await captureHello("app.example.com");
    for (let n = 0; n < hello.length; n++) {
      expect(readClientHello(hello.subarray(0, n)).status, `${n} bytes`).toBe("more");
    }
    // Bytes after the ClientHello (a client that does not wait) change nothing.
    const extra = Buffer.concat([hello, Buffer.from([23, 3, 3, 0, 1, 0])]);
    expect(readClientHello(extra)).toEqual({
      status: "hello",
      serverName: "app.example.com",
      alpn: [],
    });
  });

  it("reads a ClientHello spread over several records", async () => {
    const hello = await captureHello("b.example.com");
    for (const size of [1, 3, 40, 200]) {
      const records = reRecord(hello, size);
      expect(readClientHello(records), `records of ${size}`).toEqual({
        status: "hello",
        serverName: "b.example.com",
        alpn: [],
      });
      expect(readClientHello(records.subarray(0, records.length - 1)).status).toBe("more");
    }
  });

  it("keeps the letters the client sent (matching lower-cases them)", async () => {
    const hello = await captureHello("APP.Example.COM");
    expect(readClientHello(hello)).toEqual({
      status: "hello",
      serverName: "APP.Example.COM",
      alpn: [],
    });
  });

  it.each([
    ["plain HTTP", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
    ["an alert record", Buffer.from([21, 3, 3, 0, 2, 2, 40])],
    ["an SSLv2-style hello", Buffer.from([0x80, 0x2e, 1, 3, 1, 0, 0x15])],
    ["an empty handshake record", Buffer.from([22, 3, 1, 0, 0])],
    ["a ServerHello", Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0])],
  ])("says %s is not TLS", (_, bytes) => {
    expect(readClientHello(bytes)).toEqual({ status: "not-tls" });
  });

  it("says a ClientHello too short for its fixed fields is not TLS", () => {
    const body = Buffer.from([1, 0, 0, 10, 3, 3, ...new Array(10).fill(0)]);
    const record = Buffer.concat([Buffer.from([22, 3, 1, 0, body.length]), body]);
    expect(readClientHello(record)).toEqual({ status: "not-tls" });
  });

  it("refuses a handshake message announced larger than any ClientHello", () => {
    const record = Buffer.from([22, 3, 1, 0, 4, 1, 0x10, 0, 0]);
    expect(readClientHello(record)).toEqual({ status: "not-tls" });
  });
});
