// io.l5d.header.token: the service name is dstPrefix plus the raw value of one header
// (Host by default) as a single segment, port included: `Host: web:8080` → /svc/web:8080.

import { def, nonEmptyString, object } from "../config/schema.js";
import { Path } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { IdentificationMemo, identified, unidentified } from "./identifier.js";

export const headerTokenIdentifier = definePlugin({
  category: "identifier",
  kind: "io.l5d.header.token",
  schema: object({ header: def(nonEmptyString("a header name"), "Host") }),
  create(config, ctx) {
    const name = config.header.toLowerCase();
    const prefix = ctx.dstPrefix;
    const absent = unidentified(`${config.header} header is absent`);
    const byValue = new IdentificationMemo((v) => identified(prefix.concat(Path.fromTrusted([v]))));
    return {
      identify(req) {
        const v = req.header(name);
        if (v === undefined || v === "") return absent;
        return byValue.get(v);
      },
    };
  },
});
