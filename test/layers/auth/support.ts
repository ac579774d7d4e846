// What the auth layers' unit tests share: a request as the layers see it (with an exchange
// whose header changes are recorded), an answerer that records how the layer decided, a
// clock the test moves, signing keys and a JWKS server on loopback.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import type { Clock } from "../../../gateway/clock.js";
import type { ProxyError } from "../../../gateway/http/errors.js";
import type { ServerExchange } from "../../../gateway/http/exchange.js";
import { silentLogger } from "../../../gateway/log.js";
import {
  type Answerer,
  type ArrivingRequest,
  LATER,
  type ServerLayer,
  type Verdict,
} from "../../../gateway/routing/server-stack/layer.js";
import { Registry } from "../../../gateway/telemetry/registry.js";
import { arriving } from "../../support/fake-exchange.js";

/** A clock at a time the test sets; its timers are real ones (network timeouts). */
export class TestClock implements Clock {
  constructor(public t = Date.parse("2030-01-01T00:00:00Z")) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  setTimeout(fn: () => void, ms: number) {
    return setTimeout(fn, ms);
  }
  clearTimeout(t: unknown): void {
    clearTimeout(t as NodeJS.Timeout);
  }
}

/** A layer context with fresh metrics. */
export function layerContext(router = "edge") {
  return { log: silentLogger, metrics: new Registry(), routerLabel: router };
}

/** A counter of the layer's metrics scope (`rt/<router>/auth/<name>/<stat>`). */
export function counter(
  ctx: { metrics: Registry },
  name: string,
  stat: string,
  router = "edge",
): number {
  const scope = ctx.metrics.snapshot().scopes.find((s) => s.flat === `rt/${router}/auth/${name}`);
  return scope?.counters[stat] ?? 0;
}

/** An exchange with just what the auth layers read, and the fields they set recorded. */
export function exchange(headers: string[], o: Partial<ServerExchange> = {}): ServerExchange {
  const ex = {
    method: "GET",
    url: "/x?y=1",
    httpVersion: "1.1",
    headers,
    secure: false,
    clientAddress: "192.0.2.7",
    replaceHeaders(h: readonly string[]) {
      ex.headers = h as string[];
    },
    ...o,
  };
  return ex as unknown as ServerExchange;
}

export function request(headers: string[], o: Partial<ServerExchange> = {}): ArrivingRequest {
  return arriving(exchange(headers, o));
}

/** How a layer decided, once it has. */
export type Outcome =
  | { kind: "passed" }
  | { kind: "refused"; err: ProxyError }
  | { kind: "answered"; status: number; headers: readonly string[]; body: string };

/** Records the one call a LATER decision ends with. */
export class Decisions implements Answerer {
  readonly seen: Outcome[] = [];
  private waiters: (() => void)[] = [];
  answer(_req: ArrivingRequest, status: number, headers: readonly string[], body: Buffer) {
    this.push({ kind: "answered", status, headers, body: body.toString() });
  }
  proceed() {
    this.push({ kind: "passed" });
  }
  refuse(_req: ArrivingRequest, err: ProxyError) {
    this.push({ kind: "refused", err });
  }
  private push(o: Outcome) {
    this.seen.push(o);
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once `n` decisions have been recorded (at most `ms`). */
  async count(n: number, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (this.seen.length < n) {
      if (Date.now() > end) throw new Error(`only ${this.seen.length} of ${n} decisions came`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

/**
 * Runs a request through `layer` to its decision: a synchronous pass (`sync: true`), a
 * throw (refused at once), an answer, or whatever a LATER decision ended with.
 */
export async function decide(
  layer: ServerLayer,
  req: ArrivingRequest,
): Promise<Outcome & { sync: boolean }> {
  const d = new Decisions();
  let verdict: Verdict;
  try {
    verdict = layer.arrive(req, d);
  } catch (e) {
    return { kind: "refused", err: e as ProxyError, sync: true };
  }
  if (verdict === false) return { kind: "passed", sync: true };
  if (verdict === true) return { ...d.seen[0]!, sync: true };
  if (verdict !== LATER) throw new Error(`unexpected verdict ${String(verdict)}`);
  await d.count(1);
  if (d.seen.length !== 1) throw new Error(`${d.seen.length} decisions for one request`);
  return { ...d.seen[0]!, sync: false };
}

/** A header of a flat field list. */
export function field(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "lintel-auth-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function write(dir: string, name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

/** A signing key pair, its public JWK (with `kid`) and SPKI PEM. */
export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
  readonly pem: string;
}

export async function testKey(kid: string, alg = "RS256"): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, jwk, pem: await exportSPKI(publicKey) };
}

/**
 * A token signed by `key` (with its kid unless `kid: null`) from issuer.test for `api`,
 * valid for an hour from `now`; `claims` add to or replace those.
 */
export function sign(
  key: { alg: string; kid?: string; privateKey: CryptoKey },
  now: number,
  claims: Record<string, unknown> = {},
  o: { kid?: string | null; exp?: number | null; nbf?: number } = {},
): Promise<string> {
  const iat = Math.floor(now / 1000);
  const payload: Record<string, unknown> = {
    sub: "alice",
    iss: "https://issuer.test",
    aud: "api",
    iat,
    ...(o.exp === null ? {} : { exp: o.exp ?? iat + 3600 }),
    ...(o.nbf === undefined ? {} : { nbf: o.nbf }),
    ...claims,
  };
  const kid = o.kid === null ? undefined : (o.kid ?? key.kid);
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, ...(kid === undefined ? {} : { kid }) })
    .sign(key.privateKey);
}

/** A JWKS endpoint on loopback whose keys the test changes; counts its fetches. */
export class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  /** Answer with this status instead (e.g. 500), or hang with "hang". */
  failWith: number | "hang" | undefined;
  private server: Server | undefined;
  port = 0;

  async start(): Promise<this> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      this.fetches++;
      req.resume();
      if (this.failWith === "hang") return;
      if (this.failWith !== undefined) {
        res.writeHead(this.failWith).end("no");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    const a = this.server.address();
    this.port = typeof a === "object" && a ? a.port : 0;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/jwks.json`;
  }

  close(): Promise<void> {
    return new Promise((r) => {
      if (!this.server) return r();
      this.server.closeAllConnections();
      this.server.close(() => r());
    });
  }
}
