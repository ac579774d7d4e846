// io.l5d.port: sends every address to a fixed port (the node-local incoming router).

import { object, port, req } from "../config/schema.js";
import { address } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { addressTransformer } from "./bound.js";

export const portTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.port",
  schema: object({ port: req(port()) }),
  defaultPrefix: (config) => `/io.l5d.port/${config.port}`,
  create(config, ctx) {
    return addressTransformer("io.l5d.port", ctx.prefix, (addresses) =>
      addresses.map((a) => address(a.host, config.port, a.weight, a.meta)),
    );
  },
});
