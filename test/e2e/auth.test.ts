// Authentication at the edge, end to end on loopback with real servers, on the net and
// uws engines: JWT layers verifying tokens against a JWKS server that rotates its keys
// (bad tokens of every kind refused with 401, claims reaching the upstream as fields),
// basic authentication from a real bcrypt htpasswd file that changes under it, an auth
// service that allows, denies, or does not answer in time (both failure modes), and a
// layer on one service prefix only.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { SignJWT, UnsecuredJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { JwksServer, sign, type TestKey, testKey } from "../layers/auth/support.js";
import {
  burst,
  call,
  cleanup,
  ENGINES,
  eventually,
  type Lintel,
  metricsJson,
  onCleanup,
  type Reply,
  startLintel,
  startUpstream,
  type Upstream,
} from "./harness.js";

afterEach(cleanup);

/** One router to `up` with one server on `engine` whose `layers` are the given YAML. */
function edgeConfig(up: Upstream, engine: string, layers: string, extra = ""): string {
  return `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
${extra}
  servers:
  - ip: 127.0.0.1
    port: 0
    engine: ${engine}
    layers:
${layers}
`;
}

async function jwksServer(...keys: TestKey[]): Promise<JwksServer> {
  const s = await new JwksServer().start();
  s.keys = keys.map((k) => k.jwk);
  onCleanup(() => s.close());
  return s;
}

const bearer = (token: string) => ({ host: "api.test", authorization: `Bearer ${token}` });
const upstreamSaw = (r: Reply) => JSON.parse(r.text).headers as Record<string, string>;

