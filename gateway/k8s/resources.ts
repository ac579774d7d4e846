// The Kubernetes resources lintel reads, and the small views it keeps of them. A watch
// keeps only what routing needs (a projection), not the object as the API sent it: an
// EndpointSlice's managedFields alone outweigh its endpoints.

/** An object as the API returns it (only the envelope is typed). */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [k: string]: unknown;
  };
  readonly [k: string]: unknown;
}

/** A resource type: where its collection lives, and the view kept of each object. */
export interface ResourceType<T> {
  /** As in `kind` (EndpointSlice). */
  readonly kind: string;
  /** As in the URL (endpointslices). */
  readonly plural: string;
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly namespaced: boolean;
  project(obj: KubeObject): T;
}

/** As in an object's `apiVersion`: `v1`, `coordination.k8s.io/v1`. */
export function apiVersionOf(type: ResourceType<unknown>): string {
  return type.group === "" ? type.version : `${type.group}/${type.version}`;
}

/** Where a resource's objects are listed and watched: all namespaces when `namespace` is undefined. */
export function collectionPath(type: ResourceType<unknown>, namespace?: string): string {
  const base = type.group === "" ? `/api/${type.version}` : `/apis/${apiVersionOf(type)}`;
  if (!type.namespaced || namespace === undefined) return `${base}/${type.plural}`;
  return `${base}/namespaces/${encodeURIComponent(namespace)}/${type.plural}`;
}

