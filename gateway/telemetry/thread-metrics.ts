// Process metrics of one thread (event-loop delay, GC, V8 heap) and, on the main thread,
// of the whole process (RSS, CPU): read when the thread's snapshot is taken, never on the
// request path. Each thread's scope is labelled `thread="main"`, `thread="worker-1"`, …,
// so workers' figures stay apart when snapshots are merged.

import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import type { Registry } from "./registry.js";

/**
 * Event-loop delay is sampled every RESOLUTION_MS (Node's default is 10 ms; finer costs a
 * timer wake-up each time) and reported over windows of WINDOW_MS: a scrape sees the
 * delay of the last full window, not since start (where the maximum would never fall).
 */
const RESOLUTION_MS = 10;
export const EVENT_LOOP_WINDOW_MS = 5000;

/** The GC kinds perf_hooks reports (`detail.kind`), by their constant's value. */
const GC_KINDS: Readonly<Record<number, string>> = {
  1: "minor",
  2: "major",
  4: "incremental",
  8: "weakcb",
};

export interface ThreadMetrics {
  /** Stops the event-loop monitor, the GC observer and the window timer. */
  close(): void;
}

/**
 * Adds `thread`'s process metrics to `registry` (`process/thread/<thread>/…`, Prometheus
 * `process:…{thread="<thread>"}`); with `wholeProcess`, also the process's RSS and CPU
 * time (`process/rss_bytes`, `process/cpu_seconds`), which only one thread should report.
 * `eventLoopWindowMs` (tests) shortens the event-loop delay's window.
 */
export function threadMetrics(
  registry: Registry,
  thread: string,
  o: { wholeProcess?: boolean; eventLoopWindowMs?: number } = {},
): ThreadMetrics {
  const scope = registry.scope({
    flat: `process/thread/${thread}`,
    prom: "process",
    labels: [["thread", thread]],
  });
  const heapUsed = scope.gauge("heap_used_bytes");
  const heapTotal = scope.gauge("heap_total_bytes");
  const p50 = scope.gauge("event_loop_delay_p50_seconds");
  const p99 = scope.gauge("event_loop_delay_p99_seconds");
  const max = scope.gauge("event_loop_delay_max_seconds");
  const mean = scope.gauge("event_loop_delay_mean_seconds");

  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  // The histogram holds the time between two ticks of its timer, resolution included:
  // the delay is what is over the resolution. Nanoseconds to seconds; a histogram with no
  // sample yet reports NaN or huge values.
  const seconds = (ns: number) =>
    Number.isFinite(ns) && delay.count > 0 ? Math.max(0, ns - RESOLUTION_MS * 1e6) / 1e9 : 0;
  const closeWindow = () => {
    p50.n = seconds(delay.percentile(50));
    p99.n = seconds(delay.percentile(99));
    max.n = seconds(delay.max);
    mean.n = seconds(delay.mean);
    delay.reset();
  };
  const window = setInterval(closeWindow, o.eventLoopWindowMs ?? EVENT_LOOP_WINDOW_MS);
  window.unref();

  // GC: collections and their time, by kind, in scopes of their own (labels thread, kind).
  const gcScopes = new Map<string, { count: { n: number }; seconds: { n: number } }>();
  const gcOf = (kind: string) => {
    let g = gcScopes.get(kind);
    if (!g) {
      const s = registry.scope({
        flat: `process/thread/${thread}/gc/${kind}`,
        prom: "process:gc",
        labels: [
          ["thread", thread],
          ["kind", kind],
        ],
      });
      g = { count: s.counter("collections"), seconds: s.counter("duration_seconds") };
      gcScopes.set(kind, g);
    }
    return g;
  };
  // Every kind from the start, so the set of series does not change with the first GC.
  for (const kind of Object.values(GC_KINDS)) gcOf(kind);
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as { detail?: { kind?: number } }).detail;
      const kind = GC_KINDS[detail?.kind ?? 0] ?? "other";
      const g = gcOf(kind);
      g.count.n++;
      g.seconds.n += e.duration / 1000;
    }
  });
  gc.observe({ entryTypes: ["gc"] });

  const proc = o.wholeProcess
    ? registry.scope({ flat: "process", prom: "process", labels: [] })
    : undefined;
  const rss = proc?.gauge("rss_bytes");
  const cpu = proc?.counter("cpu_seconds");
  registry.beforeSnapshot(() => {
    const h = getHeapStatistics();
    heapUsed.n = h.used_heap_size;
    heapTotal.n = h.total_heap_size;
    if (rss) rss.n = process.memoryUsage.rss();
    if (cpu) {
      const u = process.cpuUsage();
      cpu.n = (u.user + u.system) / 1e6;
    }
  });

  return {
    close() {
      clearInterval(window);
      delay.disable();
      gc.disconnect();
    },
  };
}
