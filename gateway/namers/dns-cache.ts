// The answers of DNS look-ups, shared by everything that watches a name: each answer is
// kept for its TTL (clamped), one look-up per name is in flight at a time, and when look-ups
// fail the last answer keeps serving for a while (stale-if-error) before the name fails.
// The cache holds at most `maxNames` names: past that, the least recently used name that
// nothing watches is dropped. Watched names are never dropped (a live watch keeps its
// answer and its refreshes); they count toward the bound, and each name admitted while
// watched names alone fill it is counted as an overflow.

import type { Clock } from "../clock.js";
import type { Logger } from "../log.js";
import type { HostState } from "./dns.js";
import { LookupLimit } from "./dns-lookup-limit.js";

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

/** How big the cache may grow and how much it may ask at once. */
export interface CacheLimits {
  /** Names kept at most (watched names are kept whatever the count). */
  readonly maxNames: number;
  /** Look-ups in flight at most; more wait in a queue (first look-ups ahead of refreshes). */
  readonly maxLookupsInFlight: number;
}

/** The cache's counters (plain fields, so the metrics can read them). */
export interface CacheCounters {
  /** Unwatched names dropped to stay within maxNames. */
  evicts: number;
  /** Names admitted while watched names alone filled maxNames. */
  overflow: number;
}

/** What a name resolves to now, and when to look it up again while it is in use. */
export interface Resolution {
  readonly state: HostState;
  readonly refreshInMs: number;
}

type Answered = Extract<HostState, { kind: "ok" | "neg" }>;

interface Answer {
  readonly state: Answered;
  readonly expiresAt: number;
  /** When a name in use is looked up again (jittered once, when the answer arrives). */
  readonly refreshAt: number;
}

interface Entry {
  readonly host: string;
  answer?: Answer;
  inflight?: Promise<Resolution>;
  /** Look-ups fail since the last success (a warning was logged for this episode). */
  failing: boolean;
  /** Watchers keeping the name in use. */
  users: number;
  /** Neighbours in the list of unwatched names, least recently used first. */
  older?: Entry;
  newer?: Entry;
}

/** Names in use are looked up again this far into their answer's lifetime... */
const REFRESH_AT = 0.85;
/**
 * ...give or take this fraction of it, drawn per answer: names answered together (a burst
 * of first look-ups, a restart) then refresh spread over 6% of their lifetime rather than
 * at one instant. Names refreshed every minRefreshMs spread over 6% more than that.
 */
const REFRESH_JITTER = 0.03;
/** Entries nobody uses are dropped (once expired) at most this often. */
const SWEEP_INTERVAL_MS = 60_000;

export class AnswerCache {
  private readonly entries = new Map<string, Entry>();
  /** The unwatched entries, least recently used first: the ones eviction may drop. */
  private idleOldest: Entry | undefined;
  private idleNewest: Entry | undefined;
  private readonly limit: LookupLimit;
  readonly counters: CacheCounters = { evicts: 0, overflow: 0 };
  /** Watched names alone fill the cache (a warning was logged for this episode). */
  private overflowing = false;
  private lastSweep: number;

  constructor(
    private readonly lookup: DnsLookup,
    private readonly times: CacheTimes,
    private readonly log: Logger,
    private readonly limits: CacheLimits,
    private readonly clock: Pick<Clock, "now">,
    private readonly random: () => number,
  ) {
    this.limit = new LookupLimit(limits.maxLookupsInFlight);
    this.lastSweep = clock.now();
  }

  /** Names cached, watched ones included. */
  get size(): number {
    return this.entries.size;
  }

  /** Look-ups in flight now. */
  get lookupsInFlight(): number {
    return this.limit.inFlight;
  }

  /** Look-ups waiting for a free slot. */
  get lookupsQueued(): number {
    return this.limit.queued;
  }

  /** Marks `host` as in use until `release`: its entry is never dropped meanwhile. */
  retain(host: string): void {
    const e = this.entry(host);
    if (e.users++ === 0) this.unlinkIdle(e);
  }

