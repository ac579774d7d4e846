// gRPC through lintel: an `h2` router (Linkerd 1's protocol name) in front of a real
// @grpc/grpc-js server, with a real @grpc/grpc-js client: unary, server streaming and
// bidirectional calls, grpc-status and trailers passed through, and a deadline.

import { connect } from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, onCleanup, startLintel } from "./harness.js";

afterEach(cleanup);

// Messages are plain UTF-8 strings: no protobuf compiler needed for a proxy test.
const text = {
  serialize: (s: string) => Buffer.from(s),
  deserialize: (b: Buffer) => b.toString(),
};
const SERVICE = {
  echo: {
    path: "/test.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: text.serialize,
    requestDeserialize: text.deserialize,
    responseSerialize: text.serialize,
    responseDeserialize: text.deserialize,
  },
  count: {
    path: "/test.Echo/Count",
    requestStream: false,
    responseStream: true,
    requestSerialize: text.serialize,
    requestDeserialize: text.deserialize,
    responseSerialize: text.serialize,
    responseDeserialize: text.deserialize,
  },
  chat: {
    path: "/test.Echo/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: text.serialize,
    requestDeserialize: text.deserialize,
    responseSerialize: text.serialize,
    responseDeserialize: text.deserialize,
  },
} satisfies grpc.ServiceDefinition;

const EchoClient = grpc.makeGenericClientConstructor(SERVICE, "Echo");

/** A gRPC server: Echo answers (or fails on "fail", sleeps on "slow"), Count streams, Chat echoes. */
async function grpcServer(): Promise<number> {
  const server = new grpc.Server();
  server.addService(SERVICE, {
    echo: (call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => {
      if (call.request === "fail") {
        const md = new grpc.Metadata();
        md.set("x-reason", "asked to");
        cb({ code: grpc.status.FAILED_PRECONDITION, details: "it failed", metadata: md });
        return;
      }
      if (call.request === "slow") {
        setTimeout(() => cb(null, "late"), 2000);
        return;
      }
      cb(null, `echo: ${call.request} (${call.metadata.get("l5d-dst-service")[0] ?? "-"})`);
    },
    count: (call: grpc.ServerWritableStream<string, string>) => {
      const n = Number(call.request);
      for (let i = 1; i <= n; i++) call.write(String(i));
      call.end();
    },
    chat: (call: grpc.ServerDuplexStream<string, string>) => {
      call.on("data", (m: string) => call.write(`re: ${m}`));
      call.on("end", () => call.end());
    },
  });
  return listen(server);
}

/** Starts `server` on a free loopback port (stopped after the test); resolves to the port. */
async function listen(server: grpc.Server): Promise<number> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  onCleanup(() => server.forceShutdown());
  return port;
}

async function lintelFor(upPort: number) {
  return startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: h2
  label: grpc
  identifier: {kind: io.l5d.header.token, header: ":authority"}
  dtab: /svc/echo => /$/inet/127.0.0.1/${upPort}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: net}
