// The `basicAuth` layer: a request must carry `Authorization: Basic` credentials of a user
// in an htpasswd file of bcrypt hashes (read again when the file changes). bcrypt is slow
// on purpose (tens of ms), so it runs in a worker thread, a check that passed is
// remembered, keyed by a salted hash of user and password, for `cacheTtlMs` (bounded,
// forgotten when the file changes), the same credentials checked at once share one
// bcrypt run, and at most MAX_PENDING_CHECKS wait at a time. Refused: 401 with
// `WWW-Authenticate: Basic realm=...`.

import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "../../clock.js";
import {
  boolean,
  def,
  filePath,
  type Infer,
  integer,
  object,
  opt,
  req,
  string,
} from "../../config/schema.js";
import { ProxyError } from "../../http/errors.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ServerLayerContext } from "../../plugins/types.js";
import {
  type Answerer,
  type ArrivingRequest,
  LATER,
  type ServerLayer,
  type Verdict,
} from "../../routing/server-stack/layer.js";
import { AuthMetrics } from "./auth-metrics.js";
import { bcryptWorker } from "./bcrypt-worker.js";
import { BoundedCache } from "./bounded-cache.js";
import { HtpasswdFile, readHtpasswd } from "./htpasswd.js";
import { fieldValue, HeaderEdit, quoted } from "./request-headers.js";
import { headerName, layerName } from "./schemas.js";

export const basicAuthBlock = object({
  /** Names the layer in metrics (`rt/<router>/auth/<name>`) and in its errors. */
  name: def(layerName(), "basicAuth"),
  htpasswd: req(filePath("an htpasswd file")),
  realm: def(string(), "lintel"),
  /** Send the Authorization field on upstream (off: the password stays at the edge). */
  forwardAuthorization: def(boolean(), false),
  /** A field set upstream to the user name (any copy the client sent is dropped). */
  userHeader: opt(headerName()),
  reloadIntervalMs: def(integer({ min: 100 }), 5000),
  cacheSize: def(integer({ min: 0, max: 1_000_000 }), 1000),
  cacheTtlMs: def(integer({ min: 0 }), 300_000),
});
export type BasicAuthConfig = Infer<typeof basicAuthBlock>;

/**
 * bcrypt checks waiting per layer and thread, at most (a check takes ~70 ms at cost 10,
 * so the last waits ~2 s): beyond, a request with credentials not seen before gets 503 at
 * once rather than queueing more (a password-guessing flood cannot grow the queue;
 * credentials already checked still pass from the cache).
 */
export const MAX_PENDING_CHECKS = 32;

/**
 * Compared against for a user the file does not have, so that an unknown user takes as
 * long to refuse as a wrong password (cost 10, of a random password nobody knows).
 */
const NO_SUCH_USER = "$2b$10$/BA9rf7vJNuqLR5NPTMbWuB90NoqKFQYWBPnp7ZCo4J9yhNfibAyG";

interface PendingCheck {
  /** Whether the password matched. */
  readonly ok: Promise<boolean>;
  /** The file's generation when the check began. */
  readonly generation: number;
}

export class BasicAuthLayer implements ServerLayer {
  readonly name: string;
  private readonly file: HtpasswdFile;
  /** Checks that passed: the fields to add upstream, by salted hash of user and password. */
  private readonly cache: BoundedCache<readonly string[]>;
  /** bcrypt runs under way, by the same key: requests with the same credentials share one. */
  private readonly pending = new Map<string, PendingCheck>();
  /** Bumped when the file changes: a check that started before is not remembered. */
  private generation = 0;
  /** Keys the cache's hashes, so they say nothing outside this process. */
  private readonly salt = randomBytes(16).toString("base64");
  private readonly edit: HeaderEdit;
  private readonly challenge: string[];
  private readonly metrics: AuthMetrics;

