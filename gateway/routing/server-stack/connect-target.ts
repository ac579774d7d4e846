// On a server that takes CONNECT (`servers[].connect`): the target must be host:port, on
// a port the server lists. Other requests pass untouched.

import { connectBlock } from "../../config/egress-schemas.js";
import { ProxyError } from "../../http/errors.js";
import { definePlugin } from "../../plugins/registry.js";
import type { ArrivingRequest, ServerLayer } from "./layer.js";

export class ConnectTargetLayer implements ServerLayer {
  readonly name = "connectTarget";

  constructor(private readonly ports: ReadonlySet<number>) {}

  arrive(req: ArrivingRequest): boolean {
    const ex = req.ex;
    if (ex.method !== "CONNECT") return false;
    const target = splitAuthority(ex.url);
    if (!target) {
      throw new ProxyError(
        "LINTEL_BAD_REQUEST",
        `CONNECT needs host:port as its target, got ${JSON.stringify(ex.url)}`,
      );
    }
    if (!this.ports.has(target.port)) {
      throw new ProxyError(
        "LINTEL_FORBIDDEN",
        `CONNECT to port ${target.port} is not allowed (servers[].connect.ports: ${[...this.ports].join(", ")})`,
      );
    }
    return false;
  }
}

export const connectTargetLayer = definePlugin({
  category: "serverLayer",
  kind: "connectTarget",
  schema: connectBlock,
  create: (config) => new ConnectTargetLayer(new Set(config.ports)),
});

/** `host:port` or `[v6]:port`, with a port from 1 to 65535. */
export function splitAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/]+)):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}
