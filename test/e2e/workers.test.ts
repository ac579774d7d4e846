// Data-plane workers: several threads serve the uws servers on the same port while the
// control thread owns naming and certificates. Dtab, address and certificate changes
// reach every worker; a worker that dies is replaced while the others keep serving; a
// shutdown drains the workers' requests.

import { writeFileSync } from "node:fs";
import { Agent, request as httpsRequest } from "node:https";
import { join } from "node:path";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import {
  burst,
  CRASHY_PLUGIN,
  call,
  cleanup,
  eventually,
  fsEdgeConfig,
  type Lintel,
  startLintel,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

const upstreamOf = (r: { text: string }) => JSON.parse(r.text).upstream as string;

/** Waits until each worker has reported handling at least one request. */
async function everyWorkerServed(l: Lintel, port: number): Promise<void> {
  await eventually(
    async () => {
      await burst(port, 16);
      const stats = l.runtime.pool!.stats;
      return stats.length > 1 && stats.every((s) => s.requests > 0);
    },
    8000,
    "every worker to serve requests",
  );
}

describe("workers", () => {
  it("serve the uws server together, binding through the control thread", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(fsEdgeConfig({ workers: 2 }), {
      "disco/users": `127.0.0.1 ${users.port}\n`,
    });
    const port = l.port();
    const replies = await burst(port, 8);
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    expect(replies.map(upstreamOf)).toEqual(replies.map(() => "users"));
    await everyWorkerServed(l, port);
    // The Linkerd headers are set by whichever worker served.
    expect(users.seen.at(-1)!.headers["l5d-dst-service"]).toBe("/svc/users");
    // A name that does not bind gives the same error as without workers.
    const neg = await call(port, { headers: { host: "nobody" } });
    expect(neg.status).toBe(502);
  });

  it("follow an address change on every worker", async () => {
    const before = await startUpstream("before");
    const after = await startUpstream("after");
    const l = await startLintel(fsEdgeConfig({ workers: 2 }), {
      "disco/users": `127.0.0.1 ${before.port}\n`,
    });
    const port = l.port();
    await everyWorkerServed(l, port);
    writeFileSync(join(l.dir, "disco/users"), `127.0.0.1 ${after.port}\n`);
    await eventually(
      async () => (await burst(port, 16)).every((r) => upstreamOf(r) === "after"),
      8000,
      "every worker to send to the new address",
    );
  });

  it("follow a dtab change on every worker", async () => {
    const a = await startUpstream("a");
    const b = await startUpstream("b");
    const l = await startLintel(
      fsEdgeConfig({
        workers: 2,
        dtab: "''",
        extra: "  interpreter: {kind: io.l5d.fs, dtabFile: dtab.txt}",
      }),
      {
        "disco/a": `127.0.0.1 ${a.port}\n`,
        "disco/b": `127.0.0.1 ${b.port}\n`,
        "dtab.txt": "/svc => /#/io.l5d.fs/a;\n",
      },
    );
    const port = l.port();
    expect(upstreamOf(await call(port, { headers: { host: "users" } }))).toBe("a");
    writeFileSync(join(l.dir, "dtab.txt"), "/svc => /#/io.l5d.fs/b;\n");
    await eventually(
      async () => (await burst(port, 16)).every((r) => upstreamOf(r) === "b"),
      8000,
      "every worker to use the new dtab",
    );
  });

  it("replace a worker that dies while the others keep serving", async () => {
    const users = await startUpstream("users");
    const l = await startLintel(
      `plugins: [crashy.mjs]\n${fsEdgeConfig({ workers: 2, extra: "  identifier: {kind: test.crashy}" })}`,
      { "disco/users": `127.0.0.1 ${users.port}\n`, "crashy.mjs": CRASHY_PLUGIN },
    );
    const port = l.port();
    await everyWorkerServed(l, port);
    await call(port, { headers: { host: "users", "x-crash": "1" } }).catch(() => undefined);
    await eventually(() => l.runtime.pool!.readyCount === 1, 5000, "a worker to crash");
    // Meanwhile the other worker answers every new connection.
    const during = await burst(port, 12);
    expect(during.map((r) => r.status)).toEqual(during.map(() => 200));
    await eventually(() => l.runtime.pool!.readyCount === 2, 8000, "the worker to be replaced");
    expect(l.logs.some((line) => /worker crashed .*plugin bug/.test(line))).toBe(true);
    expect(l.logs.some((line) => /worker exited; starting another/.test(line))).toBe(true);
    await everyWorkerServed(l, port);
  });

  it("drain on shutdown: a request in flight on a worker finishes", async () => {
    let release: () => void = () => {};
    const slow = await startUpstream("slow", (_req, res) => {
      release = () => res.end("done");
      res.writeHead(200, { "content-type": "text/plain" });
    });
    const l = await startLintel(fsEdgeConfig({ workers: 2 }), {
      "disco/users": `127.0.0.1 ${slow.port}\n`,
    });
    const pending = call(l.port(), { headers: { host: "users" } });
    await eventually(() => slow.seen.length === 1, 5000, "the request to reach the upstream");
    const stopped = l.runtime.shutdown(5000);
    await new Promise((r) => setTimeout(r, 200));
    release();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.text).toBe("done");
    await stopped;
  });
});