`);
}

function client(port: number) {
  const c = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    "grpc.default_authority": "echo",
  });
  onCleanup(() => c.close());
  return c as unknown as {
    echo(
      req: string,
      md: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, r?: string) => void,
    ): void;
    count(req: string): grpc.ClientReadableStream<string>;
    chat(): grpc.ClientDuplexStream<string, string>;
  };
}

function unary(
  c: ReturnType<typeof client>,
  req: string,
  opts: grpc.CallOptions = {},
): Promise<{ reply?: string; error?: grpc.ServiceError }> {
  return new Promise((resolve) =>
    c.echo(req, new grpc.Metadata(), opts, (error, reply) =>
      resolve(error ? { error } : { reply }),
    ),
  );
}

describe("gRPC through an h2 router", () => {
  it("unary calls are routed by :authority and answered", async () => {
    const l = await lintelFor(await grpcServer());
    const c = client(l.port());
    expect(await unary(c, "hi")).toEqual({ reply: "echo: hi (/svc/echo)" });
  });

  it("io.l5d.header.path routes by the gRPC service in :path (Linkerd's h2 identifier)", async () => {
    const up = await grpcServer();
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: h2
  identifier: {kind: io.l5d.header.path, segments: 1}
  dtab: /svc/test.Echo => /$/inet/127.0.0.1/${up}
  servers:
  - {ip: 127.0.0.1, port: 0}
`);
    const c = client(l.port());
    expect(await unary(c, "hi")).toEqual({ reply: "echo: hi (/svc/test.Echo)" });
    const counted: string[] = [];
    for await (const m of c.count("3")) counted.push(m as string);
    expect(counted).toEqual(["1", "2", "3"]);
    // Another service's calls name another service, which nothing routes.
    const other = grpc.makeGenericClientConstructor(
      { echo: { ...SERVICE.echo, path: "/test.Other/Echo" } },
      "Other",
    );
    const o = new other(`127.0.0.1:${l.port()}`, grpc.credentials.createInsecure());
    onCleanup(() => o.close());
    const r = await unary(o as unknown as ReturnType<typeof client>, "hi");
    expect({ code: r.error?.code, details: r.error?.details }).toEqual({
      code: grpc.status.UNIMPLEMENTED,
      details: expect.stringContaining("/svc/test.Other"),
    });
  });

  it("passes grpc-status, its message and trailing metadata through", async () => {
    const l = await lintelFor(await grpcServer());
    const r = await unary(client(l.port()), "fail");
    expect({
      code: r.error?.code,
      details: r.error?.details,
      reason: r.error?.metadata.get("x-reason")[0],
    }).toEqual({ code: grpc.status.FAILED_PRECONDITION, details: "it failed", reason: "asked to" });
  });

  it("streams from the server, and both ways", async () => {
    const l = await lintelFor(await grpcServer());
    const c = client(l.port());
    const counted: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = c.count("5");
      s.on("data", (m: string) => counted.push(m));
      s.on("end", resolve);
      s.on("error", reject);
    });
    expect(counted).toEqual(["1", "2", "3", "4", "5"]);
    const replies: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = c.chat();
      s.on("data", (m: string) => {
        replies.push(m);
        if (replies.length < 3) s.write(`m${replies.length + 1}`);
        else s.end();
      });
      s.on("end", resolve);
      s.on("error", reject);
      s.write("m1");
    });
    expect(replies).toEqual(["re: m1", "re: m2", "re: m3"]);
  });

  it("a call past its deadline ends DEADLINE_EXCEEDED for the client", async () => {
    const l = await lintelFor(await grpcServer());
    const t0 = performance.now();
    const r = await unary(client(l.port()), "slow", { deadline: Date.now() + 300 });
    expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it("lintel's own errors reach the client as gRPC statuses", async () => {
    const l = await lintelFor(await grpcServer());
    const c = new EchoClient(`127.0.0.1:${l.port()}`, grpc.credentials.createInsecure(), {
      "grpc.default_authority": "nothing-here",
    }) as unknown as ReturnType<typeof client>;
    onCleanup(() => (c as unknown as grpc.Client).close());
    const r = await unary(c, "hi");
    expect({ code: r.error?.code, details: r.error?.details }).toEqual({
      code: grpc.status.UNIMPLEMENTED,
      details: expect.stringContaining("/svc/nothing-here"),
    });
  });

  it("honours grpc-timeout as the call's deadline, answered DEADLINE_EXCEEDED by lintel", async () => {
    const l = await lintelFor(await grpcServer());
    const session = connect(`http://127.0.0.1:${l.port()}`);
    onCleanup(() => {
      session.destroy();
    });
    // A raw HTTP/2 client that sets grpc-timeout but keeps no deadline of its own.
    const frame = Buffer.alloc(5 + 4);
    frame.writeUInt32BE(4, 1);
    frame.write("slow", 5);
    const t0 = performance.now();
    const got = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/test.Echo/Echo",
        ":authority": "echo",
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": "300m",
      });
      let head: Record<string, unknown> = {};
      stream.on("response", (h) => {
        head = h;
      });
      stream.on("trailers", (t) => {
        head = { ...head, ...t };
      });
      stream.resume();
      stream.on("end", () => resolve(head));
      stream.on("error", reject);
      stream.end(frame);
    });
    const ms = performance.now() - t0;
    expect({ status: got["grpc-status"], fast: ms < 1500 }).toEqual({ status: "4", fast: true });
  });

  it("io.l5d.h2.grpc.default retries UNAVAILABLE on another endpoint; neverRetryable does not", async () => {
    const good = await grpcServer();
    // An endpoint that answers every call UNAVAILABLE at once (a trailers-only answer).
    const down = new grpc.Server();
    const unavailable = (_c: unknown, cb: grpc.sendUnaryData<string>) =>
      cb({ code: grpc.status.UNAVAILABLE, details: "draining" });
    down.addService(SERVICE, { echo: unavailable, count: () => {}, chat: () => {} });
    const downPort = await listen(down);
    const outcomes = async (classifier: string) => {
      const l = await startLintel(
        `
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: h2
  label: grpc
  identifier: {kind: io.l5d.header.token, header: ":authority"}
  dtab: /svc => /#/io.l5d.fs
  client: {loadBalancer: {kind: roundRobin}, failureAccrual: {kind: none}}
  service:
    responseClassifier: {kind: ${classifier}}
    retries: {budget: {minRetriesPerSec: 100, percentCanRetry: 1.0}}
  servers:
  - {ip: 127.0.0.1, port: 0}
`,
        { "disco/echo": `127.0.0.1 ${downPort}\n127.0.0.1 ${good}\n` },
      );
      const c = client(l.port());
      const codes: number[] = [];
      for (let i = 0; i < 10; i++) codes.push((await unary(c, "hi")).error?.code ?? 0);
      return codes;
    };
    // Round robin sends half the first attempts to the draining endpoint.
    expect(await outcomes("io.l5d.h2.grpc.default")).toEqual(Array(10).fill(0));
    const never = await outcomes("io.l5d.h2.grpc.neverRetryable");
    expect(never.filter((c) => c === grpc.status.UNAVAILABLE).length).toBeGreaterThan(0);
  });

  it("with classificationTimeoutMs, retries a stream whose UNAVAILABLE comes in its trailers", async () => {
    const good = await grpcServer();
    // An endpoint that sends a first message, then ends the call UNAVAILABLE: the status
    // comes in the trailers, after the head and a DATA frame.
    const flaky = new grpc.Server();
    flaky.addService(SERVICE, {
      echo: () => {},
      count: (call: grpc.ServerWritableStream<string, string>) => {
        call.write("1");
        setTimeout(
          () => call.emit("error", { code: grpc.status.UNAVAILABLE, details: "going away" }),
          5,
        );
      },
      chat: () => {},
    });
    const flakyPort = await listen(flaky);
    const outcomes = async (service: string) => {
      const l = await startLintel(
        `
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: h2
  identifier: {kind: io.l5d.header.path, segments: 1}
  dtab: /svc => /#/io.l5d.fs
  client: {loadBalancer: {kind: roundRobin}, failureAccrual: {kind: none}}
  service:
    responseClassifier: {kind: io.l5d.h2.grpc.default}
    retries: {budget: {minRetriesPerSec: 100, percentCanRetry: 1.0}}
${service}
  servers:
  - {ip: 127.0.0.1, port: 0}
`,
        { "disco/test.Echo": `127.0.0.1 ${flakyPort}\n127.0.0.1 ${good}\n` },
      );
      const c = client(l.port());
      const got: string[] = [];
      for (let i = 0; i < 6; i++) {
        const seen: string[] = [];
        try {
          for await (const m of c.count("3")) seen.push(m as string);
          got.push(seen.join(","));
        } catch (e) {
          got.push(`${seen.join(",")} ${(e as grpc.ServiceError).code}`);
        }
      }
      return got;
    };
    // Held until the trailers (well within 1 s): the flaky answer is dropped and retried.
    const held = await outcomes(
      "    classificationTimeoutMs: 1000\n    retryBufferSize: {requestBytes: 1024, responseBytes: 1024}",
    );
    expect(held).toEqual(Array(6).fill("1,2,3"));
    // Without them, the first message is already on its way when the status comes.
    const streamed = await outcomes("");
    expect(streamed).toContain(`1 ${grpc.status.UNAVAILABLE}`);
  });
});