  constructor(
    private readonly c: BasicAuthConfig,
    private readonly clock: Clock,
    ctx: Pick<ServerLayerContext, "log" | "metrics" | "routerLabel">,
    /** Whether a password matches a bcrypt hash: off the event loop by default. */
    private readonly compare: (password: string, hash: string) => Promise<boolean> = (p, h) =>
      bcryptWorker().compare(p, h),
  ) {
    this.name = c.name;
    this.metrics = new AuthMetrics(ctx.metrics, ctx.routerLabel, c.name);
    this.cache = new BoundedCache(c.cacheTtlMs > 0 ? c.cacheSize : 0);
    this.file = new HtpasswdFile(
      c.htpasswd,
      c.reloadIntervalMs,
      ctx.log.child({ layer: c.name }),
      {
        reloads: this.metrics.counter("reloads"),
        failures: this.metrics.counter("reload_failures"),
      },
      () => {
        this.generation++;
        this.cache.clear();
      },
      clock.now(),
    );
    const drop = new Set<string>();
    if (!c.forwardAuthorization) drop.add("authorization");
    if (c.userHeader !== undefined) drop.add(c.userHeader);
    this.edit = new HeaderEdit(drop);
    this.challenge = ["www-authenticate", `Basic realm=${quoted(c.realm)}, charset="UTF-8"`];
  }

  arrive(req: ArrivingRequest, answerer: Answerer): Verdict {
    const now = this.clock.now();
    this.file.check(now);
    const { user, password } = this.credentials(req.ex.headers);
    const key = createHash("sha256").update(`${this.salt}\0${user}\0${password}`).digest("base64");
    const added = this.cache.get(key, now);
    if (added !== undefined) {
      this.metrics.cacheHits.n++;
      this.pass(req, added);
      return false;
    }
    let check = this.pending.get(key);
    if (check === undefined) {
      if (this.pending.size >= MAX_PENDING_CHECKS) {
        this.metrics.errors.n++;
        throw new ProxyError(
          "LINTEL_OVERLOADED",
          `${this.name}: too many password checks under way; try again`,
          ["retry-after", "1"],
        );
      }
      const hash = this.file.users.get(user);
      const ok = this.compare(password, hash ?? NO_SUCH_USER).then(
        (same) => same && hash !== undefined,
      );
      check = { ok, generation: this.generation };
      this.pending.set(key, check);
      const forget = () => this.pending.delete(key);
      ok.then(forget, forget);
    }
    void this.finish(req, answerer, check, key, user);
    return LATER;
  }

  private async finish(
    req: ArrivingRequest,
    answerer: Answerer,
    check: PendingCheck,
    key: string,
    user: string,
  ): Promise<void> {
    let ok: boolean;
    try {
      ok = await check.ok;
    } catch (e) {
      this.metrics.errors.n++;
      answerer.refuse(
        req,
        new ProxyError("LINTEL_UNAVAILABLE", `${this.name}: ${(e as Error).message}`),
      );
      return;
    }
    if (!ok) {
      answerer.refuse(req, this.refusal("wrong user name or password"));
      return;
    }
    const added = this.c.userHeader === undefined ? [] : [this.c.userHeader, fieldValue(user)];
    // Remembered unless the file changed since the check began (it used the old hash).
    if (check.generation === this.generation)
      this.cache.set(key, added, this.clock.now() + this.c.cacheTtlMs);
    try {
      this.pass(req, added);
    } catch (e) {
      answerer.refuse(req, e as ProxyError);
      return;
    }
    answerer.proceed(req);
  }

  /** The request's user and password; refuses a request without them. */
  private credentials(headers: readonly string[]): { user: string; password: string } {
    let value: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] !== "authorization") continue;
      if (value !== undefined) throw this.refusal("more than one Authorization field");
      value = headers[i + 1]!;
    }
    if (value === undefined) throw this.refusal("the request carries no credentials");
    const v = value.trim();
    if (v.length < 7 || v.slice(0, 6).toLowerCase() !== "basic ")
      throw this.refusal("the request carries no Basic credentials");
    const decoded = Buffer.from(v.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon === -1) throw this.refusal("the Basic credentials are malformed");
    return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }

  private pass(req: ArrivingRequest, added: readonly string[]): void {
    this.edit.apply(req, added);
    this.metrics.allowed.n++;
  }

  private refusal(why: string): ProxyError {
    this.metrics.denied.n++;
    return new ProxyError("LINTEL_UNAUTHORIZED", `${this.name}: ${why}`, this.challenge);
  }
}

export const basicAuthLayer = definePlugin({
  category: "serverLayer",
  kind: "basicAuth",
  schema: basicAuthBlock,
  validate(c) {
    try {
      readHtpasswd(c.htpasswd);
      return [];
    } catch (e) {
      return [{ field: "htpasswd", message: (e as Error).message }];
    }
  },
  create: (c, ctx) => new BasicAuthLayer(c, ctx.clock, ctx),
});
