// The Kubernetes manifests in deploy/k8s/, checked as a platform team's reviewer would:
// - each role's folder (edge, egress, node-proxy) renders with `kubectl kustomize`;
// - every rendered object validates against the Kubernetes OpenAPI schemas (the npm
//   package kubernetes-models: the model of the object's apiVersion/kind, .validate());
// - the policies a reviewer checks, each its own test: requests, probes on the admin
//   port, the restricted security context, the edge LoadBalancer Service, RBAC exactly
//   what the kinds in each config.yaml need, no API token in the egress pods, a preStop
//   sleep and a grace period longer than it plus the config's drain, PDB/HPA on their
//   own pods, the IngressClass, and that each ConfigMap carries its folder's config.yaml;
// - each config.yaml passes `lintel check` (the built bin: run `npm run -s build` first).
//
// kubectl: any with kustomize built in; Debian's is the package kubernetes-client (kubectl
// 1.20, kustomize v2.0.3: the manifests keep to what it supports, and newer kubectl build
// the same objects). Without kubectl the rendering tests skip with a printed reason, or
// fail under CI=true. KUBECTL=/path/kubectl renders with another one (another kustomize).
//
// Self-contained (no import of the gateway) on purpose: it tests deployment files.

import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, join, posix, resolve } from "node:path";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { IIngressClass } from "kubernetes-models/networking.k8s.io/v1/IngressClass";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import type { IClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

const ROOT = resolve(import.meta.dirname, "../..");
const K8S = join(ROOT, "deploy", "k8s");
const BIN = join(ROOT, "bin", "lintel.js");
const ROLES = ["edge", "egress", "node-proxy"] as const;
type Role = (typeof ROLES)[number];

const NAMESPACE = "lintel";
const IMAGE = "ghcr.io/lintel/lintel:0.1.0";
const PART_OF = "app.kubernetes.io/part-of";
const COMPONENT = "app.kubernetes.io/component";
/** The preStop sleep every role's pods have (their Services' users notice a deletion late). */
const PRESTOP_SECONDS = 5;
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass"]);

const CI = process.env.CI === "true";
const KUBECTL = findKubectl();
const SKIP = KUBECTL === undefined && !CI;
if (SKIP)
  console.warn(
    "test/deploy/k8s-manifests.test.ts: the rendering tests are SKIPPED: `kubectl` is not " +
      "installed (Debian package kubernetes-client: apt-get install -y kubernetes-client). " +
      "Under CI=true they fail instead.",
  );

/** $KUBECTL, else kubectl on PATH or in /usr/bin, /usr/local/bin. */
function findKubectl(): string | undefined {
  if (process.env.KUBECTL) return process.env.KUBECTL;
  for (const d of [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/local/bin"]) {
    if (!d) continue;
    const f = join(d, "kubectl");
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

function kubectlBin(): string {
  if (KUBECTL === undefined)
    throw new Error(
      "kubectl is not installed, and CI=true requires it for the deploy/k8s tests: install " +
        "the Debian package kubernetes-client (apt-get install -y kubernetes-client)",
    );
  return KUBECTL;
}

// ---------------------------------------------------------------------------------------
// Rendered objects

interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
}

const renders = new Map<Role, K8sObject[]>();

/** `kubectl kustomize deploy/k8s/<role>`, parsed (once per role). */
function rendered(role: Role): K8sObject[] {
  const done = renders.get(role);
  if (done) return done;
  const r = spawnSync(kubectlBin(), ["kustomize", join(K8S, role)], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`kubectl kustomize deploy/k8s/${role} exited ${r.status}:\n${r.stderr}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(r.stdout)) {
    if (doc.errors.length > 0) throw new Error(`kustomize output: ${doc.errors[0]!.message}`);
    const o = doc.toJS() as K8sObject | null;
    if (o !== null) objects.push(o);
  }
  renders.set(role, objects);
  return objects;
}

function all(): { role: Role; o: K8sObject }[] {
  return ROLES.flatMap((role) => rendered(role).map((o) => ({ role, o })));
}

function ofKind<T>(role: Role, kind: string): T[] {
  return rendered(role).filter((o) => o.kind === kind) as unknown as T[];
}

function one<T>(role: Role, kind: string, name?: string): T {
  const found = rendered(role).filter(
    (o) => o.kind === kind && (name === undefined || o.metadata.name === name),
  );
  if (found.length !== 1)
    throw new Error(`deploy/k8s/${role}: expected one ${kind} ${name ?? ""}, got ${found.length}`);
  return found[0] as unknown as T;
}

type Workload = IDeployment | IDaemonSet;

/** The role's one Deployment or DaemonSet. */
function workload(role: Role): Workload {
  const w = rendered(role).filter((o) => o.kind === "Deployment" || o.kind === "DaemonSet");
  if (w.length !== 1)
    throw new Error(`deploy/k8s/${role}: expected one Deployment or DaemonSet, got ${w.length}`);
  return w[0] as unknown as Workload;
}

function podSpec(role: Role): IPodSpec {
  return workload(role).spec!.template.spec!;
}

function podLabels(role: Role): Readonly<Record<string, string>> {
  return workload(role).spec!.template.metadata?.labels ?? {};
}

function container(role: Role): IContainer {
  const cs = podSpec(role).containers;
  if (cs.length !== 1) throw new Error(`deploy/k8s/${role}: expected one container`);
  return cs[0]!;
}

interface LabelSelector {
  readonly matchLabels?: Record<string, string>;
  readonly matchExpressions?: unknown[];
}

/** The labels a selector requires (these manifests use matchLabels only). */
function required(s: LabelSelector | undefined): Record<string, string> {
  if (s?.matchExpressions?.length) throw new Error("this test reads matchLabels only");
  return s?.matchLabels ?? {};
}

/** Whether `labels` has every label of `match`; an empty `match` is a mistake here. */
function selects(match: Record<string, string>, labels: Readonly<Record<string, string>>) {
  if (Object.keys(match).length === 0) return false;
  return Object.entries(match).every(([k, v]) => labels[k] === v);
}

/** The roles whose pods `match` picks, among every role's workload. */
function selectedRoles(match: Record<string, string>): Role[] {
  return ROLES.filter((r) => selects(match, podLabels(r)));
}

/** A container port by number or name. */
function containerPort(c: IContainer, port: number | string): number | undefined {
  if (typeof port === "number") return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

// ---------------------------------------------------------------------------------------
// The lintel configs

interface Kinded {
  readonly kind: string;
  readonly [k: string]: unknown;
}

interface LintelConfig {
  readonly admin?: {
    ip?: string;
    port?: number;
    drainDelayMs?: number;
    shutdownGraceMs?: number;
  };
  readonly routers: readonly {
    readonly identifier?: Kinded;
    readonly interpreter?: Kinded & { transformers?: Kinded[] };
    readonly servers: readonly { port: number; ip?: string }[];
  }[];
}

function configText(role: Role): string {
  return readFileSync(join(K8S, role, "config.yaml"), "utf8");
}

function config(role: Role): LintelConfig {
  return parse(configText(role)) as LintelConfig;
}

/** The admin block with lintel's defaults. */
function admin(role: Role) {
  const a = config(role).admin ?? {};
  return {
    ip: a.ip ?? "127.0.0.1",
    port: a.port ?? 9990,
    drainDelayMs: a.drainDelayMs ?? 0,
    shutdownGraceMs: a.shutdownGraceMs ?? 10_000,
  };
}

function transformers(role: Role, kind: string): Kinded[] {
  return config(role).routers.flatMap((r) =>
    (r.interpreter?.transformers ?? []).filter((t) => t.kind === kind),
  );
}

// ---------------------------------------------------------------------------------------
// What a config needs from the Kubernetes API, from the kinds it uses

/** `(apiGroup or "core")/resource verb`, as the RBAC test lists grants. */
type Grant = string;

const listWatch = (resource: string): Grant[] => [`${resource} list`, `${resource} watch`];
const SERVICES = listWatch("core/services");
const ENDPOINT_SLICES = listWatch("discovery.k8s.io/endpointslices");
const INGRESSES = listWatch("networking.k8s.io/ingresses");
const SECRETS = listWatch("core/secrets");

/**
 * What each kind that talks to the Kubernetes API asks of it, as its code in gateway/
 * does (the watches it opens through ctx.kube, and the writes): a `kind:` anywhere in
 * a config, by its name. The kinds that read nothing from the API are absent.
 */
const KIND_NEEDS: Readonly<Record<string, (o: Kinded) => Grant[]>> = {
  // namers/k8s.ts, transformers/k8s-daemonset.ts: k8s/service-index.ts with EndpointSlices.
  "io.l5d.k8s": () => [...SERVICES, ...ENDPOINT_SLICES],
  "io.l5d.k8s.daemonset": () => [...SERVICES, ...ENDPOINT_SLICES],
  // namers/k8s-external.ts: the Services' load-balancer addresses only.
  "io.l5d.k8s.external": () => SERVICES,
  // transformers/k8s-localnode.ts: POD_IP and NODE_NAME from the downward API.
  "io.l5d.k8s.localnode": () => [],
  // identifiers/ingress.ts; ingress-status.ts watches the publishService and writes the
  // status with a merge patch (no get).
  "io.l5d.ingress": (o) => [
    ...INGRESSES,
    ...(o.publishService !== undefined ? SERVICES : []),
    ...(o.publishService !== undefined || o.publishAddresses !== undefined
      ? ["networking.k8s.io/ingresses/status patch"]
      : []),
  ],
  // interpreters/k8s-configmap.ts.
  "io.l5d.k8s.configMap": () => listWatch("core/configmaps"),
  // acme/kubernetes-storage.ts: certificates in Secrets, locks in Leases.
  kubernetes: () => [
    ...["get", "list", "create", "update", "delete"].map((v) => `core/secrets ${v}`),
    ...["get", "create", "update"].map((v) => `coordination.k8s.io/leases ${v}`),
  ],
};

/** The same for the certificate sources of a server's `tls.certs` (keyed by name, not `kind:`). */
const CERT_SOURCE_NEEDS: Readonly<Record<string, Grant[]>> = {
  // k8s/secret-certificates.ts: the Ingresses' spec.tls and the kubernetes.io/tls Secrets.
  ingressSecrets: [...INGRESSES, ...SECRETS],
  // k8s/secret-certificates.ts: one Secret, watched with a field selector on its name.
  secret: SECRETS,
};

/** A kind or certificate source whose name says Kubernetes must be in the tables above. */
const LOOKS_KUBERNETES = /k8s|kube|ingress|secret|configmap/i;

/** Every grant the kinds in `cfg` need (sorted, each once); throws on a kind not in the tables. */
function apiNeeds(cfg: unknown): Grant[] {
  const needs = new Set<Grant>();
  const unknown: string[] = [];
  const visit = (v: unknown, key: string): void => {
    if (Array.isArray(v)) {
      for (const x of v) {
        // tls.certs entries name their source by their one key: {ingressSecrets: {}}.
        if (key === "certs" && typeof x === "object" && x !== null)
          for (const source of Object.keys(x)) {
            const grants = CERT_SOURCE_NEEDS[source];
            if (grants) for (const g of grants) needs.add(g);
            else if (LOOKS_KUBERNETES.test(source)) unknown.push(`certificate source ${source}`);
          }
        visit(x, key);
      }
      return;
    }
    if (typeof v !== "object" || v === null) return;
    const o = v as Kinded;
    if (typeof o.kind === "string") {
      const needsOf = KIND_NEEDS[o.kind];
      if (needsOf) for (const g of needsOf(o)) needs.add(g);
      else if (LOOKS_KUBERNETES.test(o.kind)) unknown.push(`kind ${o.kind}`);
    }
    for (const [k, x] of Object.entries(o)) visit(x, k);
  };
  visit(cfg, "");
  if (unknown.length > 0)
    throw new Error(
      `the RBAC test does not know what ${unknown.join(", ")} needs from the API: add it to KIND_NEEDS or CERT_SOURCE_NEEDS`,
    );
  return [...needs].sort();
}

// ---------------------------------------------------------------------------------------
// Schema validation with kubernetes-models

// Each apiVersion is a module of the package (kubernetes-models/apps/v1, .../v1).
const requireModels = createRequire(import.meta.url);

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** What the OpenAPI schema of the object's apiVersion/kind says is wrong; "" when valid. */
function schemaErrors(o: K8sObject): string {
  let group: Record<string, unknown>;
  try {
    group = requireModels(`kubernetes-models/${o.apiVersion}`) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ERR_PACKAGE_PATH_NOT_EXPORTED" && code !== "MODULE_NOT_FOUND") throw e;
    return `${o.kind} ${o.metadata.name}: unknown apiVersion ${o.apiVersion}`;
  }
  const Model = group[o.kind] as ModelClass | undefined;
  if (typeof Model !== "function")
    return `${o.kind} ${o.metadata.name}: unknown kind ${o.kind} in ${o.apiVersion}`;
  try {
    new Model(o).validate();
    return "";
  } catch (e) {
    return `${o.kind} ${o.metadata.name}: ${(e as Error).message}`;
  }
}

// ---------------------------------------------------------------------------------------

describe.skipIf(SKIP)("deploy/k8s manifests", () => {
  const EXPECTED_KINDS: Record<Role, string[]> = {
    edge: [
      "ClusterRole",
      "ClusterRoleBinding",
      "ConfigMap",
      "Deployment",
      "HorizontalPodAutoscaler",
      "IngressClass",
      "Namespace",
      "PodDisruptionBudget",
      "Service",
      "ServiceAccount",
    ],
    egress: [
      "ConfigMap",
      "Deployment",
      "HorizontalPodAutoscaler",
      "Namespace",
      "PodDisruptionBudget",
      "Service",
      "ServiceAccount",
    ],
    "node-proxy": [
      "ClusterRole",
      "ClusterRoleBinding",
      "ConfigMap",
      "DaemonSet",
      "Namespace",
      "Service",
      "ServiceAccount",
    ],
  };

  it.each(ROLES)("%s renders with kubectl kustomize into the expected objects", (role) => {
    const kinds = rendered(role).map((o) => o.kind);
    expect([...kinds].sort()).toEqual(EXPECTED_KINDS[role]);
  });

  it.each(ROLES)("%s: every object validates against the Kubernetes OpenAPI schema", (role) => {
    const errors = rendered(role)
      .map(schemaErrors)
      .filter((e) => e !== "");
    expect(errors).toEqual([]);
  });

  it("the schema check refuses a wrong field type, an unknown apiVersion and kind", () => {
    const broken = structuredClone(workload("edge")) as IDeployment;
    const port = broken.spec!.template.spec!.containers[0]!.ports![0]!;
    (port as { containerPort: unknown }).containerPort = "8080";
    expect(schemaErrors(broken as unknown as K8sObject)).toMatch(/containerPort must be integer/);
    const meta = { name: "x" };
    expect(schemaErrors({ apiVersion: "lintel.dev/v1", kind: "Gateway", metadata: meta })).toMatch(
      /unknown apiVersion lintel\.dev\/v1/,
    );
    expect(schemaErrors({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: meta })).toMatch(
      /unknown kind Deploymnet/,
    );
  });

  it("every object is labelled with its role and lives in namespace lintel (or is cluster-wide)", () => {
    for (const { role, o } of all()) {
      const what = `deploy/k8s/${role}: ${o.kind} ${o.metadata.name}`;
      expect(o.metadata.labels?.[PART_OF], what).toBe("lintel");
      // The shared Namespace belongs to no one role; everything else can be found (and
      // removed) by its role's label.
      if (o.kind !== "Namespace") expect(o.metadata.labels?.[COMPONENT], what).toBe(role);
      if (CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, what).toBeUndefined();
      else expect(o.metadata.namespace, what).toBe(NAMESPACE);
    }
    for (const role of ROLES)
      expect(one<K8sObject>(role, "Namespace").metadata.name, role).toBe(NAMESPACE);
  });

  it("no two roles define the same object (except the shared Namespace)", () => {
    const owner = new Map<string, Role>();
    for (const { role, o } of all()) {
      if (o.kind === "Namespace") continue;
      const key = `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      expect(owner.get(key), `${key} in ${owner.get(key)} and ${role}`).toBeUndefined();
      owner.set(key, role);
    }
  });

  it.each(ROLES)(
    "%s: the container runs the lintel image on the ConfigMap's config.yaml",
    (role) => {
      const c = container(role);
      expect(c.image).toBe(IMAGE);
      expect(c.args?.[0]).toBe("run");
      const file = c.args?.[1] ?? "";
      expect(c.args).toHaveLength(2);
      const mount = c.volumeMounts?.find((m) => m.mountPath === posix.dirname(file));
      expect(mount, `a volume mounted at ${posix.dirname(file)}`).toBeDefined();
      const volume = podSpec(role).volumes?.find((v) => v.name === mount!.name);
      const cmName = volume?.configMap?.name;
      expect(cmName, `volume ${mount!.name} is a ConfigMap`).toBeDefined();
      // The name kustomize gave it (with the hash of its content).
      expect(cmName).toMatch(new RegExp(`^lintel-${role}-config-[a-z0-9]+$`));
      const cm = one<IConfigMap>(role, "ConfigMap", cmName);
      expect(Object.keys(cm.data ?? {})).toEqual([posix.basename(file)]);
      expect(cm.data![posix.basename(file)]).toBe(configText(role));
    },
  );

  it.each(ROLES)("%s: requests for CPU and memory, a memory limit, no CPU limit", (role) => {
    const r = container(role).resources;
    expect(r?.requests?.cpu).toBeDefined();
    expect(r?.requests?.memory).toBeDefined();
    expect(r?.limits?.memory).toBeDefined();
    expect(r?.limits?.cpu, "a CPU limit throttles the proxy").toBeUndefined();
    if (role === "edge") {
      expect(r?.requests).toEqual({ cpu: "250m", memory: "128Mi" });
      expect(r?.limits).toEqual({ memory: "512Mi" });
    }
  });

  it.each(ROLES)(
    "%s: readiness /admin/ready and liveness /admin/ping on the admin port",
    (role) => {
      const c = container(role);
      const a = admin(role);
      expect(a.port).toBe(9990);
      // The kubelet probes the pod's address: admin must listen on every address.
      expect(a.ip).toBe("0.0.0.0");
      const ready = c.readinessProbe?.httpGet;
      const live = c.livenessProbe?.httpGet;
      expect(ready?.path).toBe("/admin/ready");
      expect(live?.path).toBe("/admin/ping");
      expect(containerPort(c, ready!.port)).toBe(a.port);
      expect(containerPort(c, live!.port)).toBe(a.port);
    },
  );

  it.each(ROLES)("%s: non-root, read-only root filesystem, no capabilities, seccomp", (role) => {
    const pod = podSpec(role);
    const c = container(role);
    const effective = { ...pod.securityContext, ...c.securityContext };
    expect(effective.runAsNonRoot).toBe(true);
    expect(effective.runAsUser).toBe(10001);
    expect(effective.seccompProfile?.type).toBe("RuntimeDefault");
    expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext?.privileged).not.toBe(true);
    expect(c.securityContext?.capabilities?.drop).toContain("ALL");
    expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
    // The one writable path is an emptyDir.
    const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
    expect(tmp, "/tmp is mounted").toBeDefined();
    expect(pod.volumes?.find((v) => v.name === tmp!.name)?.emptyDir).toBeDefined();
  });

  it.each(["edge", "node-proxy"] as const)(
    "%s: POD_IP, NODE_NAME and POD_NAMESPACE from the downward API",
    (role) => {
      const env = Object.fromEntries(
        (container(role).env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
      );
      expect(env).toMatchObject({
        POD_IP: "status.podIP",
        NODE_NAME: "spec.nodeName",
        POD_NAMESPACE: "metadata.namespace",
      });
    },
  );

  it.each(ROLES)("%s: the container's ports are the config's servers and admin port", (role) => {
    const servers = config(role).routers.flatMap((r) => r.servers.map((s) => s.port));
    const ports = (container(role).ports ?? []).map((p) => p.containerPort);
    expect([...ports].sort()).toEqual([...servers, admin(role).port].sort());
  });

  it.each(ROLES)(
    "%s: a preStop sleep, with no shell, before SIGTERM starts lintel's drain",
    (role) => {
      const lifecycle = container(role).lifecycle;
      // The kubelet's own sleep action (Kubernetes 1.30+): the image has no shell for an
      // exec hook, and an httpGet hook would not wait.
      expect(lifecycle?.preStop).toEqual({ sleep: { seconds: PRESTOP_SECONDS } });
      expect(lifecycle?.postStart).toBeUndefined();
      // The manifest says what to do on an older cluster.
      const file = role === "node-proxy" ? "daemonset.yaml" : "deployment.yaml";
      const text = readFileSync(join(K8S, role, file), "utf8");
      expect(text).toMatch(/Kubernetes 1\.30 or later \(PodLifecycleSleepAction/);
      expect(text).toMatch(/On an older cluster delete this `lifecycle` block/);
      expect(text).not.toMatch(/no preStop|There is no preStop/i);
    },
  );

  it.each(ROLES)(
    "%s: terminationGracePeriodSeconds outlasts the preStop sleep and lintel's drain",
    (role) => {
      const a = admin(role);
      const grace = podSpec(role).terminationGracePeriodSeconds ?? 30;
      // The grace period runs from the deletion: the preStop hook uses part of it.
      const preStop = container(role).lifecycle?.preStop?.sleep?.seconds ?? 0;
      expect(preStop).toBe(PRESTOP_SECONDS);
      expect(grace).toBeGreaterThan(preStop + (a.drainDelayMs + a.shutdownGraceMs) / 1000);
      // The readiness probe notices the drain before lintel stops accepting connections.
      const probe = container(role).readinessProbe!;
      const noticed = (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3) * 1000;
      expect(a.drainDelayMs).toBeGreaterThan(noticed);
    },
  );

  it("no Service exposes an admin port", () => {
    for (const role of ROLES)
      for (const s of ofKind<IService>(role, "Service")) {
        const targets = (s.spec?.ports ?? []).map((p) =>
          containerPort(container(role), p.targetPort ?? p.port),
        );
        expect(targets, `${role}: Service ${s.metadata!.name}`).not.toContain(admin(role).port);
      }
  });

  it("each Service selects the pods of its own role only", () => {
    for (const role of ROLES)
      for (const s of ofKind<IService>(role, "Service")) {
        expect(selectedRoles(s.spec?.selector ?? {}), `Service ${s.metadata!.name}`).toEqual([
          role,
        ]);
      }
  });

  it("edge: a LoadBalancer Service with externalTrafficPolicy Local, 80→8080 and 443→8443", () => {
    const s = one<IService>("edge", "Service", "lintel-edge");
    expect(s.spec?.type).toBe("LoadBalancer");
    expect(s.spec?.externalTrafficPolicy).toBe("Local");
    const ports = Object.fromEntries(
      (s.spec?.ports ?? []).map((p) => [p.port, containerPort(container("edge"), p.targetPort!)]),
    );
    expect(ports).toEqual({ 80: 8080, 443: 8443 });
  });

  it("edge: two or more replicas, spread over hosts and zones", () => {
    const d = workload("edge") as IDeployment;
    expect(d.spec?.replicas).toBeGreaterThanOrEqual(2);
    const labels = podLabels("edge");
    const anti = d.spec!.template.spec!.affinity?.podAntiAffinity;
    const terms = [
      ...(anti?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
      ...(anti?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map(
        (w) => w.podAffinityTerm,
      ),
    ];
    expect(
      terms.some(
        (t) =>
          t.topologyKey === "kubernetes.io/hostname" && selects(required(t.labelSelector), labels),
      ),
      "anti-affinity by host on the edge pods",
    ).toBe(true);
    const spread = d.spec!.template.spec!.topologySpreadConstraints ?? [];
    expect(spread.length).toBeGreaterThan(0);
    for (const t of spread) expect(selects(required(t.labelSelector), labels)).toBe(true);
  });

  it("edge: the IngressClass lintel, served by the config's io.l5d.ingress identifier", () => {
    const ic = one<IIngressClass>("edge", "IngressClass");
    expect(ic.metadata?.name).toBe("lintel");
    expect(ic.spec?.controller).toBe("lintel.dev/ingress-controller");
    const ids = config("edge").routers.map((r) => r.identifier);
    expect(ids.map((i) => i?.kind)).toEqual(["io.l5d.ingress"]);
    const id = ids[0]!;
    expect(id.ingressClassAnnotation).toBe(ic.metadata?.name);
    // Not the default class, and lintel does not claim Ingresses that name none.
    expect(id.claimUnclassed).toBe(false);
    expect(ic.metadata?.annotations?.["ingressclass.kubernetes.io/is-default-class"]).not.toBe(
      "true",
    );
    // Ingress status is written from the LoadBalancer Service this folder defines.
    const lb = one<IService>("edge", "Service", "lintel-edge");
    expect(id.publishService).toBe(`${lb.metadata!.namespace}/${lb.metadata!.name}`);
  });

  it("the RBAC expectations come from the kinds a config uses", () => {
    // The shipped configs: what their kinds read, and (the edge) the status it writes.
    const PODS = [...ENDPOINT_SLICES, ...SERVICES];
    expect(apiNeeds(config("node-proxy"))).toEqual([...PODS].sort());
    expect(apiNeeds(config("egress"))).toEqual([]);
    expect(apiNeeds(config("edge"))).toEqual(
      [...PODS, ...INGRESSES, ...SECRETS, "networking.k8s.io/ingresses/status patch"].sort(),
    );
    // Neither the class objects nor a status get: no kind reads them.
    expect(apiNeeds(config("edge")).filter((g) => /ingressclasses|status get/.test(g))).toEqual([]);
    // Another config, other needs.
    const other = {
      routers: [
        {
          identifier: { kind: "io.l5d.ingress" },
          interpreter: { kind: "io.l5d.k8s.configMap", name: "dtabs" },
          servers: [{ port: 1, tls: { certs: [{ secret: "ns/name" }] } }],
        },
      ],
    };
    expect(apiNeeds(other)).toEqual(
      [...INGRESSES, ...listWatch("core/configmaps"), ...SECRETS].sort(),
    );
    // A Kubernetes kind the tables do not know fails rather than passing unchecked.
    expect(() => apiNeeds({ namers: [{ kind: "io.l5d.k8s.pods" }] })).toThrow(
      /kind io\.l5d\.k8s\.pods needs/,
    );
    expect(() => apiNeeds({ certs: [{ k8sSecretStore: {} }] })).toThrow(
      /certificate source k8sSecretStore/,
    );
  });

  it.each(ROLES)(
    "%s: RBAC grants its ServiceAccount exactly what its config's kinds need",
    (role) => {
      const saName = podSpec(role).serviceAccountName;
      const sa = one<IServiceAccount>(role, "ServiceAccount", saName);
      const roles = rendered(role).filter((o) => o.kind === "ClusterRole" || o.kind === "Role");
      const bindings = rendered(role).filter(
        (o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding",
      ) as unknown as IClusterRoleBinding[];
      const granted: Grant[] = [];
      for (const b of bindings) {
        expect(b.subjects).toEqual([
          { kind: "ServiceAccount", name: sa.metadata!.name, namespace: sa.metadata!.namespace },
        ]);
        const r = roles.find(
          (x) => x.kind === b.roleRef.kind && x.metadata.name === b.roleRef.name,
        );
        expect(r, `${b.roleRef.kind} ${b.roleRef.name} is in deploy/k8s/${role}`).toBeDefined();
        for (const rule of (r as unknown as IClusterRole).rules ?? []) {
          expect(rule.nonResourceURLs ?? []).toEqual([]);
          expect(rule.resourceNames ?? []).toEqual([]);
          for (const g of rule.apiGroups ?? [])
            for (const res of rule.resources ?? [])
              for (const v of rule.verbs) granted.push(`${g === "" ? "core" : g}/${res} ${v}`);
        }
      }
      expect(roles).toHaveLength(bindings.length);
      // Each grant once, and nothing a kind of the config does not use.
      expect([...granted].sort()).toEqual(apiNeeds(config(role)));
      expect(granted.filter((g) => g.includes("*"))).toEqual([]);
      // The shipped roles read and patch status; they create, change and delete nothing.
      for (const g of granted) expect(["list", "watch", "patch"]).toContain(g.split(" ")[1]);
    },
  );

  it("egress: no Kubernetes API token in the pod, no RBAC", () => {
    expect(podSpec("egress").automountServiceAccountToken).toBe(false);
    const sa = one<IServiceAccount>(
      "egress",
      "ServiceAccount",
      podSpec("egress").serviceAccountName,
    );
    expect(sa.automountServiceAccountToken).toBe(false);
    const rbac = rendered("egress").filter((o) => o.apiVersion.startsWith("rbac."));
    expect(rbac).toEqual([]);
  });

  it("egress: a ClusterIP Service, 8888 to the uws server on 4140, 3128 to the CONNECT server", () => {
    const s = one<IService>("egress", "Service", "egress");
    expect(s.spec?.type ?? "ClusterIP").toBe("ClusterIP");
    const ports = Object.fromEntries(
      (s.spec?.ports ?? []).map((p) => [p.port, containerPort(container("egress"), p.targetPort!)]),
    );
    expect(ports).toEqual({ 8888: 4140, 3128: 3128 });
  });

  it.each(["edge", "egress"] as const)(
    "%s: the PDB and the HPA act on the Deployment's pods",
    (role) => {
      const d = workload(role) as IDeployment;
      expect(d.kind).toBe("Deployment");
      expect(selects(required(d.spec!.selector), podLabels(role))).toBe(true);
      const pdb = one<IPodDisruptionBudget>(role, "PodDisruptionBudget");
      expect(pdb.spec?.minAvailable).toBe(1);
      expect(selectedRoles(required(pdb.spec!.selector))).toEqual([role]);
      const hpa = one<IHorizontalPodAutoscaler>(role, "HorizontalPodAutoscaler");
      expect(hpa.spec!.scaleTargetRef).toEqual({
        apiVersion: "apps/v1",
        kind: "Deployment",
        name: d.metadata!.name,
      });
      expect(hpa.spec!.minReplicas).toBe(2);
      expect(hpa.spec!.maxReplicas).toBe(10);
      expect(hpa.spec!.metrics).toEqual([
        {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
        },
      ]);
      expect(d.spec?.replicas).toBeGreaterThanOrEqual(hpa.spec!.minReplicas!);
    },
  );

  it("node-proxy: a DaemonSet with hostPorts 4140 and 4141, not on the host network", () => {
    const ds = workload("node-proxy") as IDaemonSet;
    expect(ds.kind).toBe("DaemonSet");
    expect(ds.spec!.template.spec!.hostNetwork).toBe(false);
    const hostPorts = Object.fromEntries(
      (container("node-proxy").ports ?? []).map((p) => [p.name, [p.containerPort, p.hostPort]]),
    );
    expect(hostPorts).toEqual({
      outgoing: [4140, 4140],
      incoming: [4141, 4141],
      admin: [9990, undefined],
    });
  });

  it("node-proxy: Service l5d with ports outgoing 4140 and incoming 4141", () => {
    const s = one<IService>("node-proxy", "Service", "l5d");
    expect(s.metadata?.namespace).toBe(NAMESPACE);
    const ports = (s.spec?.ports ?? []).map((p) => [
      p.name,
      p.port,
      containerPort(container("node-proxy"), p.targetPort!),
    ]);
    expect(ports).toEqual([
      ["outgoing", 4140, 4140],
      ["incoming", 4141, 4141],
    ]);
  });

  it("the daemonset and localnode transformers match the node-proxy DaemonSet and Service", () => {
    const hostNetwork = podSpec("node-proxy").hostNetwork ?? false;
    const daemonsets = [
      ...transformers("edge", "io.l5d.k8s.daemonset"),
      ...transformers("node-proxy", "io.l5d.k8s.daemonset"),
    ];
    expect(daemonsets).toHaveLength(2);
    for (const t of daemonsets) {
      const s = rendered("node-proxy").find(
        (o) =>
          o.kind === "Service" &&
          o.metadata.namespace === t.namespace &&
          o.metadata.name === t.service,
      ) as IService | undefined;
      expect(s, `Service ${t.namespace}/${t.service}`).toBeDefined();
      expect(s!.spec?.ports?.map((p) => p.name)).toContain(t.port);
      expect(t.hostNetwork ?? false).toBe(hostNetwork);
    }
    const localnode = transformers("node-proxy", "io.l5d.k8s.localnode");
    expect(localnode).toHaveLength(1);
    expect(localnode[0]!.hostNetwork ?? false).toBe(hostNetwork);
    // It finds this node's endpoints from POD_IP (NODE_NAME with hostNetwork).
    const env = (container("node-proxy").env ?? []).map((e) => e.name);
    expect(env).toContain(hostNetwork ? "NODE_NAME" : "POD_IP");
  });
});

describe("the configs carried in deploy/k8s", () => {
  it.each(ROLES)("%s/config.yaml passes lintel check", (role) => {
    if (!existsSync(join(ROOT, "dist", "gateway", "cli", "main.js")))
      throw new Error("dist/ is missing: run `npm run -s build` first");
    const r = spawnSync(process.execPath, [BIN, "check", join(K8S, role, "config.yaml")], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, POD_IP: "10.0.0.5", NODE_NAME: "node-a" },
    });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });
});
