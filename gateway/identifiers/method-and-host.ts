// io.l5d.methodAndHost: /svc/1.1/<METHOD>/<host lower-cased>[/<uri path>] for HTTP/1.1,
// /svc/1.0/<METHOD>[/<uri path>] for HTTP/1.0 (which has no Host to rely on).

import { boolean, def, object } from "../config/schema.js";
import { Path } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { IdentificationMemo, identified, unidentified, urlSegments } from "./identifier.js";

export const methodAndHostIdentifier = definePlugin({
  category: "identifier",
  kind: "io.l5d.methodAndHost",
  schema: object({ httpUriInDst: def(boolean(), false) }),
  create(config, ctx) {
    const prefix = ctx.dstPrefix;
    const absent = unidentified("Host header is absent");
    // Without the URI in the name, method and host decide it: made once per pair.
    const byMethodAndHost = new IdentificationMemo((key) => {
      const cut = key.indexOf(" ");
      const method = key.slice(0, cut);
      const host = key.slice(cut + 1).toLowerCase();
      return identified(prefix.concat(Path.fromTrusted(["1.1", method, host])));
    });
    return {
      identify(req) {
        const uri = config.httpUriInDst ? urlSegments(req.url) : [];
        if (req.httpVersion === "1.0") {
          return identified(prefix.concat(Path.fromTrusted(["1.0", req.method, ...uri])));
        }
        const host = req.header("host");
        if (host === undefined || host === "") return absent;
        if (!config.httpUriInDst) return byMethodAndHost.get(`${req.method} ${host}`);
        return identified(
          prefix.concat(Path.fromTrusted(["1.1", req.method, host.toLowerCase(), ...uri])),
        );
      },
    };
  },
});
