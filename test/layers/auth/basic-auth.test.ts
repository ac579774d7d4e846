// The basicAuth layer and its htpasswd file: bcrypt entries only (other formats are
// errors naming the line), the right password passes and is remembered, a wrong one or
// an unknown user gets 401 with a Basic challenge, a changed file is read again (a bad
// one leaves the last good table), and bcrypt runs are bounded.

import bcrypt from "bcryptjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DecodeContext, INVALID } from "../../../gateway/config/schema.js";
import {
  type BasicAuthConfig,
  BasicAuthLayer,
  basicAuthBlock,
  basicAuthLayer,
  MAX_PENDING_CHECKS,
} from "../../../gateway/layers/auth/basic-auth.js";
import { parseHtpasswd } from "../../../gateway/layers/auth/htpasswd.js";
import {
  counter,
  Decisions,
  decide,
  field,
  layerContext,
  request,
  TestClock,
  tempDir,
  write,
} from "./support.js";

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

/** Cost 4: the lowest bcrypt allows, so the tests stay fast. */
const hash = (password: string) => bcrypt.hashSync(password, 4).replace(/^\$2b\$/, "$2y$");
const basic = (user: string, password: string) => [
  "authorization",
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
];

function config(raw: Record<string, unknown>): BasicAuthConfig {
  const cx = new DecodeContext(tmp.dir);
  const c = basicAuthBlock.decode(raw, "", cx);
  if (c === INVALID) throw new Error(cx.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  return c;
}

describe("an htpasswd file", () => {
  it("holds bcrypt entries, with comments and blank lines", () => {
    const a = hash("a");
    const b = hash("b").replace(/^\$2y\$/, "$2a$");
    const users = parseHtpasswd(`# team\nalice:${a}\n\r\nbob:${b}\r\n`, "users");
    expect([...users]).toEqual([
      ["alice", a],
      ["bob", b],
    ]);
  });

  it("names the line of any other hash format", () => {
    const good = `alice:${hash("a")}`;
    const cases: [string, string][] = [
      ["bob:$apr1$abc$0123456789012345678901", "an Apache MD5 ($apr1$) hash"],
      ["bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "a SHA-1 ({SHA}) hash"],
      ["bob:$6$salt$hash", "a SHA-crypt hash"],
      ["bob:rOPzlq7ZA9BM6", "not a bcrypt hash (crypt or plain text)"],
      ["bob:$2y$10$short", "a malformed bcrypt hash"],
    ];
    for (const [line, kind] of cases) {
      expect(() => parseHtpasswd(`${good}\n\n${line}\n`, "/etc/users")).toThrow(
        `/etc/users line 3: user "bob" has ${kind}; only bcrypt ($2y$, $2a$, $2b$) is supported (make one with htpasswd -B)`,
      );
    }
    expect(() => parseHtpasswd("no colon here", "f")).toThrow("f line 1: expected user:hash");
    expect(() => parseHtpasswd(`${good}\n${good}`, "f")).toThrow(
      'f line 2: user "alice" is listed twice',
    );
  });

  it("is checked with the config, the error at the htpasswd key", () => {
    const f = write(tmp.dir, "users", `alice:$apr1$x$y\n`);
    expect(basicAuthLayer.validate!(config({ htpasswd: f }))).toEqual([
      {
        field: "htpasswd",
        message: `${f} line 1: user "alice" has an Apache MD5 ($apr1$) hash; only bcrypt ($2y$, $2a$, $2b$) is supported (make one with htpasswd -B)`,
      },
    ]);
    expect(basicAuthLayer.validate!(config({ htpasswd: "missing" }))).toEqual([
      { field: "htpasswd", message: `cannot read ${tmp.dir}/missing: ENOENT` },
    ]);
  });
});

describe("the basicAuth layer", () => {
  it("lets the right password pass, drops Authorization, and remembers the check", async () => {
    const f = write(tmp.dir, "users", `alice:${hash("s3cret")}\n`);
    const ctx = layerContext();
    const layer = new BasicAuthLayer(
      config({ htpasswd: f, userHeader: "x-user" }),
      new TestClock(),
      ctx,
    );
    const req = request(["host", "a", ...basic("alice", "s3cret"), "x-user", "mallory"]);
    expect(await decide(layer, req)).toMatchObject({ kind: "passed", sync: false });
    expect(req.ex.headers).toEqual(["host", "a", "x-user", "alice"]);
    const again = request(basic("alice", "s3cret"));
    expect(await decide(layer, again)).toMatchObject({ kind: "passed", sync: true });
    expect(counter(ctx, "basicAuth", "allowed")).toBe(2);
    expect(counter(ctx, "basicAuth", "cache_hits")).toBe(1);
  });

  it("keeps Authorization when forwardAuthorization is on", async () => {
    const f = write(tmp.dir, "users", `alice:${hash("pw")}\n`);
    const layer = new BasicAuthLayer(
      config({ htpasswd: f, forwardAuthorization: true }),
      new TestClock(),
      layerContext(),
    );
    const req = request(basic("alice", "pw"));
    expect((await decide(layer, req)).kind).toBe("passed");
    expect(field(req.ex.headers, "authorization")).toBe(basic("alice", "pw")[1]);
  });

  it("refuses a wrong password, an unknown user and missing credentials with a challenge", async () => {
    const f = write(tmp.dir, "users", `alice:${hash("pw")}\n`);
    const ctx = layerContext();
    const layer = new BasicAuthLayer(
      config({ htpasswd: f, realm: 'the "team"' }),
      new TestClock(),
      ctx,
    );
    const cases: [string[], string, boolean][] = [
      [basic("alice", "nope"), "wrong user name or password", false],
      [basic("bob", "pw"), "wrong user name or password", false],
      [[], "the request carries no credentials", true],
      [["authorization", "Bearer x"], "the request carries no Basic credentials", true],
      [["authorization", "Basic bm9jb2xvbg=="], "the Basic credentials are malformed", true],
      [
        [...basic("alice", "pw"), ...basic("alice", "pw")],
        "more than one Authorization field",
        true,
      ],
    ];
    for (const [headers, why, sync] of cases) {
      const r = await decide(layer, request(headers));
      expect(r, why).toMatchObject({ kind: "refused", sync });
      if (r.kind !== "refused") continue;
      expect(r.err.status).toBe(401);
      expect(r.err.message).toBe(`basicAuth: ${why}`);
      expect(r.err.headers).toEqual([
        "www-authenticate",
        'Basic realm="the \\"team\\"", charset="UTF-8"',
      ]);
    }
    expect(counter(ctx, "basicAuth", "denied")).toBe(cases.length);
    // A wrong password is not remembered: it is checked again.
    expect((await decide(layer, request(basic("alice", "nope")))).sync).toBe(false);
  });

  it("reads the file again when it changes, and keeps the last good one when it breaks", async () => {
    const f = write(tmp.dir, "users", `alice:${hash("old")}\n`);
    const clock = new TestClock();
    const ctx = layerContext();
    const layer = new BasicAuthLayer(config({ htpasswd: f, reloadIntervalMs: 1000 }), clock, ctx);
    expect((await decide(layer, request(basic("alice", "old")))).kind).toBe("passed");
    write(tmp.dir, "users", `alice:${hash("new")}\nbob:${hash("bob")}\n`);
    // Not looked at before the interval.
    expect((await decide(layer, request(basic("alice", "old")))).kind).toBe("passed");
    clock.advance(1000);
    // The look happens as a request comes; the next requests see the new table.
    await decide(layer, request(basic("bob", "bob")));
    await eventually(() => counter(ctx, "basicAuth", "reloads") === 1);
    expect((await decide(layer, request(basic("alice", "old")))).kind).toBe("refused");
    expect((await decide(layer, request(basic("alice", "new")))).kind).toBe("passed");
    expect((await decide(layer, request(basic("bob", "bob")))).kind).toBe("passed");

    write(tmp.dir, "users", `alice:$apr1$broken$x\n`);
    clock.advance(1000);
    await decide(layer, request(basic("alice", "new")));
    await eventually(() => counter(ctx, "basicAuth", "reload_failures") === 1);
    expect((await decide(layer, request(basic("alice", "new")))).kind).toBe("passed");
  });

  it("runs bcrypt off the event loop", async () => {
    // Cost 12: ~300 ms of CPU, which would stall the thread if run on it.
    const f = write(tmp.dir, "users", `alice:${bcrypt.hashSync("pw", 12)}\n`);
    const layer = new BasicAuthLayer(config({ htpasswd: f }), new TestClock(), layerContext());
    let last = Date.now();
    let worst = 0;
    const ticker = setInterval(() => {
      worst = Math.max(worst, Date.now() - last);
      last = Date.now();
    }, 5);
    try {
      expect((await decide(layer, request(basic("alice", "pw")))).kind).toBe("passed");
    } finally {
      clearInterval(ticker);
    }
    // bcryptjs on the thread would block it ~100 ms at a time (it yields every 100 ms).
    expect(worst).toBeLessThan(60);
  });

  it("runs at most MAX_PENDING_CHECKS bcrypt checks at once, sharing identical ones", async () => {
    const f = write(tmp.dir, "users", `alice:${bcrypt.hashSync("pw", 8)}\n`);
    const ctx = layerContext();
    const layer = new BasicAuthLayer(config({ htpasswd: f }), new TestClock(), ctx);
    const d = new Decisions();
    // The same credentials many times: one check, however many wait for it.
    for (let i = 0; i < MAX_PENDING_CHECKS * 2; i++)
      expect(layer.arrive(request(basic("alice", "pw")), d)).toBe("later");
    for (let i = 1; i < MAX_PENDING_CHECKS; i++) layer.arrive(request(basic("alice", `x${i}`)), d);
    expect(() => layer.arrive(request(basic("alice", "one more")), d)).toThrow(
      "basicAuth: too many password checks under way; try again",
    );
    await d.count(MAX_PENDING_CHECKS * 3 - 1, 15_000);
    expect(d.seen.filter((o) => o.kind === "passed")).toHaveLength(MAX_PENDING_CHECKS * 2);
    expect(counter(ctx, "basicAuth", "errors")).toBe(1);
  });
});

async function eventually(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
