// io.l5d.localhost: keeps only addresses of this host (its interfaces and loopback),
// so an incoming router delivers to local instances only.

import { networkInterfaces } from "node:os";
import { object } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { addressTransformer } from "./bound.js";

export function isLoopback(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.") || ip.startsWith("::ffff:127.");
}

export function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) out.add(i.address);
  }
  return out;
}

export const localhostTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.localhost",
  schema: object({}),
  create(_config, ctx) {
    const local = localAddresses();
    return addressTransformer("io.l5d.localhost", ctx.prefix, (addresses) =>
      addresses.filter((a) => isLoopback(a.host) || local.has(a.host)),
    );
  },
});
