// io.l5d.zipkin: Linkerd 1's Zipkin telemeter (`host`, `port`, `sampleRate`; also the
// linkerd-zipkin plugin's `initialSampleRate`), sending Zipkin v2 JSON to
// http://host:port/api/v2/spans. Linkerd's default port 9410 was Zipkin's Scribe port;
// lintel speaks Zipkin's HTTP API, whose port is 9411. Requests that bring no trace context
// send l5d-ctx-trace and B3 upstream (`propagation`).

import { def, host, number, object, opt, port } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { ZIPKIN_CONTENT_TYPE, zipkinJson } from "../tracing/zipkin.js";
import { exportFields, tracingTelemeter } from "./tracing-telemeter.js";

export const ZIPKIN_ADMIN_PATH = "/admin/zipkin.json";

const fraction = () => number({ min: 0, max: 1, expected: "a fraction from 0 to 1" });

export const zipkinTelemeter = definePlugin({
  category: "telemeter",
  kind: "io.l5d.zipkin",
  schema: object({
    host: def(host(), "localhost"),
    port: def(port(), 9411),
    /** Linkerd's default: one trace in a thousand. */
    sampleRate: opt(fraction()),
    initialSampleRate: opt(fraction()),
    // Linkerd 1 hops read l5d-ctx-trace; Zipkin-instrumented applications read B3.
    ...exportFields(["l5d", "b3"]),
  }),
  create: (config, ctx) => {
    const h = config.host.includes(":") ? `[${config.host}]` : config.host;
    return tracingTelemeter({
      url: new URL(`http://${h}:${config.port}/api/v2/spans`),
      sampleRate: config.sampleRate ?? config.initialSampleRate ?? 0.001,
      propagation: config.propagation,
      maxQueueSpans: config.maxQueueSpans,
      batchSpans: config.batchSpans,
      flushIntervalMs: config.flushIntervalMs,
      encode: (spans) => zipkinJson(spans),
      contentType: ZIPKIN_CONTENT_TYPE,
      adminPath: ZIPKIN_ADMIN_PATH,
      log: ctx.log,
      metrics: ctx.metrics,
    });
  },
});
