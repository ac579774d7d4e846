// Errors lintel answers itself, on both engines: each with the status Linkerd 1 uses, an
// `l5d-err` header carrying the URL-encoded message (naming the service and the reason),
// the same message as a text body, and a Via entry. Nothing an upstream or a client does
// may crash the process: after each misbehaving peer lintel keeps serving.

import { afterEach, describe, expect, it } from "vitest";
import {
  call,
  cleanup,
  ENGINES,
  type EngineName,
  eventually,
  freePort,
  type Reply,
  raw,
  startLintel,
  startTcpUpstream,
  startUpstream,
} from "./harness.js";

afterEach(cleanup);

interface Opts {
  readonly dtab?: string;
  /** Extra router keys, YAML lines indented for a router entry (two spaces). */
  readonly router?: string;
  /** Extra server keys, e.g. ", maxCallDepth: 3". */
  readonly server?: string;
  /** Extra top-level YAML (before `routers:`). */
  readonly top?: string;
}

function config(engine: EngineName, o: Opts = {}): string {
  const dtab = (o.dtab ?? "/svc => /#/io.l5d.fs")
    .trim()
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
  return `
admin: {ip: 127.0.0.1, port: 0}
${o.top ?? ""}
namers:
- kind: io.l5d.fs
  rootDir: disco
routers:
- protocol: http
  label: r
${o.router ?? ""}
  dtab: |
${dtab}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}${o.server ?? ""}}
`;
}

/** Checks a lintel-generated error; returns the decoded l5d-err message. */
function expectProxyError(r: Reply, status: number, ...mentions: (string | RegExp)[]): string {
  expect(r.status).toBe(status);
  const raw = r.headers["l5d-err"];
  expect(typeof raw).toBe("string");
  const message = decodeURIComponent(raw as string);
  // URL-encoded: no raw spaces or slashes in the header value.
  expect(raw as string).not.toMatch(/[ /]/);
  for (const m of mentions) {
    if (typeof m === "string") expect(message).toContain(m);
    else expect(message).toMatch(m);
  }
  expect(r.headers["content-type"]).toMatch(/^text\/plain/);
  expect(r.text).toBe(`${message}\n`);
  expect(r.headers.via).toBe("1.1 lintel");
  return message;
}

const NEVER_NAMER = `
export default (l) => l.definePlugin({
  category: "namer",
  kind: "test.never",
  schema: l.schema.object({}),
  create: () => ({
    lookup: () => ({ sample: () => ({ status: "pending" }), observe: () => () => {} }),
  }),
});
`;

