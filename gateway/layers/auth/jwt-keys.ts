// The keys a `jwt` layer verifies tokens with: files read when the layer is made (PEM
// public keys or certificates, a JWK, a JWKS) and a JWKS URL fetched in the background,
// again every `refreshMs` (checked as requests come) and when a token names a key id the
// layer does not know, at most once per `cooldownMs`. A failed fetch keeps the keys it
// had. Key selection is jose's (createLocalJWKSet); a key without a `kid` (a PEM file)
// verifies tokens whatever `kid` they name.

import { createPublicKey, type JsonWebKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JWK,
  type JWSHeaderParameters,
} from "jose";
import type { Clock } from "../../clock.js";
import type { Logger } from "../../log.js";
import type { Counter } from "../../telemetry/registry.js";
import { boundedFetch, FetchError, KEEP_BODY } from "./bounded-fetch.js";

type Resolver = ReturnType<typeof createLocalJWKSet>;

/** A verification key for a token's header, as jose's key functions resolve one. */
export type KeyResolver = (
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
) => ReturnType<Resolver>;

/** A set of public keys: those with a `kid` matched by it, those without matched by type. */
export class KeySet {
  private readonly named: Resolver | undefined;
  private readonly anonymous: Resolver | undefined;
  readonly size: number;

  constructor(keys: readonly JWK[]) {
    const named = keys.filter((k) => typeof k.kid === "string");
    const anonymous = keys.filter((k) => typeof k.kid !== "string");
    this.named = named.length > 0 ? createLocalJWKSet({ keys: named }) : undefined;
    this.anonymous = anonymous.length > 0 ? createLocalJWKSet({ keys: anonymous }) : undefined;
    this.size = keys.length;
  }