/** The path of one object. */
export function objectPath(type: ResourceType<unknown>, namespace: string, name: string): string {
  return `${collectionPath(type, type.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
}

/** How a watch names an object: `namespace/name`, or `name` for cluster-scoped resources. */
export function objectKey(obj: KubeObject): string {
  const m = obj.metadata;
  return m?.namespace ? `${m.namespace}/${m.name ?? ""}` : (m?.name ?? "");
}

/** Where a Service or Ingress is reachable from outside (status.loadBalancer.ingress). */
export interface LoadBalancerIngress {
  readonly ip?: string;
  readonly hostname?: string;
}

// ---- views ----------------------------------------------------------------------------

export interface EndpointSliceView {
  readonly namespace: string;
  readonly name: string;
  /** The Service it belongs to (label kubernetes.io/service-name). */
  readonly service: string | undefined;
  readonly addressType: string;
  /** Named after the Service's ports; `name` is "" for an unnamed port. */
  readonly ports: readonly {
    readonly name: string;
    readonly port: number;
    readonly protocol: string;
  }[];
  readonly endpoints: readonly EndpointView[];
}

export interface EndpointView {
  readonly addresses: readonly string[];
  /** conditions.ready; the API says an absent value means ready. */
  readonly ready: boolean;
  readonly terminating: boolean;
  readonly nodeName: string | undefined;
  readonly zone: string | undefined;
}

export interface ServicePortView {
  readonly name: string;
  readonly port: number;
  /** A number, or the name of a container port. */
  readonly targetPort: number | string;
  readonly protocol: string;
}

export interface ServiceView {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly type: string;
  readonly ports: readonly ServicePortView[];
  readonly loadBalancer: readonly LoadBalancerIngress[];
}

/** An Ingress backend that is a Service (resource backends are not routed). */
export interface IngressBackendView {
  readonly service: string;
  /** The Service port's number or name. */
  readonly port: number | string;
}

export type PathType = "Exact" | "Prefix" | "ImplementationSpecific";

export interface IngressPathView {
  /** Absent in a rule means every path. */
  readonly path: string | undefined;
  readonly pathType: PathType;
  /** Undefined for a resource backend. */
  readonly backend: IngressBackendView | undefined;
}

export interface IngressRuleView {
  /** Absent means every host; may be a wildcard (`*.example.com`). */
  readonly host: string | undefined;
  readonly paths: readonly IngressPathView[];
}

export interface IngressView {
  readonly namespace: string;
  readonly name: string;
  /** spec.ingressClassName. */
  readonly className: string | undefined;
  /** The legacy annotation kubernetes.io/ingress.class. */
  readonly annotationClass: string | undefined;
  readonly defaultBackend: IngressBackendView | undefined;
  readonly rules: readonly IngressRuleView[];
  readonly tls: readonly {
    readonly hosts: readonly string[];
    readonly secretName: string | undefined;
  }[];
  readonly loadBalancer: readonly LoadBalancerIngress[];
  /** metadata.creationTimestamp, for ordering conflicting rules like other controllers. */
  readonly created: string;
}

export interface IngressClassView {
  readonly name: string;
  readonly controller: string;
  /** Annotation ingressclass.kubernetes.io/is-default-class: "true". */
  readonly isDefault: boolean;
}

export interface SecretView {
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  /** tls.crt and tls.key, decoded; other keys are not kept. */
  readonly tlsCrt: string | undefined;
  readonly tlsKey: string | undefined;
}

/** A coordination.k8s.io Lease: who holds it, and until when unless renewed. */
export interface LeaseView {
  readonly namespace: string;
  readonly name: string;
  readonly holderIdentity: string | undefined;
  readonly leaseDurationSeconds: number | undefined;
  /** MicroTime (RFC 3339, six fractional digits), as the API writes it. */
  readonly renewTime: string | undefined;
}

export interface ConfigMapView {
  readonly namespace: string;
  readonly name: string;
  readonly data: Readonly<Record<string, string>>;
}

export interface NodeView {
  readonly name: string;
  readonly addresses: readonly { readonly type: string; readonly address: string }[];
}

export interface PodView {
  readonly namespace: string;
  readonly name: string;
  readonly podIP: string | undefined;
  readonly hostIP: string | undefined;
  readonly nodeName: string | undefined;
  readonly ready: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

// ---- projections ----------------------------------------------------------------------
// Objects come from the API, so every field is checked for its type: a field of an
// unexpected shape reads as absent rather than throwing in the watch.

type Json = Record<string, unknown>;

const obj = (v: unknown): Json =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : {};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;

/**
 * The strings of a list, in an array of exactly their number: a watch keeps one per
 * endpoint, and filter()'s spare capacity would double what it costs.
 */
function strings(v: unknown): string[] {
  const a = arr(v);
  if (a.length === 1 && typeof a[0] === "string") return [a[0]];
  return a.filter((x): x is string => typeof x === "string").slice();
}

function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(obj(v))) if (typeof x === "string") out[k] = x;
  return out;
}

const meta = (o: KubeObject) => obj(o.metadata);
const nameOf = (o: KubeObject) => str(meta(o).name) ?? "";
const namespaceOf = (o: KubeObject) => str(meta(o).namespace) ?? "";

function loadBalancer(status: unknown): LoadBalancerIngress[] {
  return arr(obj(obj(status).loadBalancer).ingress).map((i) => {
    const o = obj(i);
    const lb: { ip?: string; hostname?: string } = {};
    const ip = str(o.ip);
    const hostname = str(o.hostname);
    if (ip) lb.ip = ip;
    if (hostname) lb.hostname = hostname;
    return lb;
  });
}

function intOrString(v: unknown): number | string | undefined {
  return num(v) ?? str(v);
}

function ingressBackend(v: unknown): IngressBackendView | undefined {
  const b = obj(v);
  const svc = obj(b.service);
  const name = str(svc.name);
  if (name) {
    const port = obj(svc.port);
    const p = num(port.number) ?? str(port.name);
    return p === undefined ? undefined : { service: name, port: p };
  }
  // extensions/v1beta1 and networking.k8s.io/v1beta1 shapes, still served by old clusters.
  const legacy = str(b.serviceName);
  const legacyPort = intOrString(b.servicePort);
  return legacy && legacyPort !== undefined ? { service: legacy, port: legacyPort } : undefined;
}

function pathType(v: unknown): PathType {
  return v === "Exact" || v === "Prefix" ? v : "ImplementationSpecific";
}

function decodeBase64(v: unknown): string | undefined {
  return typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : undefined;
}

export const EndpointSlices: ResourceType<EndpointSliceView> = {
  kind: "EndpointSlice",
  plural: "endpointslices",
  group: "discovery.k8s.io",
  version: "v1",
  namespaced: true,
  project(o) {
    return {
      namespace: namespaceOf(o),
      name: nameOf(o),
      service: strMap(meta(o).labels)["kubernetes.io/service-name"],
      addressType: str(o.addressType) ?? "IPv4",
      ports: arr(o.ports).flatMap((p) => {
        const x = obj(p);
        const port = num(x.port);
        return port === undefined
          ? []
          : [{ name: str(x.name) ?? "", port, protocol: str(x.protocol) ?? "TCP" }];
      }),
      endpoints: arr(o.endpoints).map((e) => {
        const x = obj(e);
        const c = obj(x.conditions);
        return {
          addresses: strings(x.addresses),
          ready: c.ready !== false,
          terminating: c.terminating === true,
          nodeName: str(x.nodeName),
          zone: str(x.zone),
        };
      }),
    };
  },
};

export const Services: ResourceType<ServiceView> = {
  kind: "Service",
  plural: "services",
  group: "",
  version: "v1",
  namespaced: true,
  project(o) {
    const spec = obj(o.spec);
    return {
      namespace: namespaceOf(o),
      name: nameOf(o),
      labels: strMap(meta(o).labels),
      type: str(spec.type) ?? "ClusterIP",
      ports: arr(spec.ports).flatMap((p) => {
        const x = obj(p);
        const port = num(x.port);
        if (port === undefined) return [];
        return [
          {
            name: str(x.name) ?? "",
            port,
            targetPort: intOrString(x.targetPort) ?? port,
            protocol: str(x.protocol) ?? "TCP",
          },
        ];
      }),
      loadBalancer: loadBalancer(o.status),
    };
  },
};

export const Ingresses: ResourceType<IngressView> = {
  kind: "Ingress",
  plural: "ingresses",
  group: "networking.k8s.io",
  version: "v1",
  namespaced: true,
  project(o) {
    const spec = obj(o.spec);
    return {
      namespace: namespaceOf(o),
      name: nameOf(o),
      className: str(spec.ingressClassName),
      annotationClass: strMap(meta(o).annotations)["kubernetes.io/ingress.class"],
      defaultBackend: ingressBackend(spec.defaultBackend ?? spec.backend),
      rules: arr(spec.rules).map((r) => {
        const x = obj(r);
        return {
          host: str(x.host) || undefined,
          paths: arr(obj(x.http).paths).map((p) => {
            const y = obj(p);
            return {
              path: str(y.path) || undefined,
              pathType: pathType(y.pathType),
              backend: ingressBackend(y.backend),
            };
          }),
        };
      }),
      tls: arr(spec.tls).map((t) => {
        const x = obj(t);
        return {
          hosts: arr(x.hosts).filter((h): h is string => typeof h === "string"),
          secretName: str(x.secretName) || undefined,
        };
      }),
      loadBalancer: loadBalancer(o.status),
      created: str(meta(o).creationTimestamp) ?? "",
    };
  },
};

export const IngressClasses: ResourceType<IngressClassView> = {
  kind: "IngressClass",
  plural: "ingressclasses",
  group: "networking.k8s.io",
  version: "v1",
  namespaced: false,
  project(o) {
    return {
      name: nameOf(o),
      controller: str(obj(o.spec).controller) ?? "",
      isDefault:
        strMap(meta(o).annotations)["ingressclass.kubernetes.io/is-default-class"] === "true",
    };
  },
};

export const Secrets: ResourceType<SecretView> = {
  kind: "Secret",
  plural: "secrets",
  group: "",
  version: "v1",
  namespaced: true,
  project(o) {
    const data = obj(o.data);
    return {
      namespace: namespaceOf(o),
      name: nameOf(o),
      type: str(o.type) ?? "Opaque",
      tlsCrt: decodeBase64(data["tls.crt"]),
      tlsKey: decodeBase64(data["tls.key"]),
    };
  },
};

export const ConfigMaps: ResourceType<ConfigMapView> = {
  kind: "ConfigMap",
  plural: "configmaps",
  group: "",
  version: "v1",
  namespaced: true,
  project(o) {
    return { namespace: namespaceOf(o), name: nameOf(o), data: strMap(o.data) };
  },
};

export const Leases: ResourceType<LeaseView> = {
  kind: "Lease",
  plural: "leases",
  group: "coordination.k8s.io",
  version: "v1",
  namespaced: true,
  project(o) {
    const spec = obj(o.spec);
    return {
      namespace: namespaceOf(o),
      name: nameOf(o),
      holderIdentity: str(spec.holderIdentity),
      leaseDurationSeconds: num(spec.leaseDurationSeconds),
      renewTime: str(spec.renewTime),
    };
  },
};

export const Nodes: ResourceType<NodeView> = {
  kind: "Node",
  plural: "nodes",
  group: "",
  version: "v1",
  namespaced: false,
  project(o) {
    return {
      name: nameOf(o),
      addresses: arr(obj(o.status).addresses).flatMap((a) => {
        const x = obj(a);
        const type = str(x.type);
        const address = str(x.address);
        return type && address ? [{ type, address }] : [];
      }),
    };
  },
};

export const Pods: ResourceType<PodView> = {
  kind: "Pod",
  plural: "pods",
  group: "",
  version: "v1",
  namespaced: true,
  project(o) {
    const status = obj(o.status);
    const ready = arr(status.conditions).some((c) => {
      const x = obj(c);
      return x.type === "Ready" && x.status === "True";
    });
    return {
      namespace: namespaceOf(o),
      name: nameOf(o),
      podIP: str(status.podIP),
      hostIP: str(status.hostIP),
      nodeName: str(obj(o.spec).nodeName),
      ready,
      labels: strMap(meta(o).labels),
    };
  },
};

/** Every resource type lintel watches, by `group/version/plural` (how a worker names one to the control thread). */
export const RESOURCE_TYPES: ReadonlyMap<string, ResourceType<unknown>> = new Map(
  [
    EndpointSlices,
    Services,
    Ingresses,
    IngressClasses,
    Secrets,
    ConfigMaps,
    Leases,
    Nodes,
    Pods,
  ].map((t) => [resourceId(t), t as ResourceType<unknown>]),
);

export function resourceId(t: ResourceType<unknown>): string {
  return `${t.group}/${t.version}/${t.plural}`;
}
