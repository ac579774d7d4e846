// io.l5d.prometheus: the metrics of every thread as Prometheus text at `path` on the admin
// server, each name behind `prefix` (made valid after, as Linkerd 1 does: `my-app.` gives
// `my_app_rt:server:requests`). The admin server serves the text at its default path
// without any telemeter; a telemeter at that path takes it over with its prefix. Both
// negotiate the format (Prometheus text 0.0.4, or OpenMetrics when asked for).

import { PROMETHEUS_PATH } from "../admin/paths.js";
import { PrometheusExposition } from "../admin/prometheus/exposition.js";
import { def, object, string } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { adminPathSchema } from "./admin-path.js";
import type { TelemeterAdminRequest } from "./telemeter.js";

export const prometheusTelemeter = definePlugin({
  category: "telemeter",
  kind: "io.l5d.prometheus",
  schema: object({
    path: def(adminPathSchema(), PROMETHEUS_PATH),
    prefix: def(string("a metric name prefix"), ""),
  }),
  create: (config) => {
    // The metrics to read come with each request (every thread's, merged).
    let read: TelemeterAdminRequest | undefined;
    const exposition = new PrometheusExposition(
      () => read?.metrics() ?? { scopes: [] },
      config.prefix,
    );
    return {
      adminRoutes: [
        {
          path: config.path,
          serve: (req) => {
            read = req;
            const accept = req.headers?.accept;
            return exposition.render(
              Array.isArray(accept) ? accept.join(",") : accept,
              req.url.searchParams.get("format"),
            );
          },
        },
      ],
    };
  },
});
