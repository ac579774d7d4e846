// The `jwt` layer: a request must carry a JSON Web Token (Authorization: Bearer, another
// field, or a cookie) signed by one of the layer's keys with an allowed asymmetric
// algorithm, from an accepted issuer, for an accepted audience, and valid now (within
// the clock skew). Verification is jose's. A token verified once is remembered until it
// expires (bounded; forgotten when the keys change), so a client's next requests pass
// without a signature check and without waiting. Refused: 401 with an RFC 6750 challenge,
// or 503 when no key could be loaded at all.

import {
  decodeProtectedHeader,
  errors,
  type FlattenedJWSInput,
  type JWK,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyOptions,
  jwtVerify,
} from "jose";
import type { Clock } from "../../clock.js";
import {
  boolean,
  def,
  filePath,
  type Infer,
  integer,
  list,
  nonEmptyString,
  object,
  opt,
  record,
  type Schema,
  show,
  string,
} from "../../config/schema.js";
import { ProxyError } from "../../http/errors.js";
import { definePlugin, type ValidationProblem } from "../../plugins/registry.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import {
  type Answerer,
  type ArrivingRequest,
  LATER,
  type ServerLayer,
  type Verdict,
} from "../../routing/server-stack/layer.js";
import type { Counter } from "../../telemetry/registry.js";
import { AuthMetrics } from "./auth-metrics.js";
import { BoundedCache } from "./bounded-cache.js";
import { type Claims, claimText, setJwtClaims } from "./claims.js";
import { JwksSource, KeySet, readKeyFile } from "./jwt-keys.js";
import { cookieValue, fieldValue, HeaderEdit, quoted } from "./request-headers.js";
import { headerName, httpUrl, layerName } from "./schemas.js";

/** The asymmetric JWS algorithms: HMAC (a secret every verifier could sign with) and `none` never. */
export const JWT_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;
type Algorithm = (typeof JWT_ALGORITHMS)[number];

function algorithm(): Schema<Algorithm> {
  const expected = `one of ${JWT_ALGORITHMS.join(", ")}`;
  return {
    expected,
    decode(v, path, cx) {
      if (typeof v === "string" && (JWT_ALGORITHMS as readonly string[]).includes(v))
        return v as Algorithm;
      if (typeof v === "string" && v.toLowerCase() === "none")
        return cx.report(path, "unsigned tokens (alg none) are never accepted");
      if (typeof v === "string" && /^HS\d+$/i.test(v))
        return cx.report(path, `${v} (a shared secret) is not supported: use ${expected}`);
      return cx.report(path, `expected ${expected}, got ${show(v)}`);
    },
  };
}

export const jwtBlock = object({
  /** Names the layer in metrics (`rt/<router>/auth/<name>`) and in its errors. */
  name: def(layerName(), "jwt"),
  /** Accepted `iss` values; empty: any. */
  issuers: def(list(nonEmptyString("an issuer")), []),
  /** Accepted `aud` values (a token needs one of them); empty: any. */
  audiences: def(list(nonEmptyString("an audience")), []),
  algorithms: def(list(algorithm(), { minItems: 1 }), [...JWT_ALGORITHMS]),
  jwksUrl: opt(httpUrl()),
  jwksRefreshMs: def(integer({ min: 1000 }), 300_000),
  jwksCooldownMs: def(integer({ min: 0 }), 30_000),
  jwksTimeoutMs: def(integer({ min: 1, max: 60_000 }), 3000),
  keyFiles: def(list(filePath("a key file")), []),
  clockSkewSec: def(integer({ min: 0, max: 3600 }), 60),
  /** Claims a token must have (`exp` by default: a token that never expires is refused). */
  requiredClaims: def(list(nonEmptyString("a claim name")), ["exp"]),
  tokenHeader: def(headerName(), "authorization"),
  tokenCookie: opt(nonEmptyString("a cookie name")),
  forwardToken: def(boolean(), true),
  claimsToHeaders: def(record(headerName()), {}),
  realm: def(string(), "lintel"),
  cacheSize: def(integer({ min: 0, max: 1_000_000 }), 1000),
});
export type JwtConfig = Infer<typeof jwtBlock>;

