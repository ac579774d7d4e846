// The jwt layer: tokens verified with keys from files and from a JWKS URL (fetched before
// the first request, again on an unknown kid at most once per cooldown, rotated keys
// accepted), every kind of bad token refused with 401 and an RFC 6750 challenge naming
// why, claims copied to request fields and kept for later layers, verifications cached.

import { generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DecodeContext, INVALID } from "../../../gateway/config/schema.js";
import { jwtClaim } from "../../../gateway/layers/auth/index.js";
import { type JwtConfig, JwtLayer, jwtBlock } from "../../../gateway/layers/auth/jwt.js";
import { TestCa } from "../../tls/test-ca.js";
import {
  counter,
  decide,
  field,
  JwksServer,
  layerContext,
  request,
  sign,
  TestClock,
  type TestKey,
  tempDir,
  testKey,
  write,
} from "./support.js";

let tmp: ReturnType<typeof tempDir>;
let jwks: JwksServer | undefined;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(async () => {
  tmp.remove();
  await jwks?.close();
  jwks = undefined;
});

function config(raw: Record<string, unknown>): JwtConfig {
  const cx = new DecodeContext(tmp.dir);
  const c = jwtBlock.decode(raw, "", cx);
  if (c === INVALID) throw new Error(cx.issues.map((i) => `${i.path}: ${i.message}`).join("\n"));
  return c;
}

const bearer = (token: string) => ["host", "a.test", "authorization", `Bearer ${token}`];

/** A layer verifying RS256 tokens from issuer.test for `api` with `key`'s PEM file. */
function pemLayer(key: TestKey, clock: TestClock, more: Record<string, unknown> = {}) {
  const ctx = layerContext();
  const file = write(tmp.dir, `${key.kid}.pem`, key.pem);
  const layer = new JwtLayer(
    config({ keyFiles: [file], issuers: ["https://issuer.test"], audiences: ["api"], ...more }),
    clock,
    ctx,
  );
  return { layer, ctx };
}

