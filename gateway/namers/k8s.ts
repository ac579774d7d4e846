// io.l5d.k8s: service discovery from the Kubernetes API.
// /#/io.l5d.k8s/<namespace>/<port>/<service>[/<label value>] binds to the ready
// endpoints of the Service, read from its EndpointSlices (all of them, merged). The port
// is a Service port's name, or its number (then its endpoints' port of that name).
// A Service that does not exist is neg; one with no ready endpoints binds to an empty
// set. Each namespace is watched once (list + watch), when first looked up.

import { nonEmptyString, object, opt, port } from "../config/schema.js";
import type { KubeApi } from "../k8s/api.js";
import type { EndpointSliceView } from "../k8s/resources.js";
import { type ServiceEntry, ServiceIndex } from "../k8s/service-index.js";
import type { Logger } from "../log.js";
import {
  type Activity,
  type Addr,
  type Address,
  addrBound,
  address,
  boundName,
  boundStateEquals,
  computed,
  constantOk,
  leaf,
  type Name,
  type NameTree,
  Neg,
  ok,
  Path,
  type State,
  VarCache,
} from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import type { NamerInstance } from "../plugins/types.js";

const NEG: State<NameTree<Name>> = ok(Neg);

/**
 * The endpoint port name a path's port segment means for this Service: a name as is; a
 * number through the Service port of that number (undefined: no such port, so neg).
 */
export function endpointPortName(entry: ServiceEntry, portSegment: string): string | undefined {
  const ports = entry.service?.ports ?? [];
  if (/^\d+$/.test(portSegment)) {
    return ports.find((p) => p.port === Number(portSegment))?.name;
  }
  if (ports.some((p) => p.name === portSegment)) return portSegment;
  // A name only the endpoints know (their Service port may have been renamed since).
  return entry.slices.some((s) => s.ports.some((p) => p.name === portSegment))
    ? portSegment
    : undefined;
}

/** The ready endpoints of the slices on port `portName`, once each, with their node. */
export function readyAddresses(slices: readonly EndpointSliceView[], portName: string): Address[] {
  const out: Address[] = [];
  const seen = new Set<string>();
  for (const s of slices) {
    if (s.addressType === "FQDN") continue;
    const p = s.ports.find((x) => x.name === portName && x.protocol === "TCP");
    if (!p) continue;
    for (const e of s.endpoints) {
      if (!e.ready) continue;
      for (const ip of e.addresses) {
        const key = `${ip} ${p.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(address(ip, p.port, 1, e.nodeName ? { nodeName: e.nodeName } : {}));
      }
    }
  }
  return out;
}

export class K8sNamer implements NamerInstance {
  private readonly indexes = new Map<string, ServiceIndex>();
  private readonly lookups = new VarCache<string, State<NameTree<Name>>>();
  private readonly addrs = new VarCache<string, Addr>();
  /** Path segments the name takes: namespace, port, service, and the label value if any. */
  private readonly size: number;

  constructor(
    private readonly api: KubeApi,
    private readonly idPrefix: Path,
    private readonly labelSelector: string | undefined,
    private readonly log: Logger,
  ) {
    this.size = labelSelector ? 4 : 3;
  }

  lookup(path: Path): Activity<NameTree<Name>> {
    if (path.size < this.size) return constantOk(Neg);
    // Kubernetes names are lower-case; Linkerd matched them without regard to case.
    const segs = path.segments.slice(0, this.size).map((s) => s.toLowerCase());
    const [ns, portSeg, svc, labelValue] = segs as [string, string, string, string?];
    const id = this.idPrefix.concat(Path.fromTrusted(segs));
    const residual = path.drop(this.size);
    return this.lookups.get(`${id.show} ${residual.show}`, () =>
      computed((read) => {
        const st = read(this.index(ns).service(svc));
        if (st.status !== "ok") return st;
        const entry = st.value;
        if (!entry.service) return NEG;
        if (this.labelSelector && entry.service.labels[this.labelSelector] !== labelValue) {
          return NEG;
        }
        if (endpointPortName(entry, portSeg) === undefined) return NEG;
        return ok(leaf<Name>(boundName(id, this.addr(id, ns, portSeg, svc), residual)));
      }, boundStateEquals),
    );
  }

  /** The live addresses of a bound id: the same Var for the same id while it is in use. */
  private addr(id: Path, ns: string, portSeg: string, svc: string) {
    return this.addrs.get(id.show, () =>
      computed((read): Addr => {
        const st = read(this.index(ns).service(svc));
        if (st.status !== "ok") return { kind: "pending" };
        const name = endpointPortName(st.value, portSeg);
        if (name === undefined) return { kind: "neg" };
        return addrBound(readyAddresses(st.value.slices, name));
      }),
    );
  }

  /** The API, and the watch of each namespace looked up (Linkerd's /namer_state). */
  state(): unknown {
    return {
      api: this.api.description,
      namespaces: Object.fromEntries([...this.indexes].map(([ns, i]) => [ns, i.status()])),
    };
  }

  private index(ns: string): ServiceIndex {
    let i = this.indexes.get(ns);
    if (!i) {
      i = new ServiceIndex(this.api, ns, true);
      this.indexes.set(ns, i);
      this.log.debug("watching a namespace's Services and EndpointSlices", { namespace: ns });
    }
    return i;
  }
}

/** Linkerd's `host`/`port` of a kubectl proxy, shared by the Kubernetes kinds. */
export const kubeApiFields = {
  host: opt(nonEmptyString("a host name or IP address")),
  port: opt(port()),
};

export const k8sNamer = definePlugin({
  category: "namer",
  kind: "io.l5d.k8s",
  schema: object({
    ...kubeApiFields,
    /** A Service label: names gain a segment, the label's value the Service must have. */
    labelSelector: opt(nonEmptyString("a label name")),
  }),
  create(config, ctx) {
    return new K8sNamer(
      ctx.kube({ host: config.host, port: config.port }),
      ctx.prefix,
      config.labelSelector,
      ctx.log,
    );
  },
});