/** Why a token was refused: each is counted as `denied/<reason>`. */
const REASONS = [
  "missing",
  "malformed",
  "algorithm",
  "unknown_key",
  "signature",
  "expired",
  "not_yet_valid",
  "issuer",
  "audience",
  "claims",
] as const;
type Reason = (typeof REASONS)[number];

/** A refusal the layer decided itself (before jose is asked). */
class Refusal extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
  ) {
    super(message);
  }
}

/** No key could be loaded: the layer cannot verify anything (503, not the client's fault). */
class NoKeys extends Error {}

/** A verified token, remembered until it expires. */
interface Verified {
  readonly claims: Claims;
  /** The fields claimsToHeaders makes of its claims, flat. */
  readonly add: readonly string[];
  /** The keys' generation it was verified under: a change of keys forgets it. */
  readonly generation: number;
}

/** A token without `exp` (when allowed) is re-verified at least this often. */
const CACHE_MAX_AGE_MS = 10 * 60_000;

export class JwtLayer implements ServerLayer {
  readonly name: string;
  private keys: KeySet;
  private generation = 0;
  private readonly fileKeys: readonly JWK[];
  private readonly jwks: JwksSource | undefined;
  private readonly cache: BoundedCache<Verified>;
  private readonly algorithms: ReadonlySet<string>;
  private readonly options: JWTVerifyOptions;
  private readonly skewMs: number;
  private readonly claimHeaders: readonly (readonly [claim: string, header: string])[];
  /** Drops the fields claimsToHeaders sets, and the token's field unless forwardToken. */
  private readonly headerEdit: HeaderEdit;
  /** The same for a token that came in the cookie. */
  private readonly cookieEdit: HeaderEdit;
  private readonly metrics: AuthMetrics;
  private readonly reasons: Record<Reason, Counter>;
  private readonly realm: string;
  private readonly getKey = (header: JWSHeaderParameters, token: FlattenedJWSInput) =>
    this.resolveKey(header, token);
  /** Set by token(): whether the token just read came from the cookie. */
  private fromCookie = false;

  constructor(
    private readonly c: JwtConfig,
    private readonly clock: Clock,
    ctx: Pick<ServerLayerContext, "log" | "metrics" | "routerLabel">,
  ) {
    this.name = c.name;
    this.realm = quoted(c.realm);
    this.fileKeys = c.keyFiles.flatMap((f) => readKeyFile(f));
    this.keys = new KeySet(this.fileKeys);
    this.cache = new BoundedCache(c.cacheSize);
    this.algorithms = new Set(c.algorithms);
    this.skewMs = c.clockSkewSec * 1000;
    this.options = {
      algorithms: c.algorithms,
      issuer: c.issuers.length > 0 ? c.issuers : undefined,
      audience: c.audiences.length > 0 ? c.audiences : undefined,
      clockTolerance: c.clockSkewSec,
      requiredClaims: c.requiredClaims,
    };
    this.claimHeaders = Object.entries(c.claimsToHeaders);
    const set = this.claimHeaders.map(([, h]) => h);
    this.headerEdit = new HeaderEdit(new Set(c.forwardToken ? set : [...set, c.tokenHeader]));
    this.cookieEdit = new HeaderEdit(new Set(set), c.forwardToken ? undefined : c.tokenCookie);
    this.metrics = new AuthMetrics(ctx.metrics, ctx.routerLabel, c.name);
    this.reasons = Object.fromEntries(
      REASONS.map((r) => [r, this.metrics.counter(`denied/${r}`)]),
    ) as Record<Reason, Counter>;
    const log = ctx.log.child({ layer: c.name });
    if (c.jwksUrl !== undefined) {
      this.jwks = new JwksSource(
        {
          url: c.jwksUrl,
          refreshMs: c.jwksRefreshMs,
          cooldownMs: c.jwksCooldownMs,
          timeoutMs: c.jwksTimeoutMs,
        },
        clock,
        log,
        {
          loads: this.metrics.counter("jwks/loads"),
          failures: this.metrics.counter("jwks/failures"),
        },
        (keys) => {
          this.keys = new KeySet([...this.fileKeys, ...keys]);
          this.generation++;
          this.cache.clear();
        },
      );
      // Fetched now, so the first requests find the keys there.
      void this.jwks.refresh();
    }
  }