describe("the jwt layer", () => {
  it("lets a valid token pass, copies claims to fields, and remembers it", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    const { layer, ctx } = pemLayer(key, clock, {
      claimsToHeaders: { sub: "x-user", "org.team": "x-team", email: "x-email" },
    });
    const token = await sign(key, clock.now(), {
      org: { team: "blue" },
      email: "josé@example.test",
    });
    const req = request([...bearer(token), "x-user", "mallory"]);
    const first = await decide(layer, req);
    expect(first).toMatchObject({ kind: "passed", sync: false });
    const h = req.ex.headers;
    expect(h.filter((x) => x === "x-user")).toHaveLength(1);
    expect(field(h, "x-user")).toBe("alice");
    expect(field(h, "x-team")).toBe("blue");
    // Outside printable ASCII: percent-encoded UTF-8, never raw bytes in a field.
    expect(field(h, "x-email")).toBe("jos%C3%A9@example.test");
    // forwardToken is on by default.
    expect(field(h, "authorization")).toBe(`Bearer ${token}`);
    expect(jwtClaim(req, "sub")).toBe("alice");
    expect(jwtClaim(req, "org.team")).toBe("blue");
    expect(jwtClaim(req, "aud")).toBe("api");
    expect(jwtClaim(req, "nope")).toBeUndefined();

    // The same token again: from the cache, decided at once.
    const again = request(bearer(token));
    expect(await decide(layer, again)).toMatchObject({ kind: "passed", sync: true });
    expect(field(again.ex.headers, "x-user")).toBe("alice");
    expect(jwtClaim(again, "sub")).toBe("alice");
    expect(counter(ctx, "jwt", "allowed")).toBe(2);
    expect(counter(ctx, "jwt", "cache_hits")).toBe(1);
  });

  it("removes the token before forwarding when forwardToken is off", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    const { layer } = pemLayer(key, clock, { forwardToken: false, tokenCookie: "session" });
    const token = await sign(key, clock.now());
    const req = request(bearer(token));
    expect((await decide(layer, req)).kind).toBe("passed");
    expect(field(req.ex.headers, "authorization")).toBeUndefined();
    // From the cookie: only that cookie goes.
    const viaCookie = request(["cookie", `a=1; session=${token}; b=2`]);
    expect((await decide(layer, viaCookie)).kind).toBe("passed");
    expect(field(viaCookie.ex.headers, "cookie")).toBe("a=1; b=2");
  });

  it("reads the token from another field when told", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    const { layer } = pemLayer(key, clock, { tokenHeader: "x-token" });
    const token = await sign(key, clock.now());
    expect((await decide(layer, request(["x-token", token]))).kind).toBe("passed");
    const none = await decide(layer, request(bearer(token)));
    expect(none.kind).toBe("refused");
  });

  it("refuses a request without a token with a bare challenge", async () => {
    const { layer, ctx } = pemLayer(await testKey("k1"), new TestClock());
    for (const headers of [
      ["host", "a"],
      ["authorization", "Basic YTpi"],
      ["authorization", "Bearer "],
    ]) {
      const r = await decide(layer, request(headers));
      expect(r).toMatchObject({ kind: "refused", sync: true });
      if (r.kind !== "refused") continue;
      expect(r.err.status).toBe(401);
      expect(r.err.message).toBe("jwt: the request carries no token");
      expect(r.err.headers).toEqual(["www-authenticate", 'Bearer realm="lintel"']);
    }
    expect(counter(ctx, "jwt", "denied/missing")).toBe(3);
  });

  it("refuses every kind of bad token with 401 invalid_token naming why", async () => {
    const clock = new TestClock();
    const now = clock.now();
    const sec = Math.floor(now / 1000);
    const key = await testKey("k1");
    const other = await testKey("k1"); // same kid, another key: a forged signature
    const { layer, ctx } = pemLayer(key, clock);
    const good = await sign(key, now);
    const [h, p, s] = good.split(".") as [string, string, string];
    const tampered = `${h}.${Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), sub: "root" }),
    ).toString("base64url")}.${s}`;
    const cases: [string, string, string][] = [
      ["expired", await sign(key, now - 7200_000), "the token has expired"],
      [
        "not_yet_valid",
        await sign(key, now, {}, { nbf: sec + 600 }),
        "the token is not valid yet (nbf)",
      ],
      [
        "audience",
        await sign(key, now, { aud: "other" }),
        "the token's audience (aud) is not accepted",
      ],
      [
        "issuer",
        await sign(key, now, { iss: "https://evil.test" }),
        "the token's issuer (iss) is not accepted",
      ],
      [
        "algorithm",
        // HS256 keyed with the public key's PEM: the classic confusion attack.
        await new SignJWT({ sub: "alice", aud: "api", iss: "https://issuer.test", exp: sec + 60 })
          .setProtectedHeader({ alg: "HS256", kid: "k1" })
          .sign(new TextEncoder().encode(key.pem)),
        "the token's algorithm HS256 is not allowed",
      ],
      [
        "algorithm",
        new UnsecuredJWT({
          sub: "alice",
          aud: "api",
          iss: "https://issuer.test",
          exp: sec + 60,
        }).encode(),
        "the token's algorithm none is not allowed",
      ],
      ["signature", await sign(other, now), "the token's signature does not verify"],
      ["signature", tampered, "the token's signature does not verify"],
      ["malformed", "not-a-token", "the token is malformed"],
      ["malformed", "a.b.c", "the token is malformed"],
      ["claims", await sign(key, now, {}, { exp: null }), "the token has no exp claim"],
    ];
    for (const [reason, token, why] of cases) {
      const r = await decide(layer, request(bearer(token)));
      expect(r.kind, reason).toBe("refused");
      if (r.kind !== "refused") continue;
      expect(r.err.code, reason).toBe("LINTEL_UNAUTHORIZED");
      expect(r.err.message, reason).toBe(`jwt: ${why}`);
      expect(r.err.headers, reason).toEqual([
        "www-authenticate",
        `Bearer realm="lintel", error="invalid_token", error_description="${why}"`,
      ]);
    }
    for (const reason of ["expired", "not_yet_valid", "audience", "issuer", "claims"])
      expect(counter(ctx, "jwt", `denied/${reason}`), reason).toBe(1);
    expect(counter(ctx, "jwt", "denied/algorithm")).toBe(2);
    expect(counter(ctx, "jwt", "denied/signature")).toBe(2);
    expect(counter(ctx, "jwt", "denied/malformed")).toBe(2);
    expect(counter(ctx, "jwt", "denied")).toBe(cases.length);
    expect(counter(ctx, "jwt", "allowed")).toBe(0);
  });

  it("refuses a token of an allowed algorithm the key cannot verify", async () => {
    const clock = new TestClock();
    const rsa = await testKey("k1");
    const ec = await testKey("k2", "ES256");
    const { layer } = pemLayer(rsa, clock, { algorithms: ["RS256", "ES256"] });
    const r = await decide(layer, request(bearer(await sign(ec, clock.now(), {}, { kid: null }))));
    expect(r).toMatchObject({ kind: "refused" });
    if (r.kind === "refused")
      expect(r.err.message).toBe("jwt: no key of this layer matches the token");
  });

  it("allows the clock skew on exp and nbf, and forgets a cached token once it expires", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    const { layer } = pemLayer(key, clock, { clockSkewSec: 60 });
    const sec = Math.floor(clock.now() / 1000);
    const late = await sign(key, clock.now(), {}, { exp: sec - 30 });
    expect((await decide(layer, request(bearer(late)))).kind).toBe("passed");
    const early = await sign(key, clock.now(), {}, { nbf: sec + 30 });
    expect((await decide(layer, request(bearer(early)))).kind).toBe("passed");
    const short = await sign(key, clock.now(), {}, { exp: sec + 10 });
    expect(await decide(layer, request(bearer(short)))).toMatchObject({
      kind: "passed",
      sync: false,
    });
    expect(await decide(layer, request(bearer(short)))).toMatchObject({
      kind: "passed",
      sync: true,
    });
    clock.advance(71_000);
    const r = await decide(layer, request(bearer(short)));
    expect(r).toMatchObject({ kind: "refused", sync: false });
    if (r.kind === "refused") expect(r.err.message).toBe("jwt: the token has expired");
  });

  it("verifies with whichever of several keys without a kid signed the token", async () => {
    const clock = new TestClock();
    const a = await testKey("a");
    const b = await testKey("b");
    const files = [write(tmp.dir, "a.pem", a.pem), write(tmp.dir, "b.pem", b.pem)];
    const layer = new JwtLayer(config({ keyFiles: files }), clock, layerContext());
    // A token naming a kid no file has still matches the files' kid-less keys.
    expect((await decide(layer, request(bearer(await sign(b, clock.now()))))).kind).toBe("passed");
    const noKid = await sign(b, clock.now(), {}, { kid: null });
    expect((await decide(layer, request(bearer(noKid)))).kind).toBe("passed");
    const stranger = await testKey("c");
    expect((await decide(layer, request(bearer(await sign(stranger, clock.now()))))).kind).toBe(
      "refused",
    );
  });

  it("takes keys from a JWK or JWKS file and a certificate's public key", async () => {
    const clock = new TestClock();
    const a = await testKey("a", "ES256");
    const b = await testKey("b", "EdDSA");
    const ca = await TestCa.root("token signer", "rsa");
    const f = write(tmp.dir, "keys.json", JSON.stringify({ keys: [a.jwk] }));
    const g = write(tmp.dir, "key.jwk", JSON.stringify(b.jwk));
    const h = write(tmp.dir, "signer.crt", ca.certPem);
    const layer = new JwtLayer(config({ keyFiles: [f, g, h] }), clock, layerContext());
    const signer = { alg: "RS256", kid: "signer", privateKey: ca.keys.privateKey };
    for (const k of [a, b, signer])
      expect((await decide(layer, request(bearer(await sign(k, clock.now()))))).kind).toBe(
        "passed",
      );
  });
});

