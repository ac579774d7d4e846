// otlp: spans to an OpenTelemetry collector over OTLP/HTTP with JSON encoding (`url`,
// default http://localhost:4318/v1/traces; `sampleRate`; `serviceName`, default each
// router's label).

import { def, number, object, opt, refine, string } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { OTLP_CONTENT_TYPE, otlpJson } from "../tracing/otlp.js";
import { exportFields, tracingTelemeter } from "./tracing-telemeter.js";

export const OTLP_ADMIN_PATH = "/admin/otlp.json";

const httpUrl = () =>
  refine(string("an http(s) URL"), (s) => {
    try {
      const u = new URL(s);
      return u.protocol === "http:" || u.protocol === "https:"
        ? undefined
        : "expected an http(s) URL";
    } catch {
      return "expected an http(s) URL";
    }
  });

export const otlpTelemeter = definePlugin({
  category: "telemeter",
  kind: "otlp",
  schema: object({
    url: def(httpUrl(), "http://localhost:4318/v1/traces"),
    sampleRate: def(number({ min: 0, max: 1, expected: "a fraction from 0 to 1" }), 0.001),
    serviceName: opt(string("a service name")),
    // OpenTelemetry SDKs read W3C trace context.
    ...exportFields(["w3c"]),
  }),
  create: (config, ctx) =>
    tracingTelemeter({
      url: new URL(config.url),
      sampleRate: config.sampleRate,
      propagation: config.propagation,
      maxQueueSpans: config.maxQueueSpans,
      batchSpans: config.batchSpans,
      flushIntervalMs: config.flushIntervalMs,
      encode: (spans) => otlpJson(spans, config.serviceName),
      contentType: OTLP_CONTENT_TYPE,
      adminPath: OTLP_ADMIN_PATH,
      log: ctx.log,
      metrics: ctx.metrics,
    }),
});