  /** The key for `header` (jose's getKey); throws JWKSNoMatchingKey when none fits. */
  async resolve(header: JWSHeaderParameters, token: FlattenedJWSInput) {
    if (this.named !== undefined) {
      try {
        return await this.named(header, token);
      } catch (e) {
        if (!(e instanceof errors.JWKSNoMatchingKey) || this.anonymous === undefined) throw e;
      }
    }
    if (this.anonymous !== undefined) return this.anonymous({ ...header, kid: undefined }, token);
    throw new errors.JWKSNoMatchingKey();
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** The public keys in a key file, as JWKs; throws an Error saying what is wrong with it. */
export function readKeyFile(file: string): JWK[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return parseKeys(text, file);
}

/** The public keys in `text` (PEM blocks, a JWK or a JWKS); `file` names it in errors. */
export function parseKeys(text: string, file: string): JWK[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (e) {
      throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
    }
    const obj = json as { keys?: unknown };
    const list = Array.isArray(obj.keys) ? obj.keys : [json];
    if (list.length === 0) throw new Error(`${file} holds no keys`);
    return list.map((k, i) => publicJwk(k, `${file}${Array.isArray(obj.keys) ? ` key ${i}` : ""}`));
  }
  const keys: JWK[] = [];
  for (const m of trimmed.matchAll(PEM_BLOCK)) {
    const [block, label] = m as unknown as [string, string];
    if (label.includes("PRIVATE KEY"))
      throw new Error(`${file} holds a private key (${label}): give the public key`);
    try {
      const key =
        label === "CERTIFICATE"
          ? new X509Certificate(block).publicKey
          : label === "PUBLIC KEY" || label === "RSA PUBLIC KEY"
            ? createPublicKey(block)
            : undefined;
      if (key === undefined) throw new Error(`a PEM ${label} is not a public key or certificate`);
      keys.push(key.export({ format: "jwk" }) as JWK);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  }
  if (keys.length === 0)
    throw new Error(`${file} holds no PEM public key or certificate, JWK or JWKS`);
  return keys;
}

/** `k` if it is a public key JWK lintel can verify with; throws otherwise. */
function publicJwk(k: unknown, where: string): JWK {
  if (typeof k !== "object" || k === null || typeof (k as JWK).kty !== "string")
    throw new Error(`${where} is not a JWK (no "kty")`);
  const jwk = k as JWK;
  if (jwk.kty === "oct") throw new Error(`${where} is a shared secret (kty "oct"): not supported`);
  if ("d" in jwk) throw new Error(`${where} is a private key: give the public key`);
  try {
    createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
  } catch (e) {
    throw new Error(`${where} is not a usable key: ${(e as Error).message}`);
  }
  return jwk;
}

export interface JwksOptions {
  readonly url: URL;
  readonly refreshMs: number;
  readonly cooldownMs: number;
  readonly timeoutMs: number;
}

export interface JwksCounters {
  readonly loads: Counter;
  readonly failures: Counter;
}

/** The most a JWKS document may weigh: a few dozen keys fit in a fraction of it. */
const MAX_JWKS_BYTES = 1024 * 1024;
/** With no keys yet every request is refused: try again this soon, whatever the cooldown. */
const NO_KEYS_RETRY_MS = 1000;

export class JwksSource {
  /** The keys of the last good fetch (undefined until one succeeds). */
  keys: JWK[] | undefined;
  /** Why the last fetch failed ("" after a good one). */
  lastError = "";
  private text = "";
  private loading: Promise<void> | undefined;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private loadedAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly opts: JwksOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly counters: JwksCounters,
    /** Called with the new keys when a fetch brings a set different from the last. */
    private readonly onChange: (keys: JWK[]) => void,
  ) {}

  get loaded(): boolean {
    return this.keys !== undefined;
  }

  /** On each request: a background fetch once the keys are `refreshMs` old. */
  tick(now: number): void {
    if (
      now - this.loadedAt >= this.opts.refreshMs &&
      this.loading === undefined &&
      now - this.lastAttempt >= this.cooldown()
    )
      void this.refresh();
  }

  /** How long after a fetch began the next may begin. */
  private cooldown(): number {
    return this.loaded ? this.opts.cooldownMs : Math.min(this.opts.cooldownMs, NO_KEYS_RETRY_MS);
  }

  /**
   * Fetches the keys again unless a fetch is under way (then its end is waited for) or
   * one started less than the cooldown ago. Resolves when that is over; never rejects.
   */
  refresh(): Promise<void> {
    if (this.loading !== undefined) return this.loading;
    const now = this.clock.now();
    if (now - this.lastAttempt < this.cooldown()) return Promise.resolve();
    this.lastAttempt = now;
    this.loading = this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    const url = this.opts.url;
    try {
      const res = await boundedFetch(
        {
          url,
          method: "GET",
          headers: ["accept", "application/jwk-set+json, application/json"],
          timeoutMs: this.opts.timeoutMs,
          maxBodyBytes: MAX_JWKS_BYTES,
          keepBody: KEEP_BODY,
        },
        this.clock,
      );
      if (res.status !== 200) throw new Error(`it answered ${res.status}`);
      const keys = jwksKeys(res.body.toString("utf8"));
      this.counters.loads.n++;
      this.lastError = "";
      this.loadedAt = this.clock.now();
      const text = JSON.stringify(keys);
      if (text === this.text) return;
      const first = this.keys === undefined;
      this.text = text;
      this.keys = keys;
      this.onChange(keys);
      this.log.info(first ? "JWKS loaded" : "JWKS changed", { url: url.href, keys: keys.length });
    } catch (e) {
      this.counters.failures.n++;
      this.lastError = e instanceof FetchError ? `${e.reason}: ${e.message}` : (e as Error).message;
      this.log.warn("cannot load the JWKS", { url: url.href, error: this.lastError });
    }
  }
}

/** The public keys of a JWKS document; throws when it is not one or has none usable. */
export function jwksKeys(text: string): JWK[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error("it is not JSON");
  }
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw new Error('it is not a JWKS (no "keys" list)');
  const keys: JWK[] = [];
  // Keys lintel cannot use (a secret, a private key, an unknown type) are left out.
  for (const k of list) {
    try {
      keys.push(publicJwk(k, "key"));
    } catch {
      // skipped
    }
  }
  if (keys.length === 0) throw new Error("it has no usable public key");
  return keys;
}