describe("the jwt layer with a JWKS URL", () => {
  it("has a request arriving before the keys are loaded wait for them", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    jwks = await new JwksServer().start();
    jwks.keys = [key.jwk];
    const token = await sign(key, clock.now());
    const layer = new JwtLayer(config({ jwksUrl: jwks.url }), clock, layerContext());
    // No await between creation and the request: the fetch is still under way.
    const r = await decide(layer, request(bearer(token)));
    expect(r).toMatchObject({ kind: "passed", sync: false });
    expect(jwks.fetches).toBe(1);
  });

  it("accepts rotated keys after a refresh on an unknown kid, and drops removed ones", async () => {
    const clock = new TestClock();
    const old = await testKey("old");
    const next = await testKey("new");
    jwks = await new JwksServer().start();
    jwks.keys = [old.jwk];
    const ctx = layerContext();
    const layer = new JwtLayer(config({ jwksUrl: jwks.url, jwksCooldownMs: 1000 }), clock, ctx);
    const oldToken = await sign(old, clock.now());
    expect((await decide(layer, request(bearer(oldToken)))).kind).toBe("passed");
    expect((await decide(layer, request(bearer(oldToken)))).sync).toBe(true);

    // The issuer rotates: the new key comes, the old one goes.
    jwks.keys = [next.jwk];
    clock.advance(1000);
    const newToken = await sign(next, clock.now());
    expect(await decide(layer, request(bearer(newToken)))).toMatchObject({ kind: "passed" });
    expect(jwks.fetches).toBe(2);
    // The keys changed: what was verified with the old key is forgotten, and refused.
    const r = await decide(layer, request(bearer(oldToken)));
    expect(r).toMatchObject({ kind: "refused", sync: false });
    if (r.kind === "refused")
      expect(r.err.message).toBe("jwt: no key of this layer matches the token");
    expect(counter(ctx, "jwt", "jwks/loads")).toBe(2);
  });

  it("fetches at most once per cooldown however many unknown kids come", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    jwks = await new JwksServer().start();
    jwks.keys = [key.jwk];
    const layer = new JwtLayer(
      config({ jwksUrl: jwks.url, jwksCooldownMs: 30_000 }),
      clock,
      layerContext(),
    );
    await decide(layer, request(bearer(await sign(key, clock.now()))));
    expect(jwks.fetches).toBe(1);
    clock.advance(30_000);
    const unknown = await Promise.all(
      Array.from({ length: 10 }, (_, i) => testKey(`x${i}`, "ES256")),
    );
    const results = await Promise.all(
      unknown.map(async (k) => decide(layer, request(bearer(await sign(k, clock.now()))))),
    );
    expect(results.every((r) => r.kind === "refused")).toBe(true);
    // One fetch for all ten (they waited for the same one), none more within the cooldown.
    expect(jwks.fetches).toBe(2);
    await decide(layer, request(bearer(await sign(unknown[0]!, clock.now()))));
    expect(jwks.fetches).toBe(2);
  });

  it("refreshes in the background once the keys are jwksRefreshMs old", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    jwks = await new JwksServer().start();
    jwks.keys = [key.jwk];
    const layer = new JwtLayer(
      config({ jwksUrl: jwks.url, jwksRefreshMs: 60_000, jwksCooldownMs: 0 }),
      clock,
      layerContext(),
    );
    const token = await sign(key, clock.now());
    await decide(layer, request(bearer(token)));
    expect(jwks.fetches).toBe(1);
    clock.advance(60_000);
    // Decided from the cache at once; the fetch goes on behind it.
    expect((await decide(layer, request(bearer(token)))).sync).toBe(true);
    for (let i = 0; i < 100 && jwks.fetches < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(jwks.fetches).toBe(2);
  });

  it("answers 503 while no key can be loaded, then recovers", async () => {
    const clock = new TestClock();
    const key = await testKey("k1");
    jwks = await new JwksServer().start();
    jwks.failWith = 500;
    const ctx = layerContext();
    const layer = new JwtLayer(config({ jwksUrl: jwks.url, jwksTimeoutMs: 200 }), clock, ctx);
    const token = await sign(key, clock.now());
    const r = await decide(layer, request(bearer(token)));
    expect(r.kind).toBe("refused");
    if (r.kind === "refused") {
      expect(r.err.status).toBe(503);
      expect(r.err.message).toBe(`jwt: the JWKS at ${jwks.url} cannot be loaded: it answered 500`);
    }
    expect(counter(ctx, "jwt", "errors")).toBe(1);
    // A JWKS that hangs: the request waits jwksTimeoutMs, no more.
    jwks.failWith = "hang";
    clock.advance(1000);
    const t0 = Date.now();
    const hung = await decide(layer, request(bearer(token)));
    expect(hung.kind).toBe("refused");
    expect(Date.now() - t0).toBeLessThan(2000);
    jwks.failWith = undefined;
    jwks.keys = [key.jwk];
    clock.advance(1000);
    expect((await decide(layer, request(bearer(token)))).kind).toBe("passed");
    expect(counter(ctx, "jwt", "jwks/failures")).toBe(2);
  });
});

