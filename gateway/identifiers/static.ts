// io.l5d.static: every request gets the same service name, dstPrefix + path.

import { object, pathString, req } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { identified } from "./identifier.js";

export const staticIdentifier = definePlugin({
  category: "identifier",
  kind: "io.l5d.static",
  schema: object({ path: req(pathString()) }),
  create(config, ctx) {
    const result = identified(ctx.dstPrefix.concat(config.path));
    return { identify: () => result };
  },
});
