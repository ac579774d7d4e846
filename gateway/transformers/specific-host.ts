// io.l5d.specificHost: keeps only the addresses of one given host (an IP, or a name
// resolved through DNS and followed when it changes).

import { host, object, req } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { addressTransformer } from "./bound.js";

export const specificHostTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.specificHost",
  schema: object({ host: req(host()) }),
  create(config, ctx) {
    const target = ctx.resolver.watch(config.host);
    return addressTransformer("io.l5d.specificHost", ctx.prefix, (addresses, read) => {
      const t = read(target);
      if (t.kind !== "ok") return [];
      const ips = new Set(t.ips);
      return addresses.filter((a) => ips.has(a.host));
    });
  },
});