describe("the jwt config", () => {
  function problems(raw: Record<string, unknown>): string[] {
    const cx = new DecodeContext(tmp.dir);
    const c = jwtBlock.decode(raw, "layers[0]", cx);
    return cx.issues.map((i) => `${i.path}: ${i.message}`).concat(c === INVALID ? [] : []);
  }

  it("never accepts alg none or a shared-secret algorithm", () => {
    expect(problems({ jwksUrl: "http://x.test/k", algorithms: ["none"] })).toEqual([
      "layers[0].algorithms[0]: unsigned tokens (alg none) are never accepted",
    ]);
    expect(problems({ jwksUrl: "http://x.test/k", algorithms: ["HS256"] })[0]).toMatch(
      /^layers\[0\]\.algorithms\[0\]: HS256 \(a shared secret\) is not supported/,
    );
  });

  it("refuses a JWKS URL that is not http(s)", () => {
    expect(problems({ jwksUrl: "ftp://x.test/k" })).toEqual([
      "layers[0].jwksUrl: expected an http:// or https:// URL, got the scheme ftp:",
    ]);
    expect(problems({ jwksUrl: "not a url" })).toEqual([
      'layers[0].jwksUrl: expected an http:// or https:// URL, got "not a url"',
    ]);
  });

  it("says what is wrong with a key file", async () => {
    const { jwtLayer } = await import("../../../gateway/layers/auth/jwt.js");
    const { privateKey } = await generateKeyPair("RS256", { extractable: true });
    const { exportPKCS8 } = await import("jose");
    const priv = write(tmp.dir, "private.pem", await exportPKCS8(privateKey));
    const junk = write(tmp.dir, "junk.pem", "hello");
    const c = config({ keyFiles: [priv, junk, `${tmp.dir}/missing.pem`] });
    expect(jwtLayer.validate!(c)).toEqual([
      {
        field: "keyFiles[0]",
        message: `${priv} holds a private key (PRIVATE KEY): give the public key`,
      },
      {
        field: "keyFiles[1]",
        message: `${junk} holds no PEM public key or certificate, JWK or JWKS`,
      },
      { field: "keyFiles[2]", message: `cannot read ${tmp.dir}/missing.pem: ENOENT` },
    ]);
    expect(jwtLayer.validate!(config({}))).toEqual([
      "give jwksUrl or keyFiles: the keys tokens are verified with",
    ]);
  });
});
