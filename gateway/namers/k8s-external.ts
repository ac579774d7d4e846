// io.l5d.k8s.external: a Service's external address.
// /#/io.l5d.k8s.external/<namespace>/<port>/<service> binds to the addresses of the
// Service's load balancer (status.loadBalancer.ingress: IPs, and host names resolved by
// DNS) on the Service port of that name or number. A Service that does not exist, or has
// no such port, is neg; one whose load balancer has no address yet binds to an empty set.

import { object } from "../config/schema.js";
import type { KubeApi } from "../k8s/api.js";
import type { ServiceView } from "../k8s/resources.js";
import { ServiceIndex } from "../k8s/service-index.js";
import {
  type Activity,
  type Addr,
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
  type Read,
  type State,
  VarCache,
} from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import type { NamerInstance } from "../plugins/types.js";
import type { HostResolver } from "./dns.js";
import { kubeApiFields } from "./k8s.js";

const NEG: State<NameTree<Name>> = ok(Neg);

function servicePort(service: ServiceView, segment: string): number | undefined {
  const byNumber = /^\d+$/.test(segment);
  return service.ports.find((p) => (byNumber ? p.port === Number(segment) : p.name === segment))
    ?.port;
}

export class K8sExternalNamer implements NamerInstance {
  private readonly indexes = new Map<string, ServiceIndex>();
  private readonly lookups = new VarCache<string, State<NameTree<Name>>>();
  private readonly addrs = new VarCache<string, Addr>();

  constructor(
    private readonly api: KubeApi,
    private readonly idPrefix: Path,
    private readonly resolver: HostResolver,
  ) {}

  lookup(path: Path): Activity<NameTree<Name>> {
    if (path.size < 3) return constantOk(Neg);
    const segs = path.segments.slice(0, 3).map((s) => s.toLowerCase());
    const [ns, portSeg, svc] = segs as [string, string, string];
    const id = this.idPrefix.concat(Path.fromTrusted(segs));
    const residual = path.drop(3);
    return this.lookups.get(`${id.show} ${residual.show}`, () =>
      computed((read) => {
        const st = read(this.index(ns).service(svc));
        if (st.status !== "ok") return st;
        const service = st.value.service;
        if (!service || servicePort(service, portSeg) === undefined) return NEG;
        return ok(leaf<Name>(boundName(id, this.addr(id, ns, portSeg, svc), residual)));
      }, boundStateEquals),
    );
  }

  private addr(id: Path, ns: string, portSeg: string, svc: string) {
    return this.addrs.get(id.show, () =>
      computed((read): Addr => {
        const st = read(this.index(ns).service(svc));
        if (st.status !== "ok") return { kind: "pending" };
        const service = st.value.service;
        const port = service && servicePort(service, portSeg);
        if (!service || port === undefined) return { kind: "neg" };
        return addrBound(this.ips(service, read).map((ip) => address(ip, port)));
      }),
    );
  }

  /** The load balancer's IPs: as given, and its host names' current DNS answers. */
  private ips(service: ServiceView, read: Read): string[] {
    const out = new Set<string>();
    for (const lb of service.loadBalancer) {
      if (lb.ip) out.add(lb.ip);
      else if (lb.hostname) {
        const h = read(this.resolver.watch(lb.hostname));
        if (h.kind === "ok") for (const ip of h.ips) out.add(ip);
      }
    }
    return [...out];
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
      i = new ServiceIndex(this.api, ns, false);
      this.indexes.set(ns, i);
    }
    return i;
  }
}

export const k8sExternalNamer = definePlugin({
  category: "namer",
  kind: "io.l5d.k8s.external",
  schema: object({ ...kubeApiFields }),
  create(config, ctx) {
    return new K8sExternalNamer(
      ctx.kube({ host: config.host, port: config.port }),
      ctx.prefix,
      ctx.resolver,
    );
  },
});
