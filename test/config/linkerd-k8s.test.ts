// Linkerd 1 configs for Kubernetes load unchanged: the service mesh DaemonSet layout (the
// k8s namer with the daemonset transformer, localnode, rewrite), the ingress identifier
// and the ConfigMap interpreter, keys and `experimental` flags as Linkerd wrote them.

import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadLintelConfig } from "../../gateway/setup.js";

const file = resolve(import.meta.dirname, "../fixtures/linkerd/servicemesh.yaml");
const saved = process.env.POD_IP;
afterEach(() => {
  if (saved === undefined) delete process.env.POD_IP;
  else process.env.POD_IP = saved;
});

describe("Linkerd 1's Kubernetes configs", () => {
  it("load with their kinds, keys and defaults", async () => {
    process.env.POD_IP = "10.2.3.4";
    const r = await loadLintelConfig(file);
    if (!r.ok) throw new Error(r.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
    const [k8s, k8sHttp, rewrite] = r.config.namers;
    expect(k8s!.kind).toBe("io.l5d.k8s");
    expect(k8s!.config).toEqual({ host: "localhost", port: 8001, labelSelector: undefined });
    expect(k8sHttp!.prefix!.show).toBe("/io.l5d.k8s.http");
    const ds = k8sHttp!.transformers![0]!;
    expect(ds.kind).toBe("io.l5d.k8s.daemonset");
    expect(ds.prefix!.show).toBe("/io.l5d.k8s.daemonset/default/http-incoming/l5d");
    expect(ds.config).toMatchObject({
      namespace: "default",
      service: "l5d",
      port: "http-incoming",
      hostNetwork: false,
    });
    expect(rewrite!.kind).toBe("io.l5d.rewrite");
    const [, incoming, ingress, fromConfigMap] = r.config.routers;
    expect(incoming!.interpreter.transformers![0]!.kind).toBe("io.l5d.k8s.localnode");
    expect(ingress!.identifier[0]!.kind).toBe("io.l5d.ingress");
    expect(ingress!.identifier[0]!.config).toMatchObject({
      ingressClassAnnotation: "linkerd",
      claimUnclassed: true,
      ignoreDefaultBackends: false,
    });
    expect(fromConfigMap!.interpreter.kind).toBe("io.l5d.k8s.configMap");
    expect(fromConfigMap!.interpreter.config).toMatchObject({
      namespace: "default",
      name: "dtabs",
      filename: "outgoing",
    });
  });

  it("say what the pod must provide when run outside one", async () => {
    delete process.env.POD_IP;
    const r = await loadLintelConfig(file);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      "routers[1].interpreter.transformers[0]: needs the POD_IP environment variable set to this pod's IP (the downward API's status.podIP)",
    ]);
  });

  it("name Linkerd's Istio kinds as unsupported", async () => {
    const r = await loadLintelConfig(file, {
      text: "namers:\n- kind: io.l5d.k8s.istio\nrouters:\n- protocol: http\n  identifier: {kind: io.l5d.k8s.istio}\n",
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.message)).toEqual([
      'namer kind "io.l5d.k8s.istio" is not supported: Linkerd\'s Istio integration is not supported',
      'identifier kind "io.l5d.k8s.istio" is not supported: Linkerd\'s Istio integration is not supported',
    ]);
  });
});
