// The answers of DNS look-ups, shared by everything that watches a name: each answer is
// kept for its TTL (clamped), one look-up per name is in flight at a time, and when look-ups
// fail the last answer keeps serving for a while (stale-if-error) before the name fails.

import type { Logger } from "../log.js";
import type { HostState } from "./dns.js";

/** One look-up's answer: the addresses and the smallest TTL of their records. */
export interface DnsAnswer {
  readonly ips: readonly string[];
  readonly ttlSecs: number;
}

/**
 * Looks a name up once. A name that does not exist or has no addresses rejects with a
 * NEGATIVE_CODES code (or answers no addresses); any other rejection is a failure.
 */
export type DnsLookup = (host: string) => Promise<DnsAnswer>;

/** "No such name" and "no records of the wanted types", as node:dns reports them. */
export const NEGATIVE_CODES: ReadonlySet<string> = new Set(["ENOTFOUND", "ENODATA"]);

/** A failed look-up: `code` as node:dns names it, `detail` says what happened in words. */
export class DnsLookupError extends Error {
  constructor(
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${code} (${detail})`);
    this.name = "DnsLookupError";
  }
}

export interface CacheTimes {
  /** Answers are kept at least this long, whatever their TTL. */
  readonly minTtlMs: number;
  /** Answers are kept at most this long. */
  readonly maxTtlMs: number;
  /** How long "no such name" is kept. */
  readonly negativeTtlMs: number;
  /** After an answer expires, how long it keeps serving while look-ups fail. */
  readonly staleIfErrorMs: number;
  /** Names in use are looked up at most this often (answers with TTL 0 included). */
  readonly minRefreshMs: number;
}

/** What a name resolves to now, and when to look it up again while it is in use. */
export interface Resolution {
  readonly state: HostState;
  readonly refreshInMs: number;
}

type Answered = Extract<HostState, { kind: "ok" | "neg" }>;

interface Answer {
  readonly state: Answered;
  readonly receivedAt: number;
  readonly expiresAt: number;
}

interface Entry {
  answer?: Answer;
  inflight?: Promise<Resolution>;
  /** Look-ups fail since the last success (a warning was logged for this episode). */
  failing: boolean;
  /** Watchers keeping the name in use. */
  users: number;
}

/** Names in use are looked up again this far into their answer's lifetime. */
const REFRESH_AT = 0.85;
/** Entries nobody uses are dropped (once expired) at most this often. */
const SWEEP_INTERVAL_MS = 60_000;

export class AnswerCache {
  private readonly entries = new Map<string, Entry>();
  private lastSweep = Date.now();

  constructor(
    private readonly lookup: DnsLookup,
    private readonly times: CacheTimes,
    private readonly log: Logger,
  ) {}

  /** Marks `host` as in use until `release`: its entry is never dropped meanwhile. */
  retain(host: string): void {
    this.entry(host).users++;
  }

  release(host: string): void {
    const e = this.entries.get(host);
    if (e) e.users--;
  }

  /** The cached answer while it has not expired. */
  fresh(host: string): Resolution | undefined {
    const a = this.entries.get(host)?.answer;
    const now = Date.now();
    if (!a || now >= a.expiresAt) return undefined;
    return { state: a.state, refreshInMs: this.refreshIn(a, now) };
  }

  /** Looks `host` up now, or joins the look-up already in flight. */
  query(host: string): Promise<Resolution> {
    this.sweep();
    const e = this.entry(host);
    if (!e.inflight) {
      const lookup = async () => this.lookup(host);
      e.inflight = lookup().then(
        (a) => this.answered(host, e, a),
        (err: unknown) => this.failed(host, e, err),
      );
    }
    return e.inflight;
  }

  private answered(host: string, e: Entry, a: DnsAnswer): Resolution {
    const ips = [...new Set(a.ips)].sort();
    if (ips.length === 0) return this.negative(host, e, `${host} has no addresses`);
    const { minTtlMs, maxTtlMs } = this.times;
    const lifetime = Math.min(maxTtlMs, Math.max(minTtlMs, a.ttlSecs * 1000));
    return this.keep(host, e, { kind: "ok", ips }, lifetime);
  }

  private negative(host: string, e: Entry, reason: string): Resolution {
    return this.keep(host, e, { kind: "neg", reason }, this.times.negativeTtlMs);
  }

  private keep(host: string, e: Entry, state: Answered, lifetimeMs: number): Resolution {
    e.inflight = undefined;
    if (e.failing) {
      e.failing = false;
      this.log.info("DNS look-ups work again", { host });
    }
    const now = Date.now();
    e.answer = { state, receivedAt: now, expiresAt: now + lifetimeMs };
    return { state, refreshInMs: this.refreshIn(e.answer, now) };
  }

  private failed(host: string, e: Entry, err: unknown): Resolution {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && NEGATIVE_CODES.has(code)) {
      const what = code === "ENOTFOUND" ? "no such host" : "no addresses";
      return this.negative(host, e, `${host}: ${what} (${code})`);
    }
    e.inflight = undefined;
    const error = new Error(`resolving ${host} failed: ${errorText(err)}`);
    const retryMs = Math.max(this.times.minRefreshMs, this.times.minTtlMs);
    // The resolver was closed (lintel is stopping): nothing to record or report.
    if (code === "ECANCELLED") return { state: { kind: "failed", error }, refreshInMs: retryMs };

    const now = Date.now();
    const keptUntil = e.answer ? e.answer.expiresAt + this.times.staleIfErrorMs : 0;
    const kept = now < keptUntil ? e.answer : undefined;
    if (!e.failing) {
      e.failing = true;
      this.log.warn(kept ? "DNS look-up failed; keeping the last answer" : "DNS look-up failed", {
        host,
        error: error.message,
        keptUntil: kept && new Date(keptUntil).toISOString(),
      });
    }
    if (kept) return { state: kept.state, refreshInMs: Math.min(retryMs, keptUntil - now) };
    if (e.answer) {
      this.log.warn("DNS look-ups still fail; the last answer is no longer used", {
        host,
        error: error.message,
      });
      e.answer = undefined;
    }
    return { state: { kind: "failed", error }, refreshInMs: retryMs };
  }

  private refreshIn(a: Answer, now: number): number {
    const lifetime = a.expiresAt - a.receivedAt;
    const at = a.receivedAt + Math.max(this.times.minRefreshMs, lifetime * REFRESH_AT);
    return Math.max(0, at - now);
  }

  private entry(host: string): Entry {
    let e = this.entries.get(host);
    if (!e) {
      e = { failing: false, users: 0 };
      this.entries.set(host, e);
    }
    return e;
  }

  /** Drops the entries of names nobody uses once their answer (stale time included) is over. */
  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    for (const [host, e] of this.entries) {
      const over = !e.answer || now >= e.answer.expiresAt + this.times.staleIfErrorMs;
      if (e.users === 0 && !e.inflight && over) this.entries.delete(host);
    }
  }
}

/** `CODE (what happened)` for a DNS error, the code or message for anything else. */
function errorText(err: unknown): string {
  if (err instanceof DnsLookupError) return err.message;
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}