  release(host: string): void {
    const e = this.entries.get(host);
    if (e && --e.users === 0) this.appendIdle(e);
  }

  /** The cached answer while it has not expired. */
  fresh(host: string): Resolution | undefined {
    const e = this.entries.get(host);
    const a = e?.answer;
    const now = this.clock.now();
    if (!a || now >= a.expiresAt) return undefined;
    this.touch(e!);
    return { state: a.state, refreshInMs: Math.max(0, a.refreshAt - now) };
  }

  /**
   * Looks `host` up (once a look-up slot is free), or joins the look-up already in flight
   * or queued. A name that has an answer is a refresh, and waits behind first look-ups.
   */
  query(host: string): Promise<Resolution> {
    this.sweep();
    const e = this.entry(host);
    this.touch(e);
    if (!e.inflight) {
      const lookup = async () => this.lookup(host);
      e.inflight = this.limit.run(lookup, e.answer !== undefined).then(
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
    const now = this.clock.now();
    const refreshAt = now + this.refreshDelay(lifetimeMs);
    e.answer = { state, expiresAt: now + lifetimeMs, refreshAt };
    return { state, refreshInMs: refreshAt - now };
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

    const now = this.clock.now();
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

  /** How long after an answer arrives its name is looked up again, jittered. */
  private refreshDelay(lifetimeMs: number): number {
    const r = this.random();
    const byTtl = lifetimeMs * (REFRESH_AT + REFRESH_JITTER * (2 * r - 1));
    const min = this.times.minRefreshMs;
    return byTtl >= min ? byTtl : min * (1 + 2 * REFRESH_JITTER * r);
  }

  private entry(host: string): Entry {
    let e = this.entries.get(host);
    if (!e) {
      e = { host, failing: false, users: 0 };
      this.entries.set(host, e);
      this.appendIdle(e);
      this.evictOverLimit();
    }
    return e;
  }

  /** Drops the least recently used unwatched names while the cache is over maxNames. */
  private evictOverLimit(): void {
    const max = this.limits.maxNames;
    while (this.entries.size > max && this.idleOldest !== undefined) {
      // The name just added is the newest idle one: never its own victim.
      if (this.idleOldest === this.idleNewest) break;
      this.drop(this.idleOldest);
      this.counters.evicts++;
    }
    if (this.entries.size <= max) {
      this.overflowing = false;
      return;
    }
    this.counters.overflow++;
    if (!this.overflowing) {
      this.overflowing = true;
      this.log.warn("the DNS cache is over dns.maxNames with names in use; keeping them all", {
        maxNames: max,
        names: this.entries.size,
      });
    }
  }

  private drop(e: Entry): void {
    this.unlinkIdle(e);
    this.entries.delete(e.host);
  }

  /** An unwatched name just used becomes the last to be evicted. */
  private touch(e: Entry): void {
    if (e.users > 0 || e === this.idleNewest) return;
    this.unlinkIdle(e);
    this.appendIdle(e);
  }

  private appendIdle(e: Entry): void {
    e.older = this.idleNewest;
    e.newer = undefined;
    if (this.idleNewest) this.idleNewest.newer = e;
    else this.idleOldest = e;
    this.idleNewest = e;
  }

  private unlinkIdle(e: Entry): void {
    if (e.older) e.older.newer = e.newer;
    else if (this.idleOldest === e) this.idleOldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else if (this.idleNewest === e) this.idleNewest = e.older;
    e.older = e.newer = undefined;
  }

  /** Drops the entries of names nobody uses once their answer (stale time included) is over. */
  private sweep(): void {
    const now = this.clock.now();
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    for (let e = this.idleOldest; e !== undefined; ) {
      const next = e.newer;
      const over = !e.answer || now >= e.answer.expiresAt + this.times.staleIfErrorMs;
      if (!e.inflight && over) this.drop(e);
      e = next;
    }
  }
}

/** `CODE (what happened)` for a DNS error, the code or message for anything else. */
function errorText(err: unknown): string {
  if (err instanceof DnsLookupError) return err.message;
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}
