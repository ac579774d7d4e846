// Builders of Kubernetes API objects for tests, shaped as the API server returns them: the
// fields the API or its controllers fill in are there too (a Service's clusterIP, an
// EndpointSlice's conditions and owner, a Pod's status), so code under test sees real shapes.

import { randomInt, randomUUID } from "node:crypto";

/** Labels, annotations, selectors. */
export type StringMap = Record<string, string>;

export type Protocol = "TCP" | "UDP" | "SCTP";

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Who wrote which fields (server-side apply bookkeeping; every stored object carries it). */
export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

export interface ObjectMeta {
  name: string;
  generateName?: string;
  /** Absent for cluster-scoped objects. */
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: StringMap;
  annotations?: StringMap;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: ManagedFieldsEntry[];
}

/** Any object the API serves: type meta, metadata, and the kind's own fields. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** Where a Service or Ingress is reachable from outside. */
export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
  /** Set by the API (1.30+) on entries with an ip. */
  ipMode?: "VIP" | "Proxy";
}

/** RFC 3339 to the second, as the API writes timestamps. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

/** A stable hash (FNV-1a) of a name, to derive fake addresses and ports from it. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A fake address in `prefix` (two octets) derived from `seed`, never .0 or .255. */
function fakeIP(prefix: string, seed: string): string {
  const h = hash(seed);
  return `${prefix}.${(h >>> 8) & 0xff}.${((h & 0xff) % 254) + 1}`;
}

/** The suffix the API appends to a generateName: five characters of its alphabet. */
export function nameSuffix(): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  return Array.from({ length: 5 }, () => alphabet[randomInt(alphabet.length)]).join("");
}

function metadata(
  name: string,
  namespace: string | undefined,
  labels?: StringMap,
  annotations?: StringMap,
): ObjectMeta {
  const meta: ObjectMeta = { name };
  if (namespace !== undefined) meta.namespace = namespace;
  if (labels && Object.keys(labels).length > 0) meta.labels = { ...labels };
  if (annotations && Object.keys(annotations).length > 0) meta.annotations = { ...annotations };
  return meta;
}

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

// ---- Service --------------------------------------------------------------------------

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer";

export interface ServicePort {
  /** Absent on an unnamed port (a single-port Service). */
  name?: string;
  protocol: Protocol;
  port: number;
  /** A container port number or name. */
  targetPort: number | string;
  /** NodePort and LoadBalancer Services. */
  nodePort?: number;
}

export interface Service extends KubeObject {
  spec: {
    type: ServiceType;
    clusterIP: string;
    clusterIPs: string[];
    ipFamilies: string[];
    ipFamilyPolicy: "SingleStack" | "PreferDualStack" | "RequireDualStack";
    internalTrafficPolicy: "Cluster" | "Local";
    externalTrafficPolicy?: "Cluster" | "Local";
    allocateLoadBalancerNodePorts?: boolean;
    ports: ServicePort[];
    selector?: StringMap;
    sessionAffinity: "None" | "ClientIP";
  };
  status: { loadBalancer: { ingress?: LoadBalancerIngress[] } };
}

export interface ServiceOptions {
  namespace: string;
  name: string;
  ports: { name?: string; port: number; targetPort?: number | string; protocol?: Protocol }[];
  labels?: StringMap;
  /** ClusterIP by default. */
  type?: ServiceType;
  /** status.loadBalancer.ingress, as a cloud controller writes it. */
  loadBalancer?: { ip?: string; hostname?: string }[];
  /** Absent: a Service without selector (its endpoints are managed by hand). */
  selector?: StringMap;
}

/** A Service as the API stores it: clusterIP (a stable fake 10.96.x.y) and defaults filled. */
export function service(o: ServiceOptions): Service {
  const type = o.type ?? "ClusterIP";
  const external = type !== "ClusterIP";
  const clusterIP = fakeIP("10.96", `${o.namespace}/${o.name}`);
  const ports = o.ports.map((p): ServicePort => {
    const port: ServicePort = {
      ...(p.name !== undefined && { name: p.name }),
      protocol: p.protocol ?? "TCP",
      port: p.port,
      targetPort: p.targetPort ?? p.port,
    };
    if (external) port.nodePort = 30000 + (hash(`${o.namespace}/${o.name}:${p.port}`) % 2768);
    return port;
  });
  const ingress = o.loadBalancer?.map(
    (lb): LoadBalancerIngress => (lb.ip ? { ip: lb.ip, ipMode: "VIP" } : { ...lb }),
  );
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(o.name, o.namespace, o.labels),
    spec: {
      ...(type === "LoadBalancer" && { allocateLoadBalancerNodePorts: true }),
      clusterIP,
      clusterIPs: [clusterIP],
      ...(external && { externalTrafficPolicy: "Cluster" as const }),
      internalTrafficPolicy: "Cluster",
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      ports,
      ...(o.selector && { selector: { ...o.selector } }),
      sessionAffinity: "None",
      type,
    },
    status: { loadBalancer: ingress && ingress.length > 0 ? { ingress } : {} },
  };
}

