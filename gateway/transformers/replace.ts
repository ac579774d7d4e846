// io.l5d.replace and io.l5d.const bind a fixed path through the `/$/` namers.
// replace: every bound name becomes that binding (neg stays neg).
// const: the whole tree becomes that binding, whatever it was (neg included).

import { object, pathString, req } from "../config/schema.js";
import type { NamerLookup, Read } from "../naming/index.js";
import { bindPath, Dtab, type Path, type Transformer } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";

function bindFixed(path: Path, namers: NamerLookup, read: Read) {
  return bindPath({ dtab: Dtab.empty, namers }, path, read);
}

export const replaceTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.replace",
  schema: object({ path: req(pathString()) }),
  create(config, ctx): Transformer {
    return {
      name: "io.l5d.replace",
      transformLeaf: (_bound, read) => bindFixed(config.path, ctx.globalNamers, read),
    };
  },
});

export const constTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.const",
  schema: object({ path: req(pathString()) }),
  create(config, ctx): Transformer {
    return {
      name: "io.l5d.const",
      transformLeaf: (_bound, read) => bindFixed(config.path, ctx.globalNamers, read),
      transformTree: (_tree, read) => bindFixed(config.path, ctx.globalNamers, read),
    };
  },
});
