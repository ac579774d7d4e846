// io.l5d.k8s.daemonset and io.l5d.k8s.localnode: addresses sent to the node proxy on
// their node, and kept only when on this node.

import { afterEach, describe, expect, it } from "vitest";
import { EndpointSlices, Services } from "../../gateway/k8s/resources.js";
import {
  type Addr,
  address,
  type BoundName,
  type NameTree,
  type State,
  type Var,
} from "../../gateway/naming/index.js";
import {
  k8sDaemonsetTransformer,
  toNodeProxies,
} from "../../gateway/transformers/k8s-daemonset.js";
import { k8sLocalnodeTransformer } from "../../gateway/transformers/k8s-localnode.js";
import { nodeSubnet } from "../../gateway/transformers/node-subnet.js";
import { decode, decodeIssues } from "../namers/helpers.js";
import { FakeKube, pluginContext, serviceView } from "../support/fake-kube.js";
import { cellBound, transformerEnv } from "./helpers.js";

const stops: (() => void)[] = [];
const savedEnv = { POD_IP: process.env.POD_IP, NODE_NAME: process.env.NODE_NAME };
afterEach(() => {
  for (const s of stops.splice(0)) s();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function addrs(v: Var<Addr>): string[] {
  stops.push(v.observe(() => {}));
  const a = v.sample();
  if (a.kind !== "bound") return [a.kind];
  return a.addresses.map((x) => `${x.host}:${x.port}*${x.weight}`).sort();
}

function leafOf(s: State<NameTree<BoundName>>): BoundName {
  if (s.status !== "ok" || s.value.kind !== "leaf") throw new Error("not a leaf");
  return s.value.value;
}

describe("node subnets", () => {
  it("are the /24 of IPv4 and the /64 of IPv6 addresses", () => {
    expect(nodeSubnet("10.1.2.3")).toBe("10.1.2");
    expect(nodeSubnet("::ffff:10.1.2.3")).toBe("10.1.2");
    expect(nodeSubnet("fd00:1:2:3::5")).toBe("fd00:1:2:3");
    expect(nodeSubnet("fd00:1:2:3:0:0:0:9")).toBe("fd00:1:2:3");
    expect(nodeSubnet("fd00::9")).toBe("fd00:0:0:0");
    expect(nodeSubnet("web")).toBeUndefined();
  });
});

describe("io.l5d.k8s.daemonset", () => {
  it("maps each address to the node proxy on its node, by node name or else by subnet", () => {
    const proxies = [
      address("10.0.1.2", 4141, 1, { nodeName: "node-1" }),
      address("10.0.2.2", 4141, 1, { nodeName: "node-2" }),
    ];
    const out = toNodeProxies(
      [
        address("10.0.1.5", 8080, 1, { nodeName: "node-1" }),
        address("10.0.1.6", 8080, 2, { nodeName: "node-1" }),
        address("10.0.2.9", 8080), // no node name: by subnet
        address("10.0.3.3", 8080, 1, { nodeName: "node-3" }), // no node proxy there: dropped
      ],
      proxies,
      false,
    );
    expect(out.map((a) => `${a.host}:${a.port}*${a.weight}`).sort()).toEqual([
      "10.0.1.2:4141*3",
      "10.0.2.2:4141*1",
    ]);
    // hostNetwork proxies carry node addresses: only node names match.
    const host = toNodeProxies(
      [address("10.0.2.9", 8080), address("10.0.1.5", 8080, 1, { nodeName: "node-1" })],
      [address("192.168.0.11", 4141, 1, { nodeName: "node-1" })],
      true,
    );
    expect(host.map((a) => a.host)).toEqual(["192.168.0.11"]);
  });

  it("follows the node proxies' endpoints and prefixes the bound id like Linkerd", () => {
    const kube = new FakeKube();
    const config = decode(k8sDaemonsetTransformer, {
      namespace: "linkerd",
      service: "l5d",
      port: "incoming",
    });
    expect(k8sDaemonsetTransformer.defaultPrefix?.(config)).toBe(
      "/io.l5d.k8s.daemonset/linkerd/incoming/l5d",
    );
    const t = k8sDaemonsetTransformer.create(config, {
      ...transformerEnv().ctx("/%/io.l5d.k8s.daemonset/linkerd/incoming/l5d"),
      ...pluginContext({ kube }),
    });
    kube.set(
      Services,
      serviceView({
        namespace: "linkerd",
        name: "l5d",
        ports: [
          { name: "outgoing", port: 4140, targetPort: 4140, protocol: "TCP" },
          { name: "incoming", port: 4141, targetPort: 4141, protocol: "TCP" },
        ],
      }),
    );
    const proxySlice = (ips: [string, string][]) => ({
      namespace: "linkerd",
      name: "l5d-x",
      service: "l5d",
      addressType: "IPv4",
      ports: [
        { name: "outgoing", port: 4140, protocol: "TCP" },
        { name: "incoming", port: 4141, protocol: "TCP" },
      ],
      endpoints: ips.map(([ip, node]) => ({
        addresses: [ip],
        ready: true,
        terminating: false,
        nodeName: node,
        zone: undefined,
      })),
    });
    kube.set(EndpointSlices, proxySlice([["10.0.1.2", "node-1"]]));
    kube.markSynced(Services);
    kube.markSynced(EndpointSlices);
    const { name, cell } = cellBound("/#/io.l5d.k8s/default/http/web", [
      ["10.0.1.5", 8080, 1, { nodeName: "node-1" }],
      ["10.0.2.5", 8080, 1, { nodeName: "node-2" }],
    ]);
    const out = leafOf(t.transformLeaf(name, (v) => v.sample()));
    expect(out.id.show).toBe(
      "/%/io.l5d.k8s.daemonset/linkerd/incoming/l5d/#/io.l5d.k8s/default/http/web",
    );
    expect(addrs(out.addr)).toEqual(["10.0.1.2:4141*1"]);
    // A node proxy starts on node-2: its pods are reached through it.
    kube.set(
      EndpointSlices,
      proxySlice([
        ["10.0.1.2", "node-1"],
        ["10.0.2.2", "node-2"],
      ]),
    );
    expect(addrs(out.addr)).toEqual(["10.0.1.2:4141*1", "10.0.2.2:4141*1"]);
    // The service scales down on node-1.
    cell.set({ kind: "bound", addresses: [address("10.0.2.5", 8080, 1, { nodeName: "node-2" })] });
    expect(addrs(out.addr)).toEqual(["10.0.2.2:4141*1"]);
  });

  it("requires namespace, service and port", () => {
    expect(decodeIssues(k8sDaemonsetTransformer, {})).toEqual([
      "namespace: missing (expected a namespace)",
      "service: missing (expected a Service name)",
      "port: missing (expected a port name)",
    ]);
  });
});

describe("io.l5d.k8s.localnode", () => {
  it("keeps the addresses in this pod's subnet", () => {
    process.env.POD_IP = "10.0.1.77";
    delete process.env.NODE_NAME;
    const t = transformerEnv().make(k8sLocalnodeTransformer, {});
    const { name } = cellBound("/#/io.l5d.k8s/default/http/web", [
      ["10.0.1.5", 8080],
      ["10.0.2.5", 8080],
    ]);
    expect(addrs(leafOf(t.transformLeaf(name, (v) => v.sample())).addr)).toEqual([
      "10.0.1.5:8080*1",
    ]);
  });

  it("with hostNetwork, keeps the addresses whose node is NODE_NAME", () => {
    process.env.NODE_NAME = "node-2";
    const t = transformerEnv().make(k8sLocalnodeTransformer, { hostNetwork: true });
    const { name } = cellBound("/#/io.l5d.k8s/default/http/web", [
      ["10.0.1.5", 8080, 1, { nodeName: "node-1" }],
      ["10.0.2.5", 8080, 1, { nodeName: "node-2" }],
    ]);
    expect(addrs(leafOf(t.transformLeaf(name, (v) => v.sample())).addr)).toEqual([
      "10.0.2.5:8080*1",
    ]);
  });

  it("names the environment variable it needs", () => {
    delete process.env.POD_IP;
    delete process.env.NODE_NAME;
    const problems = (raw: unknown) =>
      k8sLocalnodeTransformer.validate?.(decode(k8sLocalnodeTransformer, raw));
    expect(problems({})).toEqual([
      "needs the POD_IP environment variable set to this pod's IP (the downward API's status.podIP)",
    ]);
    expect(problems({ hostNetwork: true })).toEqual([
      "hostNetwork needs the NODE_NAME environment variable (the downward API's spec.nodeName)",
    ]);
  });
});
