// What io.l5d.zipkin and otlp share: a per-thread export queue behind a SpanSink, the
// propagation formats, and an admin page with every thread's export counts (queued,
// sent, dropped, failures), so drops are visible.

import { def, integer, list, oneOf } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { Registry } from "../telemetry/registry.js";
import { TRACE_FORMATS, type TraceFormat } from "../tracing/context.js";
import { type ExportCounters, ExportQueue, type ExportStats } from "../tracing/export-queue.js";
import type { FinishedSpan } from "../tracing/span.js";
import type { SpanSink } from "../tracing/tracer.js";
import type { AdminAnswer, Telemeter, TelemeterAdminRequest } from "./telemeter.js";

/**
 * The fields both kinds take beside their collector's address and sample rate.
 * `propagation`: the formats sent when a request brought none (else it is answered in
 * kind). Every request carries them, sampled or not (so the next hop keeps the decision):
 * each header costs on every request, so the defaults are the fewest that serve.
 */
export const exportFields = (propagation: readonly TraceFormat[]) => ({
  propagation: def(list(oneOf(TRACE_FORMATS)), propagation),
  /** Spans held per thread; 10 000 spans are a few MB at most. */
  maxQueueSpans: def(integer({ min: 1 }), 10_000),
  /** Spans per POST: Zipkin and OTLP collectors take a few hundred comfortably. */
  batchSpans: def(integer({ min: 1 }), 500),
  /** A partial batch waits at most this long. */
  flushIntervalMs: def(integer({ min: 10 }), 1000),
});

export interface TracingTelemeterOptions {
  readonly url: URL;
  readonly sampleRate: number;
  readonly propagation: readonly TraceFormat[];
  readonly maxQueueSpans: number;
  readonly batchSpans: number;
  readonly flushIntervalMs: number;
  readonly encode: (spans: readonly FinishedSpan[]) => string;
  readonly contentType: string;
  /** The admin page with the export counts, e.g. /admin/zipkin.json. */
  readonly adminPath: string;
  readonly log: Logger;
  /** Where the spans sent and dropped are counted (per exporter, summed over threads). */
  readonly metrics?: Registry;
}

export function tracingTelemeter(o: TracingTelemeterOptions): Telemeter {
  const queue = new ExportQueue({
    url: o.url,
    maxQueue: o.maxQueueSpans,
    batchSize: o.batchSpans,
    intervalMs: o.flushIntervalMs,
    encode: o.encode,
    contentType: o.contentType,
    log: o.log,
    counters: o.metrics && exportCounters(o.metrics, o.adminPath),
  });
  const spans: SpanSink = {
    sampleRate: o.sampleRate,
    propagation: o.propagation,
    record: (s) => queue.push(s),
  };
  const serve = async (req: TelemeterAdminRequest): Promise<AdminAnswer> => {
    const total: ExportStats = { queued: 0, sent: 0, dropped: 0, failures: 0 };
    const threads = await req.threads();
    for (const t of threads) {
      if (!("state" in t) || t.state === undefined) continue;
      const s = t.state as ExportStats;
      total.queued += s.queued;
      total.sent += s.sent;
      total.dropped += s.dropped;
      total.failures += s.failures;
    }
    const body = { collector: o.url.href, sampleRate: o.sampleRate, ...total, threads };
    return { contentType: "application/json", body: `${JSON.stringify(body, null, 2)}\n` };
  };
  return {
    spans,
    threadState: () => ({ ...queue.stats }),
    adminRoutes: [{ path: o.adminPath, serve }],
    close: () => queue.close(),
  };
}

/** The span counts of one exporter in the metrics (`telemetry/tracing/<name>/…`). */
function exportCounters(metrics: Registry, adminPath: string): ExportCounters {
  const name = adminPath.replace(/^\/admin\//, "").replace(/\.json$/, "");
  const scope = metrics.scope({
    flat: `telemetry/tracing/${name}`,
    prom: "telemetry:tracing",
    labels: [["exporter", name]],
  });
  return {
    sent: scope.counter("spans_sent"),
    dropped: scope.counter("spans_dropped"),
    failures: scope.counter("export_failures"),
  };
}