// ---- EndpointSlice --------------------------------------------------------------------

export interface EndpointConditions {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export interface ObjectReference {
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

export interface Endpoint {
  addresses: string[];
  conditions: EndpointConditions;
  nodeName?: string;
  targetRef?: ObjectReference;
  zone?: string;
}

export interface EndpointPort {
  /** "" for the Service's unnamed port. */
  name: string;
  port: number;
  protocol: Protocol;
}

export interface EndpointSlice extends KubeObject {
  addressType: "IPv4" | "IPv6" | "FQDN";
  /** null, not [], when there are none: the API drops empty lists. */
  endpoints: Endpoint[] | null;
  ports: EndpointPort[] | null;
}

export interface EndpointSliceOptions {
  namespace: string;
  /** The Service the slice belongs to. */
  service: string;
  /** `<service>-<5 random characters>` by default, as the controller's generateName makes. */
  name?: string;
  /** The Service's uid, for the owner reference (random by default). */
  serviceUid?: string;
  addressType?: "IPv4" | "IPv6" | "FQDN";
  ports: { name?: string; port: number; protocol?: Protocol }[];
  endpoints: {
    addresses: string[];
    /** Default: serving and not terminating. */
    ready?: boolean;
    /** Default: ready (or true). */
    serving?: boolean;
    terminating?: boolean;
    nodeName?: string;
    zone?: string;
    targetRef?: ObjectReference;
  }[];
}

/** An EndpointSlice as the endpointslice controller writes it for a Service. */
export function endpointSlice(o: EndpointSliceOptions): EndpointSlice {
  const endpoints = o.endpoints.map((e): Endpoint => {
    const terminating = e.terminating ?? false;
    const serving = e.serving ?? e.ready ?? true;
    const endpoint: Endpoint = {
      addresses: [...e.addresses],
      // The controller's rule: ready means serving and not terminating.
      conditions: { ready: e.ready ?? (serving && !terminating), serving, terminating },
    };
    if (e.nodeName !== undefined) endpoint.nodeName = e.nodeName;
    if (e.targetRef)
      endpoint.targetRef = {
        ...e.targetRef,
        namespace: e.targetRef.namespace ?? o.namespace,
        uid: e.targetRef.uid ?? randomUUID(),
      };
    if (e.zone !== undefined) endpoint.zone = e.zone;
    return endpoint;
  });
  const ports = o.ports.map(
    (p): EndpointPort => ({ name: p.name ?? "", port: p.port, protocol: p.protocol ?? "TCP" }),
  );
  const meta = metadata(
    o.name ?? `${o.service}-${nameSuffix()}`,
    o.namespace,
    {
      "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      "kubernetes.io/service-name": o.service,
    },
    { "endpoints.kubernetes.io/last-change-trigger-time": timestamp() },
  );
  if (o.name === undefined) meta.generateName = `${o.service}-`;
  meta.ownerReferences = [
    {
      apiVersion: "v1",
      kind: "Service",
      name: o.service,
      uid: o.serviceUid ?? randomUUID(),
      controller: true,
      blockOwnerDeletion: true,
    },
  ];
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: meta,
    addressType: o.addressType ?? "IPv4",
    endpoints: endpoints.length > 0 ? endpoints : null,
    ports: ports.length > 0 ? ports : null,
  };
}

// ---- Ingress, IngressClass ------------------------------------------------------------

export type PathType = "Exact" | "Prefix" | "ImplementationSpecific";

export interface IngressBackend {
  service: { name: string; port: { number: number } | { name: string } };
}

export interface IngressPath {
  path?: string;
  pathType: PathType;
  backend: IngressBackend;
}

export interface IngressRule {
  host?: string;
  http?: { paths: IngressPath[] };
}

export interface IngressTLS {
  hosts: string[];
  secretName: string;
}

export interface Ingress extends KubeObject {
  spec: {
    ingressClassName?: string;
    defaultBackend?: IngressBackend;
    rules?: IngressRule[];
    tls?: IngressTLS[];
  };
  status: {
    loadBalancer: {
      ingress?: {
        ip?: string;
        hostname?: string;
        ports?: { port: number; protocol: Protocol }[];
      }[];
    };
  };
}

export interface IngressOptions {
  namespace: string;
  name: string;
  /** spec.ingressClassName. */
  className?: string;
  annotations?: StringMap;
  defaultBackend?: { service: string; port: number | string };
  rules: {
    host?: string;
    paths: { path?: string; pathType: PathType; service: string; port: number | string }[];
  }[];
  tls?: IngressTLS[];
}

function ingressBackend(service: string, port: number | string): IngressBackend {
  return {
    service: { name: service, port: typeof port === "number" ? { number: port } : { name: port } },
  };
}

/** A networking.k8s.io/v1 Ingress whose backends are Services (port by number or name). */
export function ingress(o: IngressOptions): Ingress {
  const spec: Ingress["spec"] = {};
  if (o.className !== undefined) spec.ingressClassName = o.className;
  if (o.defaultBackend)
    spec.defaultBackend = ingressBackend(o.defaultBackend.service, o.defaultBackend.port);
  if (o.rules.length > 0)
    spec.rules = o.rules.map((r): IngressRule => {
      const rule: IngressRule = {};
      if (r.host !== undefined) rule.host = r.host;
      if (r.paths.length > 0)
        rule.http = {
          paths: r.paths.map((p) => ({
            ...(p.path !== undefined && { path: p.path }),
            pathType: p.pathType,
            backend: ingressBackend(p.service, p.port),
          })),
        };
      return rule;
    });
  if (o.tls && o.tls.length > 0)
    spec.tls = o.tls.map((t) => ({ hosts: [...t.hosts], secretName: t.secretName }));
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: metadata(o.name, o.namespace, undefined, o.annotations),
    spec,
    status: { loadBalancer: {} },
  };
}

