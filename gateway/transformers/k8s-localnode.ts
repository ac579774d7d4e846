// io.l5d.k8s.localnode: keeps only the addresses on this node (a node proxy's incoming
// router delivers to local pods only). This node is the pod's subnet (POD_IP) or, with
// hostNetwork, its node name (NODE_NAME); both come from the downward API. An address
// that carries its node name is matched by name when NODE_NAME is known.

import { boolean, def, object } from "../config/schema.js";
import { definePlugin } from "../plugins/registry.js";
import { addressTransformer } from "./bound.js";
import { nodeNameOf, nodeSubnet } from "./node-subnet.js";

export const k8sLocalnodeTransformer = definePlugin({
  category: "transformer",
  kind: "io.l5d.k8s.localnode",
  schema: object({ hostNetwork: def(boolean(), false) }),
  validate(config) {
    if (config.hostNetwork && !process.env.NODE_NAME) {
      return [
        "hostNetwork needs the NODE_NAME environment variable (the downward API's spec.nodeName)",
      ];
    }
    if (!config.hostNetwork && nodeSubnet(process.env.POD_IP ?? "") === undefined) {
      return [
        "needs the POD_IP environment variable set to this pod's IP (the downward API's status.podIP)",
      ];
    }
    return [];
  },
  create(config, ctx) {
    const nodeName = process.env.NODE_NAME || undefined;
    const subnet = config.hostNetwork ? undefined : nodeSubnet(process.env.POD_IP ?? "");
    return addressTransformer("io.l5d.k8s.localnode", ctx.prefix, (addresses) =>
      addresses.filter((a) => {
        const n = nodeNameOf(a);
        if (n !== undefined && nodeName !== undefined) return n === nodeName;
        return subnet !== undefined && nodeSubnet(a.host) === subnet;
      }),
    );
  },
});
