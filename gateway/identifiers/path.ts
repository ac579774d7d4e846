// io.l5d.path: the first `segments` segments of the request path name the service
// (/svc/<s1>/…/<sN>); with `consume` they are removed from the forwarded request.

import { boolean, def, integer, object } from "../config/schema.js";
import { Path } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { identified, unidentified, urlSegments } from "./identifier.js";

export const pathIdentifier = definePlugin({
  category: "identifier",
  kind: "io.l5d.path",
  schema: object({
    segments: def(integer({ min: 1 }), 1),
    consume: def(boolean(), false),
  }),
  create(config, ctx) {
    const n = config.segments;
    const prefix = ctx.dstPrefix;
    return {
      identify(req) {
        const segs = urlSegments(req.url);
        if (segs.length < n) {
          return unidentified(
            `the request path has fewer than ${n} segment(s): ${req.url.split("?")[0]}`,
          );
        }
        const dst = prefix.concat(Path.fromTrusted(segs.slice(0, n)));
        if (!config.consume) return identified(dst);
        const q = req.url.indexOf("?");
        const query = q < 0 ? "" : req.url.slice(q);
        const rest = segs.slice(n);
        const trailing =
          rest.length > 0 && (q < 0 ? req.url : req.url.slice(0, q)).endsWith("/") ? "/" : "";
        return identified(dst, `/${rest.join("/")}${trailing}${query}`);
      },
    };
  },
});
