// io.l5d.k8s.daemonset: sends each address to the node proxy on the same node instead
// (Linkerd 1's per-node layout: edge → node proxy → pod). The node proxies are the
// endpoints of a DaemonSet's Service (`namespace`/`service`, port `port`). An address is
// matched to a node proxy by node name when both know it, else by the node's pod subnet
// (hostNetwork proxies carry the node's address, so they match by node name only).
// Addresses on a node without a node proxy are dropped.

import {
  boolean,
  def,
  nonEmptyString,
  object,
  opt,
  port as portSchema,
  req,
} from "../config/schema.js";
import { ServiceIndex } from "../k8s/service-index.js";
import { endpointPortName, readyAddresses } from "../namers/k8s.js";
import { type Address, address } from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { addressTransformer } from "./bound.js";
import { nodeNameOf, nodeSubnet } from "./node-subnet.js";

/** Maps addresses to the node proxies on their nodes (combined weight per proxy). */
export function toNodeProxies(
  addresses: readonly Address[],
  proxies: readonly Address[],
  hostNetwork: boolean,
): Address[] {
  const byNode = new Map<string, Address>();
  const bySubnet = new Map<string, Address>();
  for (const p of proxies) {
    const n = nodeNameOf(p);
    if (n !== undefined && !byNode.has(n)) byNode.set(n, p);
    const s = hostNetwork ? undefined : nodeSubnet(p.host);
    if (s !== undefined && !bySubnet.has(s)) bySubnet.set(s, p);
  }
  const out = new Map<string, Address>();
  for (const a of addresses) {
    const n = nodeNameOf(a);
    const s = nodeSubnet(a.host);
    const proxy =
      (n !== undefined ? byNode.get(n) : undefined) ??
      (s !== undefined ? bySubnet.get(s) : undefined);
    if (!proxy) continue;
    const key = `${proxy.host} ${proxy.port}`;
    const seen = out.get(key);
    out.set(key, address(proxy.host, proxy.port, (seen?.weight ?? 0) + a.weight, proxy.meta));
  }
  return [...out.values()];
}

export const k8sDaemonsetTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.k8s.daemonset",
  schema: object({
    k8sHost: opt(nonEmptyString("a host name or IP address")),
    k8sPort: opt(portSchema()),
    namespace: req(nonEmptyString("a namespace")),
    service: req(nonEmptyString("a Service name")),
    /** The node proxies' port: a port name of that Service (or its number). */
    port: req(nonEmptyString("a port name")),
    hostNetwork: def(boolean(), false),
  }),
  defaultPrefix: (c) => `/io.l5d.k8s.daemonset/${c.namespace}/${c.port}/${c.service}`,
  create(config, ctx) {
    const index = new ServiceIndex(
      ctx.kube({ host: config.k8sHost, port: config.k8sPort }),
      config.namespace,
      true,
    );
    return addressTransformer("io.l5d.k8s.daemonset", ctx.prefix, (addresses, read) => {
      const st = read(index.service(config.service));
      // The node proxies are not listed yet: wait for them (bounded by bindingTimeoutMs).
      if (st.status !== "ok") return undefined;
      const name = endpointPortName(st.value, config.port);
      if (name === undefined) return [];
      return toNodeProxies(addresses, readyAddresses(st.value.slices, name), config.hostNetwork);
    });
  },
});