describe.each(ENGINES)("errors lintel answers on the %s engine", (engine) => {
  it("unidentified (io.l5d.header without its header) → 400", async () => {
    const l = await startLintel(
      config(engine, { router: "  identifier: {kind: io.l5d.header, header: l5d-name}" }),
    );
    const r = await call(l.port(), { path: "/x", headers: { host: "users" } });
    expectProxyError(r, 400, "cannot identify the request", "l5d-name header is absent");
  });

  it("unidentified (io.l5d.path with too few segments) → 400", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(engine, {
        router: "  identifier: {kind: io.l5d.path, segments: 2}",
        dtab: `/svc => /$/inet/127.0.0.1/${up.port}`,
      }),
    );
    const r = await call(l.port(), { path: "/only" });
    expectProxyError(r, 400, "cannot identify the request");
    expect(up.seen).toHaveLength(0);
    // Two segments are enough.
    const ok = await call(l.port(), { path: "/a/b/c" });
    expect(ok.status).toBe(200);
    expect(up.seen[0]!.headers["l5d-dst-service"]).toBe("/svc/a/b");
  });

  it("a malformed l5d-dtab header → 400", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(config(engine, { dtab: `/svc => /$/inet/127.0.0.1/${up.port}` }));
    const r = await call(l.port(), { headers: { host: "users", "l5d-dtab": "/svc => => /x" } });
    expectProxyError(r, 400, "invalid l5d-dtab header", "/svc => => /x");
    expect(up.seen).toHaveLength(0);
  });

  it("call depth exceeded (Via with maxCallDepth entries) → 400", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(engine, { dtab: `/svc => /$/inet/127.0.0.1/${up.port}`, server: ", maxCallDepth: 3" }),
    );
    const r = await call(l.port(), {
      headers: { host: "users", via: "1.1 a, 1.1 b, 1.1 c" },
    });
    expectProxyError(r, 400, "maximum call depth (3) exceeded", "passed 3 proxies");
    expect(up.seen).toHaveLength(0);
    // One hop fewer still passes, and this hop is appended.
    const ok = await call(l.port(), { headers: { host: "users", via: "1.1 a, 1.1 b" } });
    expect(ok.status).toBe(200);
    expect(up.seen[0]!.headers.via).toBe("1.1 a, 1.1 b, 1.1 lintel");
  });

  it("a name nothing binds (neg) → 502 naming the service", async () => {
    const l = await startLintel(config(engine));
    const r = await call(l.port(), { headers: { host: "nobody" } });
    expectProxyError(r, 502, "/svc/nobody", "no route");
  });

  it("a dtab without a matching dentry (neg) → 502", async () => {
    const l = await startLintel(config(engine, { dtab: "/other => /#/io.l5d.fs" }));
    const r = await call(l.port(), { headers: { host: "nobody" } });
    expectProxyError(r, 502, "no route for /svc/nobody");
  });

  it("`!` in the dtab (fail) → 502", async () => {
    const l = await startLintel(config(engine, { dtab: "/svc/nobody => !" }));
    const r = await call(l.port(), { headers: { host: "nobody" } });
    expectProxyError(r, 502, "/svc/nobody", "(!)");
  });

  it("`!` stops alternates: /svc => ! | /#/io.l5d.fs still fails → 502", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(config(engine, { dtab: "/svc => ! | /#/io.l5d.fs" }), {
      "disco/users": `127.0.0.1 ${up.port}\n`,
    });
    const r = await call(l.port(), { headers: { host: "users" } });
    expectProxyError(r, 502, "/svc/users", "(!)");
    expect(up.seen).toHaveLength(0);
  });

  it("`$` in the dtab (empty) → 502", async () => {
    const l = await startLintel(config(engine, { dtab: "/svc/nobody => $" }));
    const r = await call(l.port(), { headers: { host: "nobody" } });
    expectProxyError(r, 502, "/svc/nobody", "no endpoints");
  });

  it("/$/nil (empty) → 502", async () => {
    const l = await startLintel(config(engine, { dtab: "/svc => /$/nil" }));
    const r = await call(l.port(), { headers: { host: "nobody" } });
    expectProxyError(r, 502, "/svc/nobody", "no endpoints");
  });

  it("an io.l5d.fs file with no addresses → 502", async () => {
    const l = await startLintel(config(engine), { "disco/empty": "# nobody here\n" });
    const r = await call(l.port(), { headers: { host: "empty" } });
    expectProxyError(r, 502, "/svc/empty", "/#/io.l5d.fs/empty", "no addresses");
  });

  it("connection refused → 502", async () => {
    const port = await freePort();
    const l = await startLintel(config(engine, { dtab: `/svc => /$/inet/127.0.0.1/${port}` }));
    const r = await call(l.port(), { headers: { host: "users" } });
    expectProxyError(r, 502, "/svc/users", `127.0.0.1:${port}`, "ECONNREFUSED");
  });

  it("a binding that never completes → 503 after bindingTimeoutMs (300 ms), not 10 s", async () => {
    const l = await startLintel(
      config(engine, {
        top: "plugins: [never.mjs]",
        router: "  bindingTimeoutMs: 300",
        dtab: "/svc => /#/test.never",
      }).replace("namers:\n", "namers:\n- kind: test.never\n"),
      { "never.mjs": NEVER_NAMER },
    );
    const t0 = performance.now();
    const r = await call(l.port(), { headers: { host: "users" }, timeoutMs: 5000 });
    const took = performance.now() - t0;
    expectProxyError(r, 503, "/svc/users", "timed out after 300 ms");
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(2000);
  });

  // Regression: a request body destroyed by the client's leaving, before anything read it,
  // was an unhandled 'error' event, which would have ended the process.
  it("a client that leaves mid-body while its name is still binding does not crash lintel", async () => {
    const up = await startUpstream("up");
    const l = await startLintel(
      config(engine, {
        top: "plugins: [never.mjs]",
        router: "  bindingTimeoutMs: 400",
        dtab: `/svc/users => /#/test.never;/svc/ok => /$/inet/127.0.0.1/${up.port}`,
      }).replace("namers:\n", "namers:\n- kind: test.never\n"),
      { "never.mjs": NEVER_NAMER },
    );
    await raw(
      l.port(),
      "POST /x HTTP/1.1\r\nHost: users\r\nContent-Length: 100000\r\n\r\npartial",
      100,
    );
    await new Promise((r) => setTimeout(r, 600));
    const r = await call(l.port(), { headers: { host: "ok" } });
    expect(r.status).toBe(200);
  });

  it("an upstream that resets the connection before answering → 502", async () => {
    const tcp = await startTcpUpstream((s) => {
      s.once("data", () => s.resetAndDestroy());
    });
    const l = await startLintel(config(engine, { dtab: `/svc => /$/inet/127.0.0.1/${tcp.port}` }));
    const r = await call(l.port(), { headers: { host: "users" } });
    expectProxyError(r, 502, "/svc/users", `127.0.0.1:${tcp.port}`);
  });

  it("an upstream that closes the connection without answering → 502", async () => {
    const tcp = await startTcpUpstream((s) => {
      s.once("data", () => s.end());
    });
    const l = await startLintel(config(engine, { dtab: `/svc => /$/inet/127.0.0.1/${tcp.port}` }));
    const r = await call(l.port(), { headers: { host: "users" } });
    expectProxyError(r, 502, "/svc/users", `127.0.0.1:${tcp.port}`);
  });

  it("an upstream that sends garbage → 502, and lintel keeps serving", async () => {
    const tcp = await startTcpUpstream((s) => {
      s.once("data", () => s.end("HELLO\r\n\r\n"));
    });
    const good = await startUpstream("good");
    const l = await startLintel(
      config(engine, {
        dtab: `/svc/bad => /$/inet/127.0.0.1/${tcp.port};\n/svc/good => /$/inet/127.0.0.1/${good.port}`,
      }),
    );
    const r = await call(l.port(), { headers: { host: "bad" } });
    expectProxyError(r, 502, "/svc/bad", `127.0.0.1:${tcp.port}`);
    const again = await call(l.port(), { headers: { host: "bad" } });
    expect(again.status).toBe(502);
    const next = await call(l.port(), { headers: { host: "good" } });
    expect(next.status).toBe(200);
    expect(JSON.parse(next.text).upstream).toBe("good");
  });

  it("an upstream that splits a header with a bare LF → 502, nothing of it reaches the client", async () => {
    const tcp = await startTcpUpstream((s) => {
      s.once("data", () =>
        s.end("HTTP/1.1 200 OK\r\nx-a: 1\nset-cookie: evil=1\r\ncontent-length: 2\r\n\r\nok"),
      );
    });
    const l = await startLintel(config(engine, { dtab: `/svc => /$/inet/127.0.0.1/${tcp.port}` }));
    const r = await call(l.port(), { headers: { host: "users" } });
    expectProxyError(r, 502, "/svc/users", `127.0.0.1:${tcp.port}`, "bare CR or LF");
    expect(r.headers["set-cookie"]).toBeUndefined();
  });

  it("an upstream header name that is not a token, or a value with a control character → 502", async () => {
    const heads: [string, string][] = [
      ["x y: 1\r\n", 'invalid character 0x20 in header name "x y"'],
      ["x-a: a\u0001b\r\n", 'control character 0x01 in the value of header "x-a"'],
      ["x-a: a\u007f\r\n", "control character 0x7f"],
    ];
    let n = 0;
    const tcp = await startTcpUpstream((s) => {
      const [line] = heads[n++ % heads.length]!;
      s.once("data", () =>
        s.end(
          `HTTP/1.1 200 OK\r\n${line}set-cookie: evil=1\r\ncontent-length: 2\r\n\r\nok`,
          "latin1",
        ),
      );
    });
    const l = await startLintel(config(engine, { dtab: `/svc => /$/inet/127.0.0.1/${tcp.port}` }));
    for (const [, reason] of heads) {
      const r = await call(l.port(), { headers: { host: "users" } });
      expectProxyError(r, 502, "/svc/users", `127.0.0.1:${tcp.port}`, reason);
      expect(r.headers["set-cookie"]).toBeUndefined();
    }
  });

  it("a client that goes away mid-request aborts the upstream request, and lintel keeps serving", async () => {
    let upstreamClosed = false;
    const slow = await startUpstream("slow", (_req, res) => {
      res.on("close", () => {
        upstreamClosed = true;
      });
      // never answers
    });
    const good = await startUpstream("good");
    const l = await startLintel(
      config(engine, {
        dtab: `/svc/slow => /$/inet/127.0.0.1/${slow.port};\n/svc/good => /$/inet/127.0.0.1/${good.port}`,
      }),
    );
    await expect(call(l.port(), { headers: { host: "slow" }, timeoutMs: 300 })).rejects.toThrow();
    await eventually(() => slow.seen.length === 1, 3000, "the upstream to see the request");
    await eventually(() => upstreamClosed, 3000, "the upstream request to be aborted");
    const next = await call(l.port(), { headers: { host: "good" } });
    expect(next.status).toBe(200);
  });
});