  arrive(req: ArrivingRequest, answerer: Answerer): Verdict {
    const now = this.clock.now();
    this.jwks?.tick(now);
    const token = this.token(req.ex.headers);
    const fromCookie = this.fromCookie;
    const hit = this.cache.get(token, now);
    if (hit !== undefined && hit.generation === this.generation) {
      this.metrics.cacheHits.n++;
      this.pass(req, hit, fromCookie);
      return false;
    }
    void this.verify(req, answerer, token, fromCookie, now);
    return LATER;
  }

  /** The request's token; refuses a request without one (or with two). */
  private token(headers: readonly string[]): string {
    const name = this.c.tokenHeader;
    let value: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] !== name) continue;
      if (value !== undefined) throw this.refuse("malformed", `more than one ${name} field`);
      value = headers[i + 1]!;
    }
    if (value !== undefined) {
      let token = value.trim();
      if (token.length > 7 && token.slice(0, 7).toLowerCase() === "bearer ")
        token = token.slice(7).trim();
      // Another scheme (Basic, say) is no token at all (RFC 6750 §3.1: no error code).
      else if (name === "authorization") token = "";
      if (token !== "") {
        this.fromCookie = false;
        return token;
      }
    }
    const cookie = this.c.tokenCookie;
    if (cookie !== undefined) {
      const token = cookieValue(headers, cookie);
      if (token !== undefined && token !== "") {
        this.fromCookie = true;
        return token;
      }
    }
    throw this.refuse("missing", "the request carries no token");
  }

  private async verify(
    req: ArrivingRequest,
    answerer: Answerer,
    token: string,
    fromCookie: boolean,
    now: number,
  ): Promise<void> {
    let verified: Verified;
    try {
      verified = this.remember(token, await this.check(token, now), now);
    } catch (e) {
      answerer.refuse(req, this.refusal(e));
      return;
    }
    try {
      this.pass(req, verified, fromCookie);
    } catch (e) {
      answerer.refuse(req, e as ProxyError);
      return;
    }
    answerer.proceed(req);
  }

  /** The token's claims once its signature and claims hold; throws why not. */
  private async check(token: string, now: number): Promise<JWTPayload> {
    // Looked at before any key: a token that is not a JWS, or names an algorithm that is
    // not allowed (`none` among them), is refused without a key lookup or a JWKS fetch.
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new Refusal("malformed", "the token is malformed");
    }
    if (typeof alg !== "string" || !this.algorithms.has(alg))
      throw new Refusal("algorithm", `the token's algorithm ${String(alg)} is not allowed`);
    const jwks = this.jwks;
    if (jwks !== undefined && !jwks.loaded) {
      // Only before the first fetch came back: waits at most jwksTimeoutMs.
      await jwks.refresh();
      if (!jwks.loaded && this.fileKeys.length === 0)
        throw new NoKeys(`the JWKS at ${jwks.opts.url.href} cannot be loaded: ${jwks.lastError}`);
    }
    const options = { ...this.options, currentDate: new Date(now) };
    try {
      return (await jwtVerify(token, this.getKey, options)).payload;
    } catch (e) {
      if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw e;
      // Several keys fit a token without a kid: the one that verifies it, if any does.
      for await (const key of e) {
        try {
          return (await jwtVerify(token, key, options)).payload;
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  /** jose's key lookup: a kid the layer does not know has the JWKS fetched again, once. */
  private async resolveKey(header: JWSHeaderParameters, token: FlattenedJWSInput) {
    try {
      return await this.keys.resolve(header, token);
    } catch (e) {
      const jwks = this.jwks;
      if (!(e instanceof errors.JWKSNoMatchingKey) || jwks === undefined) throw e;
      // The issuer may have rotated its keys; at most one fetch per jwksCooldownMs.
      const generation = this.generation;
      await jwks.refresh();
      if (this.generation === generation) throw e;
      return this.keys.resolve(header, token);
    }
  }

  private remember(token: string, payload: JWTPayload, now: number): Verified {
    const add: string[] = [];
    for (const [claim, header] of this.claimHeaders) {
      const v = claimText(payload, claim);
      if (v !== undefined) add.push(header, fieldValue(v));
    }
    // The generation the token was checked under: a rotation during the check forgets it.
    const verified: Verified = { claims: payload, add, generation: this.generation };
    const exp = typeof payload.exp === "number" ? payload.exp * 1000 + this.skewMs : Infinity;
    this.cache.set(token, verified, Math.min(exp, now + CACHE_MAX_AGE_MS));
    return verified;
  }

  private pass(req: ArrivingRequest, v: Verified, fromCookie: boolean): void {
    (fromCookie ? this.cookieEdit : this.headerEdit).apply(req, v.add);
    setJwtClaims(req, v.claims);
    this.metrics.allowed.n++;
  }

  /** A 401 with the RFC 6750 challenge (with an error code unless no token came). */
  private refuse(reason: Reason, message: string): ProxyError {
    this.metrics.denied.n++;
    this.reasons[reason].n++;
    const challenge =
      reason === "missing"
        ? `Bearer realm=${this.realm}`
        : `Bearer realm=${this.realm}, error="invalid_token", error_description=${quoted(message)}`;
    return new ProxyError("LINTEL_UNAUTHORIZED", `${this.name}: ${message}`, [
      "www-authenticate",
      challenge,
    ]);
  }

  /** What a failed check becomes: a 401 naming why, or a 503 when no key could be had. */
  private refusal(e: unknown): ProxyError {
    if (e instanceof ProxyError) return e;
    if (e instanceof NoKeys) {
      this.metrics.errors.n++;
      return new ProxyError("LINTEL_UNAVAILABLE", `${this.name}: ${e.message}`);
    }
    if (e instanceof Refusal) return this.refuse(e.reason, e.message);
    if (e instanceof errors.JWTExpired) return this.refuse("expired", "the token has expired");
    if (e instanceof errors.JWTClaimValidationFailed) {
      if (e.reason === "missing") return this.refuse("claims", `the token has no ${e.claim} claim`);
      switch (e.claim) {
        case "nbf":
          return this.refuse("not_yet_valid", "the token is not valid yet (nbf)");
        case "iss":
          return this.refuse("issuer", "the token's issuer (iss) is not accepted");
        case "aud":
          return this.refuse("audience", "the token's audience (aud) is not accepted");
        default:
          return this.refuse("claims", `the token's ${e.claim} claim is not valid`);
      }
    }
    if (e instanceof errors.JOSEAlgNotAllowed)
      return this.refuse("algorithm", "the token's algorithm is not allowed");
    if (e instanceof errors.JWSSignatureVerificationFailed)
      return this.refuse("signature", "the token's signature does not verify");
    if (e instanceof errors.JWKSNoMatchingKey)
      return this.refuse("unknown_key", "no key of this layer matches the token");
    if (e instanceof errors.JOSEError) return this.refuse("malformed", "the token is malformed");
    // A key jose will not use for the token (an RSA key under 2048 bits, say).
    this.metrics.errors.n++;
    return this.refuse("signature", `the token cannot be verified: ${(e as Error).message}`);
  }
}

export const jwtLayer = definePlugin({
  category: "serverLayer",
  kind: "jwt",
  schema: jwtBlock,
  validate(c) {
    const problems: ValidationProblem[] = [];
    if (c.jwksUrl === undefined && c.keyFiles.length === 0)
      problems.push("give jwksUrl or keyFiles: the keys tokens are verified with");
    c.keyFiles.forEach((f, i) => {
      try {
        readKeyFile(f);
      } catch (e) {
        problems.push({ field: `keyFiles[${i}]`, message: (e as Error).message });
      }
    });
    return problems;
  },
  create: (c, ctx) => new JwtLayer(c, ctx.clock, ctx),
});