export interface IngressClass extends KubeObject {
  spec: { controller: string };
}

/** A cluster-scoped IngressClass; `isDefault` sets the is-default-class annotation. */
export function ingressClass(o: {
  name: string;
  controller: string;
  isDefault?: boolean;
}): IngressClass {
  const annotations: StringMap = o.isDefault
    ? { "ingressclass.kubernetes.io/is-default-class": "true" }
    : {};
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "IngressClass",
    metadata: metadata(o.name, undefined, undefined, annotations),
    spec: { controller: o.controller },
  };
}

// ---- Secret, ConfigMap ----------------------------------------------------------------

export interface Secret extends KubeObject {
  type: string;
  /** Values are base64. */
  data: StringMap;
}

/** A kubernetes.io/tls Secret holding the PEMs in tls.crt and tls.key. */
export function tlsSecret(o: {
  namespace: string;
  name: string;
  cert: string;
  key: string;
}): Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: metadata(o.name, o.namespace),
    data: { "tls.crt": base64(o.cert), "tls.key": base64(o.key) },
    type: "kubernetes.io/tls",
  };
}

/** An Opaque Secret; `data` is given as text and stored base64-encoded, as the API keeps it. */
export function opaqueSecret(o: {
  namespace: string;
  name: string;
  data: StringMap;
  labels?: StringMap;
}): Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: metadata(o.name, o.namespace, o.labels),
    data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, base64(v)])),
    type: "Opaque",
  };
}

export interface ConfigMap extends KubeObject {
  data: StringMap;
}

export function configMap(o: {
  namespace: string;
  name: string;
  data: StringMap;
  labels?: StringMap;
}): ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: metadata(o.name, o.namespace, o.labels),
    data: { ...o.data },
  };
}

// ---- Lease ----------------------------------------------------------------------------

/** A MicroTime as the API writes it: RFC 3339 in UTC with six fractional digits. */
export function microTime(date = new Date()): string {
  return date.toISOString().replace(/Z$/, "000Z");
}

export interface Lease extends KubeObject {
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    /** MicroTimes. */
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** A coordination.k8s.io/v1 Lease held by `holderIdentity`, acquired and renewed at `renewTime` (default now). */
export function lease(o: {
  namespace: string;
  name: string;
  holderIdentity: string;
  leaseDurationSeconds: number;
  renewTime?: Date;
}): Lease {
  const at = microTime(o.renewTime);
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: metadata(o.name, o.namespace),
    spec: {
      holderIdentity: o.holderIdentity,
      leaseDurationSeconds: o.leaseDurationSeconds,
      acquireTime: at,
      renewTime: at,
      leaseTransitions: 0,
    },
  };
}

// ---- Node, Pod ------------------------------------------------------------------------

export interface NodeCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastHeartbeatTime: string;
  lastTransitionTime: string;
}

export interface Node extends KubeObject {
  spec: { podCIDR?: string; podCIDRs?: string[] };
  status: {
    addresses: { type: string; address: string }[];
    allocatable: StringMap;
    capacity: StringMap;
    conditions: NodeCondition[];
    daemonEndpoints: { kubeletEndpoint: { Port: number } };
    nodeInfo: StringMap;
  };
}

