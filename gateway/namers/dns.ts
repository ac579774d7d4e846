// Host name resolution for /$/inet and /$/io.buoyant.rinet: each watched name is
// resolved when first observed and again every `refreshMs` while in use, so addresses
// follow DNS changes (Linkerd resolved some names once and kept stale IPs).
// NXDOMAIN is negative; a failure after a good answer keeps the last good answer.

import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Logger } from "../log.js";
import { Cell, constant, type Var, VarCache } from "../naming/index.js";

export type HostState =
  | { readonly kind: "pending" }
  | { readonly kind: "neg"; readonly reason: string }
  | { readonly kind: "failed"; readonly error: Error }
  | { readonly kind: "ok"; readonly ips: readonly string[] };

export interface HostResolver {
  /** The live addresses of `host` (an IP literal answers at once and never changes). */
  watch(host: string): Var<HostState>;
}

export type LookupFn = (host: string) => Promise<string[]>;

const systemLookup: LookupFn = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Error codes that mean "this name does not exist" rather than "DNS did not answer". */
const NEGATIVE_CODES = new Set(["ENOTFOUND", "ENODATA", "EAI_NONAME", "EAI_NODATA"]);

export interface PollingResolverOptions {
  readonly log: Logger;
  readonly lookup?: LookupFn;
  /** How often names in use are resolved again. */
  readonly refreshMs?: number;
}

/** Re-resolves names in use every 5 s by default, like Finagle's InetResolver poll. */
export const DEFAULT_REFRESH_MS = 5_000;

export class PollingResolver implements HostResolver {
  private readonly cache = new VarCache<string, HostState>();
  private readonly lookup: LookupFn;
  private readonly refreshMs: number;

  constructor(private readonly opts: PollingResolverOptions) {
    this.lookup = opts.lookup ?? systemLookup;
    this.refreshMs = opts.refreshMs ?? DEFAULT_REFRESH_MS;
  }

  watch(host: string): Var<HostState> {
    if (isIP(host) !== 0) return constant({ kind: "ok", ips: [host] });
    return this.cache.get(
      host,
      () => new Cell<HostState>({ kind: "pending" }, (cell) => this.poll(host, cell)),
    );
  }

  private poll(host: string, cell: Cell<HostState>): () => void {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const once = async () => {
      let next: HostState;
      try {
        const ips = [...new Set(await this.lookup(host))].sort();
        next =
          ips.length > 0
            ? { kind: "ok", ips }
            : { kind: "neg", reason: `${host} has no addresses` };
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code !== undefined && NEGATIVE_CODES.has(err.code)) {
          next = { kind: "neg", reason: `${host}: no such host (${err.code})` };
        } else {
          next = {
            kind: "failed",
            error: new Error(`resolving ${host} failed: ${err.code ?? err.message}`),
          };
        }
      }
      if (stopped) return;
      const prev = cell.sample();
      if (next.kind === "failed" && prev.kind === "ok") {
        this.opts.log.warn("DNS lookup failed; keeping the last answer", {
          host,
          error: next.error.message,
        });
      } else if (!sameState(prev, next)) {
        if (prev.kind === "ok" || next.kind === "ok") {
          this.opts.log.debug("DNS answer changed", {
            host,
            ips: next.kind === "ok" ? next.ips.join(",") : next.kind,
          });
        }
        cell.set(next);
      }
      // Setting the cell may have made the last observer leave.
      if (stopped) return;
      timer = setTimeout(() => void once(), this.refreshMs);
      timer.unref();
    };
    void once();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }
}

function sameState(a: HostState, b: HostState): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "ok" && b.kind === "ok") {
    return a.ips.length === b.ips.length && a.ips.every((ip, i) => ip === b.ips[i]);
  }
  if (a.kind === "failed" && b.kind === "failed") return a.error.message === b.error.message;
  return a.kind !== "neg" || a.reason === (b as typeof a).reason;
}
