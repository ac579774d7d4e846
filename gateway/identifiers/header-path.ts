// io.l5d.header: the header's value is itself a path, appended to dstPrefix
// (`l5d-name: /users/v2` → /svc/users/v2).

import { def, nonEmptyString, object } from "../config/schema.js";
import { NameParseError, readPath } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { identified, unidentified } from "./identifier.js";

export const headerPathIdentifier = definePlugin({
  category: "identifier",
  kind: "io.l5d.header",
  schema: object({ header: def(nonEmptyString("a header name"), "l5d-name") }),
  create(config, ctx) {
    const name = config.header.toLowerCase();
    const prefix = ctx.dstPrefix;
    const absent = unidentified(`${config.header} header is absent`);
    return {
      identify(req) {
        const v = req.header(name);
        if (v === undefined || v === "") return absent;
        try {
          return identified(prefix.concat(readPath(v)));
        } catch (e) {
          const why = e instanceof NameParseError ? e.reason : String(e);
          return unidentified(`${config.header} header is not a path (${why}): ${v}`);
        }
      },
    };
  },
});