describe.each(ENGINES)("authentication layers on the %s engine", (engine) => {
  it("verify JWTs against a rotating JWKS and copy claims upstream", async () => {
    const up = await startUpstream("api");
    const k1 = await testKey("k1");
    const k2 = await testKey("k2");
    const jwks = await jwksServer(k1);
    const l = await startLintel(
      edgeConfig(
        up,
        engine,
        `    - kind: jwt
      jwksUrl: ${jwks.url}
      jwksCooldownMs: 0
      issuers: [https://issuer.test]
      audiences: [api]
      claimsToHeaders: {sub: x-user, scope: x-scope}
      forwardToken: false`,
      ),
    );
    const port = l.port();
    const now = Date.now();
    const ok = await call(port, {
      headers: { ...bearer(await sign(k1, now, { scope: "read write" })), "x-user": "mallory" },
    });
    expect(ok.status).toBe(200);
    const saw = upstreamSaw(ok);
    expect(saw["x-user"]).toBe("alice");
    expect(saw["x-scope"]).toBe("read write");
    expect(saw.authorization).toBeUndefined();

    // Every kind of bad token: 401 with the challenge and l5d-err; none reaches upstream.
    const sec = Math.floor(now / 1000);
    const seen = up.seen.length;
    const bad: [string, string][] = [
      ["expired", await sign(k1, now - 7200_000)],
      ["not yet valid", await sign(k1, now, {}, { nbf: sec + 3600 })],
      ["wrong audience", await sign(k1, now, { aud: "billing" })],
      ["wrong issuer", await sign(k1, now, { iss: "https://evil.test" })],
      [
        "HS256 keyed with the public key",
        await new SignJWT({ sub: "root", iss: "https://issuer.test", aud: "api", exp: sec + 60 })
          .setProtectedHeader({ alg: "HS256", kid: "k1" })
          .sign(new TextEncoder().encode(k1.pem)),
      ],
      [
        "alg none",
        new UnsecuredJWT({
          sub: "root",
          iss: "https://issuer.test",
          aud: "api",
          exp: sec + 60,
        }).encode(),
      ],
      ["bad signature", `${(await sign(k1, now)).slice(0, -8)}AAAAAAAA`],
      ["malformed", "definitely-not-a-jwt"],
    ];
    for (const [what, token] of bad) {
      const r = await call(port, { headers: bearer(token) });
      expect(r.status, what).toBe(401);
      expect(r.headers["www-authenticate"], what).toMatch(
        /^Bearer realm="lintel", error="invalid_token", error_description="[^"]+"$/,
      );
      expect(decodeURIComponent(r.headers["l5d-err"] as string), what).toMatch(/^jwt: the token/);
    }
    const none = await call(port, { headers: { host: "api.test" } });
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="lintel"');
    expect(up.seen.length).toBe(seen);

    // Rotation: k2 comes and k1 goes; a k2 token has the JWKS fetched again, no restart.
    jwks.keys = [k2.jwk];
    const rotated = await call(port, { headers: bearer(await sign(k2, Date.now())) });
    expect(rotated.status).toBe(200);
    expect(jwks.fetches).toBe(2);
    const old = await call(port, { headers: bearer(await sign(k1, Date.now())) });
    expect(old.status).toBe(401);
    expect(decodeURIComponent(old.headers["l5d-err"] as string)).toBe(
      "jwt: no key of this layer matches the token",
    );

    const m = await metricsJson(l);
    expect(m["rt/edge/auth/jwt/allowed"]).toBe(2);
    expect(m["rt/edge/auth/jwt/denied"]).toBe(bad.length + 2);
    expect(m["rt/edge/auth/jwt/denied/expired"]).toBe(1);
  });

  it("check basic credentials against a bcrypt htpasswd file that changes", async () => {
    const up = await startUpstream("api");
    const users = `alice:${bcrypt.hashSync("wonderland", 10).replace(/^\$2b\$/, "$2y$")}\n`;
    const l = await startLintel(
      edgeConfig(
        up,
        engine,
        `    - {kind: basicAuth, htpasswd: users, realm: staff, userHeader: x-user, reloadIntervalMs: 100}`,
      ),
      { users },
    );
    const port = l.port();
    const as = (user: string, password: string) =>
      call(port, {
        headers: {
          host: "api.test",
          authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
        },
      });
    const ok = await as("alice", "wonderland");
    expect(ok.status).toBe(200);
    expect(upstreamSaw(ok)["x-user"]).toBe("alice");
    expect(upstreamSaw(ok).authorization).toBeUndefined();
    for (const [user, password] of [
      ["alice", "looking-glass"],
      ["bob", "wonderland"],
    ] as const) {
      const r = await as(user, password);
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Basic realm="staff", charset="UTF-8"');
    }
    // Bob is added and Alice's password changed: seen without a restart.
    writeFileSync(
      join(l.dir, "users"),
      `alice:${bcrypt.hashSync("looking-glass", 10)}\nbob:${bcrypt.hashSync("builder", 10)}\n`,
    );
    await eventually(async () => (await as("bob", "builder")).status === 200, 5000, "bob");
    expect((await as("alice", "wonderland")).status).toBe(401);
    expect((await as("alice", "looking-glass")).status).toBe(200);
  });

  it("ask an auth service that allows or denies, and apply both failure modes", async () => {
    const up = await startUpstream("api");
    const auth = await startUpstream("auth", (req, res) => {
      if (req.headers["x-forwarded-uri"] === "/slow") return; // never answers
      if (req.headers.authorization === "Bearer good") {
        res.writeHead(204, { "x-auth-user": "alice", "x-auth-roles": "admin" }).end();
        return;
      }
      res
        .writeHead(302, { location: "https://login.test/?next=x", "set-cookie": "sso=start" })
        .end("go and log in\n");
    });
    const authUrl = `http://127.0.0.1:${auth.port}/verify`;
    const l = await startLintel(`
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  servers:
  - ip: 127.0.0.1
    port: 0
    engine: ${engine}
    layers:
    - {kind: extAuth, url: "${authUrl}", timeoutMs: 300, upstreamHeaders: [x-auth-user]}
  - ip: 127.0.0.1
    port: 0
    engine: ${engine}
    layers:
    - {kind: extAuth, name: open, url: "${authUrl}", timeoutMs: 300, failureMode: allow}
`);
    const port = l.port("edge", 0);
    const ok = await call(port, {
      path: "/orders?id=7",
      headers: { host: "api.test", authorization: "Bearer good", "x-auth-user": "mallory" },
    });
    expect(ok.status).toBe(200);
    expect(upstreamSaw(ok)["x-auth-user"]).toBe("alice");
    expect(upstreamSaw(ok)["x-auth-roles"]).toBeUndefined();
    const asked = auth.seen.at(-1)!;
    expect(asked.url).toBe("/verify");
    expect(asked.headers["x-forwarded-uri"]).toBe("/orders?id=7");
    expect(asked.headers["x-forwarded-method"]).toBe("GET");
    expect(asked.headers["x-forwarded-host"]).toBe("api.test");

    const denied = await call(port, { path: "/orders", headers: { host: "api.test" } });
    expect(denied.status).toBe(302);
    expect(denied.headers.location).toBe("https://login.test/?next=x");
    expect(denied.headers["set-cookie"]).toEqual(["sso=start"]);
    expect(denied.text).toBe("go and log in\n");

    const upstreamCalls = up.seen.length;
    const t0 = Date.now();
    const closed = await call(port, { path: "/slow", headers: { host: "api.test" } });
    expect(closed.status).toBe(503);
    expect(decodeURIComponent(closed.headers["l5d-err"] as string)).toBe(
      `extAuth: the auth service at ${authUrl} failed: no answer within 300 ms`,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(up.seen.length).toBe(upstreamCalls);

    const open = await call(l.port("edge", 1), { path: "/slow", headers: { host: "api.test" } });
    expect(open.status).toBe(200);
    expect(up.seen.length).toBe(upstreamCalls + 1);

    const m = await metricsJson(l);
    expect(m["rt/edge/auth/extAuth/allowed"]).toBe(1);
    expect(m["rt/edge/auth/extAuth/denied"]).toBe(1);
    expect(m["rt/edge/auth/extAuth/errors"]).toBe(1);
    expect(m["rt/edge/auth/open/failed_open"]).toBe(1);
  });

  it("apply a service entry's layer to its prefix only", async () => {
    const up = await startUpstream("api");
    const users = `ops:${bcrypt.hashSync("pw", 10)}\n`;
    const l = await startLintel(
      `
admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: edge
  identifier: {kind: io.l5d.path, segments: 1}
  dtab: /svc => /$/inet/127.0.0.1/${up.port}
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc/admin
      layers:
      - {kind: basicAuth, htpasswd: users}
  servers:
  - {ip: 127.0.0.1, port: 0, engine: ${engine}}
`,
      { users },
    );
    const port = l.port();
    expect((await call(port, { path: "/public/x", headers: { host: "a" } })).status).toBe(200);
    const refused = await call(port, { path: "/admin/x", headers: { host: "a" } });
    expect(refused.status).toBe(401);
    expect(refused.headers["www-authenticate"]).toBe('Basic realm="lintel", charset="UTF-8"');
    const basic = `Basic ${Buffer.from("ops:pw").toString("base64")}`;
    const ok = await call(port, { path: "/admin/x", headers: { host: "a", authorization: basic } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text).url).toBe("/admin/x");
  });
});

describe("a jwt layer on uws workers", () => {
  it("verifies tokens in every worker thread, each with its own keys", async () => {
    const up = await startUpstream("api");
    const key = await testKey("k1");
    const jwks = await jwksServer(key);
    const l: Lintel = await startLintel(
      `workers: 2\n${edgeConfig(up, "uws", `    - {kind: jwt, jwksUrl: "${jwks.url}", claimsToHeaders: {sub: x-user}}`)}`,
    );
    const port = l.port();
    const token = await sign(key, Date.now());
    await eventually(
      async () => {
        const replies = await Promise.all(
          Array.from({ length: 16 }, () => call(port, { headers: bearer(token) })),
        );
        expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
        expect(replies.every((r) => upstreamSaw(r)["x-user"] === "alice")).toBe(true);
        const stats = l.runtime.pool!.stats;
        return stats.length > 1 && stats.every((s) => s.requests > 0);
      },
      8000,
      "every worker to serve requests",
    );
    const refused = await burst(port, 8, "api.test");
    expect(refused.map((r) => r.status)).toEqual(refused.map(() => 401));
    // Each worker fetched the keys for itself.
    expect(jwks.fetches).toBeGreaterThanOrEqual(2);
  });
});