describe("workers and certificates", () => {
  let ca: TestCa;
  let first: Issued;
  let second: Issued;
  beforeAll(async () => {
    ca = await TestCa.root("Workers Test Root");
    first = await ca.leaf({ dns: ["app.example.com"] });
    second = await ca.leaf({ dns: ["app.example.com"] });
  });

  /** lintel with 2 workers serving `first` over TLS, in front of the upstream on `port`. */
  function startTlsLintel(port: number): Promise<Lintel> {
    return startLintel(
      fsEdgeConfig({ workers: 2, server: ", tls: {certPath: app.crt, keyPath: app.key}" }),
      {
        "disco/users": `127.0.0.1 ${port}\n`,
        "app.crt": chainPem(first),
        "app.key": first.keyPem(),
      },
    );
  }

  /** The serial of the certificate a new connection gets. */
  function serialOf(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port,
          servername: "app.example.com",
          ca: ca.certPem,
          agent: new Agent({ keepAlive: false }),
          headers: { host: "users" },
        },
        (res) => {
          const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
          res.resume();
          res.on("end", () => resolve(serial));
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  it("a rotated certificate reaches every worker", async () => {
    const users = await startUpstream("users");
    const l = await startTlsLintel(users.port);
    const port = l.port();
    const serials = await Promise.all(Array.from({ length: 8 }, () => serialOf(port)));
    expect(new Set(serials)).toEqual(new Set([first.serial]));
    writeFileSync(join(l.dir, "app.crt"), chainPem(second));
    writeFileSync(join(l.dir, "app.key"), second.keyPem());
    await eventually(
      async () =>
        (await Promise.all(Array.from({ length: 12 }, () => serialOf(port)))).every(
          (s) => s === second.serial,
        ),
      10_000,
      "every worker to serve the new certificate",
    );
  });

  it("workers end cleanly amid a burst of TLS handshakes", async () => {
    // uws defers some handshakes when many arrive at once; a thread that ends with one of
    // them open aborts the whole process (and this test file with it).
    const users = await startUpstream("users");
    for (let round = 0; round < 4; round++) {
      const l = await startTlsLintel(users.port);
      const port = l.port();
      const sockets = Array.from({ length: 80 }, () => {
        const s = tlsConnect({
          host: "127.0.0.1",
          port,
          servername: "app.example.com",
          ca: ca.certPem,
        });
        s.on("error", () => {});
        return s;
      });
      await new Promise((r) => setTimeout(r, round * 3));
      await l.runtime.shutdown(0);
      for (const s of sockets) s.destroy();
    }
  });
});
