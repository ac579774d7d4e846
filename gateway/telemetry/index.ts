// Metrics: counters, gauges and latency histograms kept per thread in a registry under
// Linkerd 1's metric names, snapshots that add up across the worker threads, and the
// request metrics of routers (per server, service and client), and each thread's process
// metrics (event loop, GC, heap). The admin server renders them (gateway/admin/metrics.ts).

export {
  BUCKETS,
  bucketOf,
  bucketValue,
  cumulativeCounts,
  Histogram,
  type HistogramSnapshot,
  type HistogramSummary,
  mergeHistograms,
  PROMETHEUS_BUCKETS_SECONDS,
  percentile,
  summarize,
} from "./histogram.js";
export {
  Counter,
  Gauge,
  type Labels,
  type MetricsSnapshot,
  mergeSnapshots,
  Registry,
  Scope,
  type ScopeName,
  type ScopeSnapshot,
  withoutGauges,
} from "./registry.js";
export {
  type BalancerSource,
  type CacheCounters,
  CLIENT_CLOSED,
  ClientStats,
  MAX_CLIENTS,
  MAX_SERVICES,
  processScope,
  RESPONSE_TRUNCATED,
  RequestStats,
  RouterMetrics,
  ServerStats,
  ServiceStats,
} from "./request-stats.js";
export { EVENT_LOOP_WINDOW_MS, type ThreadMetrics, threadMetrics } from "./thread-metrics.js";
