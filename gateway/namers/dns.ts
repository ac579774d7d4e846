// Host name resolution for /$/inet, /$/io.buoyant.rinet and io.l5d.specificHost, as the
// `dns` config block sets it up: the hosts file first, then DNS servers asked with TTLs
// (and the search domains of /etc/resolv.conf for short names).
// A name is looked up when first observed; while it is observed it is looked up again
// before its answer expires, so requests never wait on a refresh; once nothing observes
// it, it is left alone (its answer stays cached until it expires, or until the cache,
// full, drops it).

import { isIP } from "node:net";
import { type Clock, systemClock, type Timer } from "../clock.js";
import type { DnsConfig } from "../config/egress-schemas.js";
import type { Logger } from "../log.js";
import { Cell, constant, type Var, VarCache } from "../naming/index.js";
import type { Registry } from "../telemetry/index.js";
import {
  AnswerCache,
  type CacheLimits,
  type CacheTimes,
  type DnsLookup,
  type Resolution,
} from "./dns-cache.js";
import { dnsQuery, pickFamily } from "./dns-query.js";
import { HostsFile, SYSTEM_HOSTS_FILE } from "./hosts-file.js";
import { readSearchDomains, SYSTEM_RESOLV_CONF } from "./search-domains.js";

export type HostState =
  | { readonly kind: "pending" }
  | { readonly kind: "neg"; readonly reason: string }
  | { readonly kind: "failed"; readonly error: Error }
  | { readonly kind: "ok"; readonly ips: readonly string[] };

export interface HostResolver {
  /** The live addresses of `host` (an IP literal answers at once and never changes). */
  watch(host: string): Var<HostState>;
  /** Reports the resolver's cache and look-ups as metrics (`dns/…`). */
  reportTo?(registry: Registry): void;
}

export interface DnsResolverOptions extends CacheTimes, Partial<CacheLimits> {
  readonly log: Logger;
  readonly lookup: DnsLookup;
  /** Run by close(): stops the look-ups in flight. */
  readonly onClose?: () => void;
  /** Time and refresh timers (tests drive a fake one). */
  readonly clock?: Clock;
  /** Draws the refresh jitter. */
  readonly random?: () => number;
}

/** Names cached when `dns.maxNames` is unset: an egress pool's working set, a few tens of MB. */
const DEFAULT_MAX_NAMES = 100_000;
/**
 * Look-ups in flight when `dns.maxLookupsInFlight` is unset: over a thousand a second at
 * 50 ms each, far above what refreshes of 100,000 names need, below a burst that would
 * have a resolver drop queries.
 */
const DEFAULT_MAX_LOOKUPS_IN_FLIGHT = 64;

const PENDING: HostState = { kind: "pending" };

export class DnsResolver implements HostResolver {
  private readonly cells = new VarCache<string, HostState>();
  private readonly answers: AnswerCache;
  private readonly clock: Clock;
  private closed = false;

  constructor(private readonly opts: DnsResolverOptions) {
    this.clock = opts.clock ?? systemClock;
    this.answers = new AnswerCache(
      opts.lookup,
      opts,
      opts.log,
      {
        maxNames: opts.maxNames ?? DEFAULT_MAX_NAMES,
        maxLookupsInFlight: opts.maxLookupsInFlight ?? DEFAULT_MAX_LOOKUPS_IN_FLIGHT,
      },
      this.clock,
      opts.random ?? Math.random,
    );
  }

  /** The cache's figures: names kept, evictions, overflows and look-ups in flight or queued. */
  get stats() {
    const a = this.answers;
    return {
      names: a.size,
      evicts: a.counters.evicts,
      overflow: a.counters.overflow,
      lookupsInFlight: a.lookupsInFlight,
      lookupsQueued: a.lookupsQueued,
    };
  }

  /** Reports the cache's figures as `dns/…` metrics of `registry` (read at each snapshot). */
  reportTo(registry: Registry): void {
    const scope = registry.scope({ flat: "dns", prom: "dns", labels: [] });
    const a = this.answers;
    scope.gauge("cache/names", () => a.size);
    scope.gauge("lookups/inflight", () => a.lookupsInFlight);
    scope.gauge("lookups/queued", () => a.lookupsQueued);
    // The cache counts in plain fields; the counters take them up at each snapshot.
    const evicts = scope.counter("cache/evicts");
    const overflow = scope.counter("cache/overflow");
    registry.beforeSnapshot(() => {
      evicts.n = a.counters.evicts;
      overflow.n = a.counters.overflow;
    });
  }

