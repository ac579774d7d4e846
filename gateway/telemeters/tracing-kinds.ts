// The tracing telemeter kinds, registered together: io.l5d.zipkin (Zipkin v2 JSON) and
// otlp (OTLP over HTTP, JSON).

import type { AnyPlugin } from "../plugins/registry.js";
import { otlpTelemeter } from "./otlp.js";
import { zipkinTelemeter } from "./zipkin.js";

export const TRACING_TELEMETERS: readonly AnyPlugin[] = [zipkinTelemeter, otlpTelemeter];
