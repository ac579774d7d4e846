// io.l5d.header.path (Linkerd 1's h2 identifier, for gRPC above all): the service name is
// dstPrefix plus the path a header holds, `:path` by default, without its query and
// trailing slash, cut to its first `segments` when set:
// `:path: /helloworld.Greeter/SayHello` → /svc/helloworld.Greeter/SayHello.
// (io.l5d.header, for http routers, instead reads the whole value as a path.)

import { def, integer, nonEmptyString, object, opt } from "../config/schema.js";
import { NameParseError, readPath } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { IdentificationMemo, identified, unidentified } from "./identifier.js";

export const headerUriPathIdentifier = definePlugin({
  category: "identifier",
  kind: "io.l5d.header.path",
  schema: object({
    header: def(nonEmptyString("a header name"), ":path"),
    segments: opt(integer({ min: 1 })),
  }),
  create(config, ctx) {
    const name = config.header.toLowerCase();
    const prefix = ctx.dstPrefix;
    const n = config.segments;
    const missing = unidentified(`Missing destination path in ${config.header}`);
    const byValue = new IdentificationMemo((value) => {
      const q = value.indexOf("?");
      let text = q < 0 ? value : value.slice(0, q);
      if (text.endsWith("/")) text = text.slice(0, -1);
      if (text === "") return missing;
      let path: ReturnType<typeof readPath>;
      try {
        path = readPath(text);
      } catch (e) {
        const why = e instanceof NameParseError ? e.reason : String(e);
        return unidentified(`${config.header} is not a path (${why}): ${value}`);
      }
      if (n === undefined) return identified(prefix.concat(path));
      if (path.size < n)
        return unidentified(`${config.header} must have at least ${n} segment(s): ${text}`);
      return identified(prefix.concat(path.take(n)));
    });
    return {
      identify(req) {
        const v = req.header(name);
        return v === undefined || v === "" ? missing : byValue.get(v);
      },
    };
  },
});