  watch(host: string): Var<HostState> {
    if (isIP(host) !== 0) return constant({ kind: "ok", ips: [host] });
    return this.cells.get(
      host,
      () =>
        new Cell<HostState>(this.answers.fresh(host)?.state ?? PENDING, (cell) =>
          this.follow(host, cell),
        ),
    );
  }

  /** Stops every refresh and the look-ups in flight (at shutdown). */
  close(): void {
    this.closed = true;
    this.opts.onClose?.();
  }

  /** Keeps `cell` current while it is observed; returns what stops that. */
  private follow(host: string, cell: Cell<HostState>): () => void {
    let timer: Timer | undefined;
    let stopped = false;
    const apply = (r: Resolution) => {
      if (stopped || this.closed) return;
      const prev = cell.sample();
      if (!sameState(prev, r.state)) {
        if (prev.kind === "ok" || r.state.kind === "ok") {
          this.opts.log.debug("DNS answer changed", {
            host,
            ips: r.state.kind === "ok" ? r.state.ips.join(",") : r.state.kind,
          });
        }
        cell.set(r.state);
      }
      // Setting the cell may have made the last observer leave.
      if (stopped) return;
      timer = this.clock.setTimeout(refresh, r.refreshInMs);
      timer.unref?.();
    };
    const refresh = () => {
      // Another watcher of the name may have renewed its answer meanwhile.
      const renewed = this.answers.fresh(host);
      if (renewed && renewed.refreshInMs > 0) apply(renewed);
      else void this.answers.query(host).then(apply);
    };
    this.answers.retain(host);
    const cached = this.answers.fresh(host);
    if (cached) apply(cached);
    else void this.answers.query(host).then(apply);
    return () => {
      stopped = true;
      if (timer !== undefined) this.clock.clearTimeout(timer);
      this.answers.release(host);
    };
  }
}

/** Answers from the hosts file are kept this long (then clamped like DNS answers). */
const HOSTS_FILE_TTL_SECS = 5;
/** However short the TTLs, a name in use is looked up at most once a second. */
const MIN_REFRESH_MS = 1000;

export interface SystemDnsOptions {
  readonly log: Logger;
  /** The hosts file to read (tests use their own). */
  readonly hostsFile?: string;
  /** The resolv.conf whose search domains apply (tests use their own). */
  readonly resolvConf?: string;
}

/** The resolver the `dns` config block describes. */
export function createDnsResolver(config: DnsConfig, opts: SystemDnsOptions): DnsResolver {
  const hosts = new HostsFile(opts.hostsFile ?? SYSTEM_HOSTS_FILE);
  const servers = dnsQuery({
    ...config,
    searchDomains: readSearchDomains(opts.resolvConf ?? SYSTEM_RESOLV_CONF),
  });
  const lookup: DnsLookup = async (host) => {
    const listed = pickFamily((await hosts.lookup(host)) ?? [], config.family);
    if (listed.length > 0) return { ips: listed, ttlSecs: HOSTS_FILE_TTL_SECS };
    return servers.lookup(host);
  };
  return new DnsResolver({
    log: opts.log,
    lookup,
    onClose: servers.close,
    minTtlMs: config.minTtlSecs * 1000,
    maxTtlMs: config.maxTtlSecs * 1000,
    negativeTtlMs: config.negativeTtlSecs * 1000,
    staleIfErrorMs: config.staleIfErrorSecs * 1000,
    minRefreshMs: MIN_REFRESH_MS,
    maxNames: config.maxNames,
    maxLookupsInFlight: config.maxLookupsInFlight,
  });
}

function sameState(a: HostState, b: HostState): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "ok" && b.kind === "ok") {
    return a.ips.length === b.ips.length && a.ips.every((ip, i) => ip === b.ips[i]);
  }
  if (a.kind === "failed" && b.kind === "failed") return a.error.message === b.error.message;
  return a.kind !== "neg" || a.reason === (b as typeof a).reason;
}
