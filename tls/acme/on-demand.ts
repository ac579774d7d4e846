// On-demand TLS (Caddy's model): a certificate ordered at the first handshake for a name,
// only when the name is allowed (a list of names and `*.domain` patterns) or an `ask`
// endpoint says yes, and within caps on orders per minute and orders at once, so that
// clients cannot make lintel order certificates for any name they like.

import type { AcmeClock } from "./clock.js";
import type { HttpGet } from "./http-get.js";

export interface OnDemandConfig {
  /** Names, and `*.domain` for every name under domain. */
  readonly allow: readonly string[];
  /** GET <ask>?domain=<name>: 200 allows, anything else refuses. */
  readonly ask: string | undefined;
  readonly maxPerMinute: number;
  readonly maxConcurrent: number;
  /** How long a handshake waits for its certificate before it gets the default. */
  readonly waitMs: number;
}

/** How long an `ask` answer is kept (a flood of handshakes for one name asks once). */
const ASK_CACHE_MS = 60_000;
const MINUTE_MS = 60_000;
/** DNS rules: labels of letters, digits and hyphens, at most 253 characters in all. */
const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;

export type Decision = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export class OnDemandPolicy {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly asked = new Map<string, { ok: boolean; at: number }>();
  private readonly issuedAt: number[] = [];
  private inFlight = 0;

  constructor(
    readonly config: OnDemandConfig,
    private readonly get: HttpGet,
    private readonly clock: AcmeClock,
  ) {
    for (const p of config.allow) {
      const name = p.toLowerCase();
      if (name.startsWith("*.")) this.suffixes.push(name.slice(1));
      else this.exact.add(name);
    }
  }

  /** Whether `name` may have a certificate ordered for it. */
  async permits(name: string): Promise<Decision> {
    if (!HOST_NAME.test(name)) return { ok: false, reason: `"${name}" is not a host name` };
    if (this.exact.has(name) || this.suffixes.some((s) => name.endsWith(s))) return { ok: true };
    if (!this.config.ask) return { ok: false, reason: `${name} is not in onDemand.allow` };
    const now = this.clock.now();
    const cached = this.asked.get(name);
    if (cached && now - cached.at < ASK_CACHE_MS) {
      return cached.ok ? { ok: true } : { ok: false, reason: `the ask endpoint refused ${name}` };
    }
    let ok: boolean;
    try {
      const url = new URL(this.config.ask);
      url.searchParams.set("domain", name);
      ok = (await this.get(url.toString())).status === 200;
    } catch (e) {
      return {
        ok: false,
        reason: `the ask endpoint could not be asked about ${name}: ${(e as Error).message}`,
      };
    }
    if (this.asked.size > 10_000) this.asked.clear();
    this.asked.set(name, { ok, at: now });
    return ok ? { ok: true } : { ok: false, reason: `the ask endpoint refused ${name}` };
  }

  /**
   * Takes a slot for one order: false when the per-minute budget is spent or too many
   * orders are under way. `done` must be called when the order ends.
   */
  begin(): boolean {
    const now = this.clock.now();
    while (this.issuedAt.length > 0 && now - this.issuedAt[0]! >= MINUTE_MS) this.issuedAt.shift();
    if (this.issuedAt.length >= this.config.maxPerMinute) return false;
    if (this.inFlight >= this.config.maxConcurrent) return false;
    this.issuedAt.push(now);
    this.inFlight++;
    return true;
  }

  done(): void {
    this.inFlight--;
  }
}
