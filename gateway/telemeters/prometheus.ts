// io.l5d.prometheus: the metrics of every thread as Prometheus text at `path` on the admin
// server, each name behind `prefix` (made valid after, as Linkerd 1 does: `my-app.` gives
// `my_app_rt:server:requests`). The admin server serves the text at its default path
// without any telemeter; a telemeter at that path takes it over with its prefix.

import { PROMETHEUS_CONTENT_TYPE, prometheusText } from "../admin/metrics.js";
import { PROMETHEUS_PATH } from "../admin/paths.js";
import { def, object, string } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { adminPathSchema } from "./admin-path.js";

export const prometheusTelemeter = definePlugin({
  category: "telemeter",
  kind: "io.l5d.prometheus",
  schema: object({
    path: def(adminPathSchema(), PROMETHEUS_PATH),
    prefix: def(string("a metric name prefix"), ""),
  }),
  create: (config) => ({
    adminRoutes: [
      {
        path: config.path,
        serve: (req) => ({
          contentType: PROMETHEUS_CONTENT_TYPE,
          body: prometheusText(req.metrics(), config.prefix),
        }),
      },
    ],
  }),
});
