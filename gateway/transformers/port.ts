// io.l5d.port: sends every address to a fixed port (the node-local incoming router).

import { object, port, req } from "../config/schema.js";
import { type Address, address } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { addressTransformer } from "./bound.js";

export const portTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.port",
  schema: object({ port: req(port()) }),
  defaultPrefix: (config) => `/io.l5d.port/${config.port}`,
  create(config, ctx) {
    // Several instances on one host all map to that host's port: one endpoint carrying
    // their combined weight.
    return addressTransformer("io.l5d.port", ctx.prefix, (addresses) => {
      const byHost = new Map<string, Address>();
      for (const a of addresses) {
        const seen = byHost.get(a.host);
        byHost.set(
          a.host,
          address(a.host, config.port, (seen?.weight ?? 0) + a.weight, seen?.meta ?? a.meta),
        );
      }
      return [...byHost.values()];
    });
  },
});
