// io.l5d.rewrite: rewrites names matching `pattern` (segments, `*`, `{captures}`) into
// `name` with the captures substituted; the result is bound further through the dtab.
// What follows the matched pattern is dropped, as in Linkerd.

import { nonEmptyString, object, req } from "../config/schema.js";
import {
  constantOk,
  leaf,
  type Name,
  NameParseError,
  type NameTree,
  Neg,
  PathPattern,
  pathName,
  readPath,
  substitute,
} from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";

const NEG = constantOk<NameTree<Name>>(Neg);

export const rewriteNamer = definePlugin({
  category: "namer",
  kind: "io.l5d.rewrite",
  schema: object({
    pattern: req(nonEmptyString("a path pattern such as /{service}/api")),
    name: req(nonEmptyString("a path template such as /srv/{service}")),
  }),
  validate(config) {
    const problems: string[] = [];
    const pattern = new PathPattern(config.pattern);
    const vars = Object.fromEntries(pattern.captures.map((c) => [c, "x"]));
    const unknown = [...config.name.matchAll(/\{([^{}]+)\}/g)]
      .map((m) => m[1]!)
      .filter((v) => !(v in vars));
    if (unknown.length > 0) {
      problems.push(`name uses {${unknown.join("}, {")}} which the pattern does not capture`);
    } else {
      try {
        readPath(substitute(config.name, vars));
      } catch (e) {
        problems.push(`name is not a path: ${e instanceof NameParseError ? e.reason : String(e)}`);
      }
    }
    return problems;
  },
  create(config) {
    const pattern = new PathPattern(config.pattern);
    return {
      lookup(path) {
        const vars = pattern.match(path);
        if (vars === undefined) return NEG;
        try {
          return constantOk(leaf<Name>(pathName(readPath(substitute(config.name, vars)))));
        } catch {
          return NEG;
        }
      },
    };
  },
});