/** A ready Linux Node as its kubelet reports it. */
export function node(o: { name: string; internalIP: string; podCIDR?: string }): Node {
  const at = timestamp();
  const condition = (
    type: string,
    status: "True" | "False",
    reason: string,
    message: string,
  ): NodeCondition => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: at,
    lastTransitionTime: at,
  });
  const resources = {
    cpu: "4",
    "ephemeral-storage": "102626232Ki",
    memory: "16318480Ki",
    pods: "110",
  };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: metadata(o.name, undefined, {
      "beta.kubernetes.io/arch": "amd64",
      "beta.kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
      "kubernetes.io/hostname": o.name,
      "kubernetes.io/os": "linux",
    }),
    spec: o.podCIDR ? { podCIDR: o.podCIDR, podCIDRs: [o.podCIDR] } : {},
    status: {
      addresses: [
        { type: "InternalIP", address: o.internalIP },
        { type: "Hostname", address: o.name },
      ],
      allocatable: resources,
      capacity: resources,
      conditions: [
        condition(
          "MemoryPressure",
          "False",
          "KubeletHasSufficientMemory",
          "kubelet has sufficient memory available",
        ),
        condition(
          "DiskPressure",
          "False",
          "KubeletHasNoDiskPressure",
          "kubelet has no disk pressure",
        ),
        condition(
          "PIDPressure",
          "False",
          "KubeletHasSufficientPID",
          "kubelet has sufficient PID available",
        ),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        architecture: "amd64",
        bootID: randomUUID(),
        containerRuntimeVersion: "containerd://1.7.22",
        kernelVersion: "6.1.0-27-amd64",
        kubeletVersion: "v1.31.2",
        machineID: randomUUID().replaceAll("-", ""),
        operatingSystem: "linux",
        osImage: "Debian GNU/Linux 12 (bookworm)",
        systemUUID: randomUUID(),
      },
    },
  };
}

export interface PodCondition {
  type: string;
  status: "True" | "False";
  lastProbeTime: null;
  lastTransitionTime: string;
}

export interface Pod extends KubeObject {
  spec: Record<string, unknown> & { nodeName: string; containers: Record<string, unknown>[] };
  status: Record<string, unknown> & {
    phase: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
    conditions: PodCondition[];
    hostIP: string;
    hostIPs: { ip: string }[];
    podIP: string;
    podIPs: { ip: string }[];
  };
}

/** A Running Pod with one container on `nodeName`; `ready` (default true) sets its Ready conditions. */
export function pod(o: {
  namespace: string;
  name: string;
  nodeName: string;
  podIP: string;
  hostIP?: string;
  labels?: StringMap;
  ready?: boolean;
}): Pod {
  const ready = o.ready ?? true;
  const started = timestamp();
  const hostIP = o.hostIP ?? fakeIP("172.18", o.nodeName);
  const image = "registry.example/app:1.0";
  const condition = (type: string, status: boolean): PodCondition => ({
    type,
    status: status ? "True" : "False",
    lastProbeTime: null,
    lastTransitionTime: started,
  });
  const untolerated = (key: string) => ({
    effect: "NoExecute",
    key,
    operator: "Exists",
    tolerationSeconds: 300,
  });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: metadata(o.name, o.namespace, o.labels),
    spec: {
      containers: [
        {
          name: "app",
          image,
          imagePullPolicy: "IfNotPresent",
          resources: {},
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
        },
      ],
      dnsPolicy: "ClusterFirst",
      enableServiceLinks: true,
      nodeName: o.nodeName,
      preemptionPolicy: "PreemptLowerPriority",
      priority: 0,
      restartPolicy: "Always",
      schedulerName: "default-scheduler",
      securityContext: {},
      serviceAccount: "default",
      serviceAccountName: "default",
      terminationGracePeriodSeconds: 30,
      tolerations: [
        untolerated("node.kubernetes.io/not-ready"),
        untolerated("node.kubernetes.io/unreachable"),
      ],
    },
    status: {
      phase: "Running",
      conditions: [
        condition("PodReadyToStartContainers", true),
        condition("Initialized", true),
        condition("Ready", ready),
        condition("ContainersReady", ready),
        condition("PodScheduled", true),
      ],
      containerStatuses: [
        {
          name: "app",
          image,
          imageID: `${image}@sha256:${hash(image).toString(16).padStart(64, "0")}`,
          containerID: `containerd://${randomUUID().replaceAll("-", "")}`,
          ready,
          restartCount: 0,
          started: true,
          state: { running: { startedAt: started } },
        },
      ],
      hostIP,
      hostIPs: [{ ip: hostIP }],
      podIP: o.podIP,
      podIPs: [{ ip: o.podIP }],
      qosClass: "BestEffort",
      startTime: started,
    },
  };
}
