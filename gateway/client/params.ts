// Per-client settings from a router's `client` block: io.l5d.global applies one set to
// every client; io.l5d.static applies, in order, every entry whose prefix matches the
// bound id (later entries win), with `{var}` captures substituted into TLS names.

import type { RouterConfig } from "../config/config-schema.js";
import { type Path, PathPattern, substitute } from "../naming/index.js";

type ClientBlock = RouterConfig["client"];
type StaticEntry = Extract<ClientBlock, { kind: "io.l5d.static" }>["configs"][number];
export type ClientParams = Partial<Omit<StaticEntry, "prefix">>;

export type ClientParamsFor = (id: Path) => ClientParams;

export function clientParamsResolver(block: ClientBlock): ClientParamsFor {
  if (block.kind === "io.l5d.global") {
    const { kind: _kind, ...params } = block;
    return () => params;
  }
  const entries = block.configs.map((c) => ({ pattern: new PathPattern(c.prefix), entry: c }));
  return (id) => {
    let out: ClientParams = {};
    for (const { pattern, entry } of entries) {
      const vars = pattern.match(id);
      if (vars === undefined) continue;
      const { prefix: _prefix, ...params } = entry;
      const defined = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
      out = { ...out, ...defined };
      if (params.tls?.commonName !== undefined) {
        out = {
          ...out,
          tls: { ...params.tls, commonName: substitute(params.tls.commonName, vars) },
        };
      }
    }
    return out;
  };
}
