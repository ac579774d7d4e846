// One thread's metrics: scopes (a server, a service, a client, the process), each with
// counters, gauges and histograms by stat name. Code on the request path holds the metric
// objects and only bumps their fields; names are built once, when a scope is made.
// Snapshots are plain data (they cross threads) and add up across threads.

import { Histogram, type HistogramSnapshot, mergeHistograms } from "./histogram.js";

export class Counter {
  n = 0;
}

/** A value that goes up and down (`n`), or one read when a snapshot is taken. */
export class Gauge {
  n = 0;
  constructor(private readonly read?: () => number) {}
  get value(): number {
    return this.read ? this.read() : this.n;
  }
}

export type Labels = readonly (readonly [name: string, value: string])[];

/**
 * Where a scope's metrics are reported: `flat` is the prefix of Linkerd's metrics.json
 * names (`rt/edge/server/127.0.0.1/4140`); `prom` and `labels` are the Prometheus name
 * prefix and labels of the io.l5d.prometheus telemeter (`rt:server`,
 * `{rt="edge", server="127.0.0.1/4140"}`).
 */
export interface ScopeName {
  readonly flat: string;
  readonly prom: string;
  readonly labels: Labels;
}

/** The metric `stat` of `metrics`, made on first use. */
function made<T>(metrics: Map<string, T>, stat: string, make: () => T): T {
  let m = metrics.get(stat);
  if (m === undefined) {
    m = make();
    metrics.set(stat, m);
  }
  return m;
}

export class Scope {
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histogram>();

  constructor(readonly name: ScopeName) {}

  /** The counter `stat` (e.g. `requests`, `status/200`), made on first use. */
  counter(stat: string): Counter {
    return made(this.counters, stat, () => new Counter());
  }

  /** The gauge `stat`; with `read`, its value is read at each snapshot. */
  gauge(stat: string, read?: () => number): Gauge {
    return made(this.gauges, stat, () => new Gauge(read));
  }

  histogram(stat: string): Histogram {
    return made(this.histograms, stat, () => new Histogram());
  }

  snapshot(): ScopeSnapshot {
    const counters: Record<string, number> = {};
    for (const [k, c] of this.counters) counters[k] = c.n;
    const gauges: Record<string, number> = {};
    for (const [k, g] of this.gauges) gauges[k] = g.value;
    const histograms: Record<string, HistogramSnapshot> = {};
    for (const [k, h] of this.histograms) histograms[k] = h.snapshot();
    return { ...this.name, counters, gauges, histograms };
  }
}

export interface ScopeSnapshot extends ScopeName {
  readonly counters: Readonly<Record<string, number>>;
  readonly gauges: Readonly<Record<string, number>>;
  readonly histograms: Readonly<Record<string, HistogramSnapshot>>;
}

/** Every metric of a thread (or of several, merged), as plain data. */
export interface MetricsSnapshot {
  readonly scopes: readonly ScopeSnapshot[];
}

export class Registry {
  private readonly scopes = new Map<string, Scope>();
  private readonly refreshers: (() => void)[] = [];

  /**
   * `refresh` runs before each snapshot, to bring up to date metrics that are read rather
   * than bumped (a thread's heap, GC and event-loop figures). Never on the request path.
   */
  beforeSnapshot(refresh: () => void): void {
    this.refreshers.push(refresh);
  }

  /** The scope named `name.flat`, made on first use. */
  scope(name: ScopeName): Scope {
    let s = this.scopes.get(name.flat);
    if (!s) {
      s = new Scope(name);
      this.scopes.set(name.flat, s);
    }
    return s;
  }

  snapshot(): MetricsSnapshot {
    for (const refresh of this.refreshers) refresh();
    return { scopes: [...this.scopes.values()].map((s) => s.snapshot()) };
  }
}

/**
 * Adds snapshots: counters and gauges summed, histograms merged bucket by bucket.
 * Scopes are matched by their flat name and keep the order of first appearance.
 */
export function mergeSnapshots(parts: readonly MetricsSnapshot[]): MetricsSnapshot {
  const byName = new Map<
    string,
    {
      name: ScopeName;
      counters: Record<string, number>;
      gauges: Record<string, number>;
      histograms: Map<string, HistogramSnapshot[]>;
    }
  >();
  for (const part of parts) {
    for (const s of part.scopes) {
      let m = byName.get(s.flat);
      if (!m) {
        m = {
          name: { flat: s.flat, prom: s.prom, labels: s.labels },
          counters: {},
          gauges: {},
          histograms: new Map(),
        };
        byName.set(s.flat, m);
      }
      for (const [k, v] of Object.entries(s.counters)) m.counters[k] = (m.counters[k] ?? 0) + v;
      for (const [k, v] of Object.entries(s.gauges)) m.gauges[k] = (m.gauges[k] ?? 0) + v;
      for (const [k, h] of Object.entries(s.histograms)) {
        const list = m.histograms.get(k);
        if (list) list.push(h);
        else m.histograms.set(k, [h]);
      }
    }
  }
  return {
    scopes: [...byName.values()].map((m) => ({
      ...m.name,
      counters: m.counters,
      gauges: m.gauges,
      histograms: Object.fromEntries(
        [...m.histograms].map(([k, list]) => [k, mergeHistograms(list)] as const),
      ),
    })),
  };
}

/**
 * What stays of a thread's metrics once it has ended: its counters and histograms (so
 * totals never go down), not its gauges (what it had in flight is gone).
 */
export function withoutGauges(s: MetricsSnapshot): MetricsSnapshot {
  return { scopes: s.scopes.map((x) => ({ ...x, gauges: {} })) };
}
