// A thread's end of `lintel tap`: the open taps' filters, as the control thread's tap hub
// sends them, and the finished requests that match, bounded per tap and second, handed
// to the hub in batches. With no tap open a finished request costs one boolean check.

import type { RequestObserver, RequestSummary } from "../telemeters/telemeter.js";
import type { Counter, Registry } from "./registry.js";

/** What one tap wants; plain data, sent to every thread that serves requests. */
export interface TapFilter {
  readonly id: number;
  /** A router label; absent: every router. */
  readonly router?: string;
  /** A service name as shown (`/svc/users`); absent: every service. */
  readonly service?: string;
  /** The request target's path starts with this; absent: every path. */
  readonly pathPrefix?: string;
  /** A status (`500`), or a class as its first digit (`5` for 5xx); absent: any status. */
  readonly status?: { readonly code: number } | { readonly class: number };
  /** Most requests a thread sends the tap per second; the rest are counted as dropped. */
  readonly perSecond: number;
}

/** What a thread sends the hub for one tap: the matching requests, and how many it dropped. */
export interface TapBatch {
  readonly tap: number;
  readonly requests: readonly RequestSummary[];
  readonly dropped: number;
}

/** How often matching requests go to the hub: how late a tap's lines may be. */
export const TAP_FLUSH_MS = 100;

/** A tap as a thread keeps it: its filter, this second's count, what waits to be sent. */
interface ThreadTap {
  readonly filter: TapFilter;
  windowStart: number;
  inWindow: number;
  dropped: number;
  requests: RequestSummary[];
}

/** The path of a request target: origin-form as is, absolute-form's path, without the query. */
function pathOf(url: string): string {
  let path = url;
  if (!url.startsWith("/")) {
    const scheme = url.indexOf("://");
    if (scheme < 0) return url;
    const slash = url.indexOf("/", scheme + 3);
    path = slash < 0 ? "/" : url.slice(slash);
  }
  const q = path.indexOf("?");
  return q < 0 ? path : path.slice(0, q);
}

/** Whether a finished request is one `f` asks for. */
export function tapMatches(f: TapFilter, r: RequestSummary): boolean {
  if (f.router !== undefined && f.router !== r.router) return false;
  if (f.service !== undefined && f.service !== r.service) return false;
  if (f.pathPrefix !== undefined && !pathOf(r.url).startsWith(f.pathPrefix)) return false;
  const s = f.status;
  if (s !== undefined) {
    if ("code" in s ? r.status !== s.code : ((r.status / 100) | 0) !== s.class) return false;
  }
  return true;
}

export class TapPoint implements RequestObserver {
  /** Whether some tap is open (and a hub listens): what a finished request checks. */
  open = false;
  private taps: ThreadTap[] = [];
  private sink: ((batches: TapBatch[]) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /**
   * `tap/sent` (requests sent to the hub), `tap/dropped` (over a tap's rate), `tap/open`:
   * made when the first tap opens, so a lintel nobody taps shows none of them.
   */
  private counters: { readonly sent: Counter; readonly dropped: Counter } | undefined;

  constructor(private readonly registry: Registry) {}

  /** Where batches go: the hub itself (control thread) or a message to it (worker). */
  connect(sink: (batches: TapBatch[]) => void): void {
    this.sink = sink;
  }

  /** The taps open now (the hub sends the whole list at each change); [] stops the flow. */
  set(filters: readonly TapFilter[]): void {
    const before = new Map(this.taps.map((t) => [t.filter.id, t]));
    this.taps = filters.map(
      (filter) =>
        before.get(filter.id) ?? {
          filter,
          windowStart: 0,
          inWindow: 0,
          dropped: 0,
          requests: [],
        },
    );
    this.open = this.taps.length > 0 && this.sink !== undefined;
    if (this.open && this.counters === undefined) {
      const scope = this.registry.scope({ flat: "tap", prom: "tap", labels: [] });
      scope.gauge("open", () => this.taps.length);
      this.counters = { sent: scope.counter("sent"), dropped: scope.counter("dropped") };
    }
    if (!this.open) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** RequestObserver: asked for every finished request. */
  sample(): boolean {
    return this.open;
  }

  /** A finished request while some tap is open: kept for each tap it matches, within its rate. */
  observe(r: RequestSummary): void {
    let kept = false;
    let now = 0;
    for (const t of this.taps) {
      if (!tapMatches(t.filter, r)) continue;
      if (now === 0) now = Date.now();
      if (now - t.windowStart >= 1000) {
        t.windowStart = now;
        t.inWindow = 0;
      }
      if (t.inWindow < t.filter.perSecond) {
        t.inWindow++;
        t.requests.push(r);
      } else {
        t.dropped++;
        this.counters!.dropped.n++;
      }
      kept = true;
    }
    if (kept && this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), TAP_FLUSH_MS);
      this.timer.unref();
    }
  }

  private flush(): void {
    this.timer = undefined;
    const batches: TapBatch[] = [];
    for (const t of this.taps) {
      if (t.requests.length === 0 && t.dropped === 0) continue;
      batches.push({ tap: t.filter.id, requests: t.requests, dropped: t.dropped });
      this.counters!.sent.n += t.requests.length;
      t.requests = [];
      t.dropped = 0;
    }
    if (batches.length > 0) this.sink?.(batches);
  }
}

/**
 * The observer routers call: the telemeters' (when some observe) and the tap point. A
 * request either wants is summarized once; each gets it only if it asked.
 */
export function tappedObserver(
  telemeters: RequestObserver | undefined,
  tap: TapPoint,
): RequestObserver {
  return telemeters === undefined ? tap : new Both(telemeters, tap);
}

class Both implements RequestObserver {
  readonly tracer: RequestObserver["tracer"];
  /** What sample() found, for the observe() that follows at once. */
  private telemetersChose = false;
  private tapping = false;

  constructor(
    private readonly telemeters: RequestObserver,
    private readonly tap: TapPoint,
  ) {
    this.tracer = telemeters.tracer;
  }

  sample(): boolean {
    this.telemetersChose = this.telemeters.sample();
    this.tapping = this.tap.open;
    return this.telemetersChose || this.tapping;
  }

  observe(r: RequestSummary): void {
    if (this.telemetersChose) this.telemeters.observe(r);
    if (this.tapping) this.tap.observe(r);
  }
}
