// What a config asks of its engines that they do differently: said by `lintel check` and
// logged at startup, without refusing the config.

import type { LintelConfig } from "../config/config-schema.js";

export function engineNotes(config: LintelConfig): string[] {
  const notes: string[] = [];
  config.routers.forEach((r, i) => {
    r.servers.forEach((s, j) => {
      if (s.engine === "node") {
        notes.push(
          `routers[${i}].servers[${j}]: engine: node is served by the net engine (lintel's own, which does everything Node's server did); write engine: net`,
        );
      } else if (s.engine === "uws") {
        notes.push(
          `routers[${i}].servers[${j}]: the uws engine does not tunnel Upgrade (WebSocket) requests and does not speak HTTP/2: such requests reach the upstream as plain HTTP/1.1 requests (engine: net does both; docs/engines.md)`,
        );
      }
    });
  });
  return notes;
}
