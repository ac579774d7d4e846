// Scenario S4, lintel as an Ingress controller, end to end against the API stub (no API
// server can run here; the stub speaks list/watch): routing by Ingress rules to
// /svc/<ns>/<port>/<svc>, re-routing on a change, status written back, certificates from
// Ingress and named Secrets (rotated under load with no failed request), worker
// threads, and in-cluster mode with a service account token over HTTPS.

import { writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { connect, type PeerCertificate } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type KubeApiStub, startKubeApiStub } from "../support/kube-api-stub.js";
import { endpointSlice, ingress, service, tlsSecret } from "../support/kube-objects.js";
import { chainPem, type Issued, TestCa } from "../tls/test-ca.js";
import {
  call,
  cleanup,
  eventually,
  onCleanup,
  startLintel,
  startUpstream,
  tempDir,
  type Upstream,
} from "./harness.js";

afterEach(cleanup);

let root: TestCa;
let shop: Issued;
let shopRenewals: Issued[];
let apiCert: Issued;

beforeAll(async () => {
  root = await TestCa.root();
  shop = await root.leaf({ dns: ["shop.example"] });
  shopRenewals = [];
  for (let i = 0; i < 3; i++) shopRenewals.push(await root.leaf({ dns: ["shop.example"] }));
  apiCert = await root.leaf({ dns: ["kubernetes.default.svc"], ip: ["127.0.0.1"] });
}, 30_000);

async function kubeStub(opts: Parameters<typeof startKubeApiStub>[0] = {}) {
  const s = await startKubeApiStub(opts);
  onCleanup(() => s.close());
  return s;
}

const kubernetesAt = (s: KubeApiStub) =>
  `kubernetes: {mode: proxy, host: 127.0.0.1, port: ${s.port}, initialSyncTimeoutMs: 3000}`;

/** A Service and its one-pod EndpointSlice, the pod being `up` on loopback. */
function backend(s: KubeApiStub, namespace: string, name: string, up: Upstream) {
  s.apply(service({ namespace, name, ports: [{ name: "http", port: 80, targetPort: 8080 }] }));
  s.apply(
    endpointSlice({
      namespace,
      service: name,
      ports: [{ name: "http", port: up.port }],
      endpoints: [{ addresses: ["127.0.0.1"], nodeName: "node-1" }],
    }),
  );
}

function site(cartBackend = "cart", tls = false) {
  return ingress({
    namespace: "shop",
    name: "site",
    className: "lintel",
    rules: [
      {
        host: "shop.example",
        paths: [
          { path: "/cart", pathType: "Prefix", service: cartBackend, port: "http" },
          { path: "/", pathType: "Prefix", service: "web", port: 80 },
        ],
      },
    ],
    ...(tls ? { tls: [{ hosts: ["shop.example"], secretName: "site-tls" }] } : {}),
  });
}

/** The edge of S4: Ingress rules name the services, io.l5d.k8s finds their pods. */
function controllerConfig(
  s: KubeApiStub,
  o: { workers?: number; server?: string; identifier?: string } = {},
) {
  return `
workers: ${o.workers ?? 0}
${kubernetesAt(s)}
admin: {ip: 127.0.0.1, port: 0}
namers:
- kind: io.l5d.k8s
routers:
- protocol: http
  label: edge
  identifier:
    kind: io.l5d.ingress
    ingressClassAnnotation: lintel
    claimUnclassed: false
${o.identifier ?? ""}
  dtab: /svc => /#/io.l5d.k8s;
  servers:
  - {ip: 127.0.0.1, port: 0, clearContext: true${o.server ?? ""}}
`;
}

async function shopBackends(s: KubeApiStub) {
  const cart = await startUpstream("cart");
  const web = await startUpstream("web");
  backend(s, "shop", "cart", cart);
  backend(s, "shop", "web", web);
  return { cart, web };
}

const upstreamOf = async (port: number, path: string, host = "shop.example") =>
  (await call(port, { path, headers: { host } })).headers["x-upstream"];

describe("io.l5d.ingress as the edge's identifier", () => {
  it("routes by host and path, re-routes when the Ingress changes, and publishes its address", async () => {
    const s = await kubeStub();
    await shopBackends(s);
    s.apply(site());
    // Another controller's Ingress for the same host is not ours.
    s.apply(
      ingress({
        namespace: "shop",
        name: "theirs",
        className: "nginx",
        rules: [
          {
            host: "shop.example",
            paths: [{ path: "/cart/x", pathType: "Exact", service: "web", port: 80 }],
          },
        ],
      }),
    );
    const l = await startLintel(
      controllerConfig(s, { identifier: "    publishAddresses: [203.0.113.7]" }),
    );
    const port = l.port();
    expect(await upstreamOf(port, "/cart/x")).toBe("cart");
    expect(await upstreamOf(port, "/products")).toBe("web");
    const seen = await call(port, { path: "/cart", headers: { host: "SHOP.example:443" } });
    expect(seen.headers["x-upstream"]).toBe("cart");
    expect(JSON.parse(seen.text).headers["l5d-dst-service"]).toBe("/svc/shop/http/cart");
    const unknown = await call(port, { path: "/", headers: { host: "other.example" } });
    expect(unknown.status).toBe(400);
    expect(decodeURIComponent(String(unknown.headers["l5d-err"]))).toContain("other.example");

    s.apply(site("web"));
    await eventually(
      async () => (await upstreamOf(port, "/cart/x")) === "web",
      5000,
      "the change to route",
    );
    await eventually(
      () => {
        const st = s.get("Ingress", "shop", "site") as { status?: { loadBalancer?: unknown } };
        return (
          JSON.stringify(st.status?.loadBalancer) ===
          JSON.stringify({ ingress: [{ ip: "203.0.113.7" }] })
        );
      },
      5000,
      "the Ingress status to be written",
    );
    expect(s.get("Ingress", "shop", "theirs")!.status).toEqual({ loadBalancer: {} });
    s.remove("Ingress", "shop", "site");
    await eventually(
      async () =>
        (await call(port, { path: "/products", headers: { host: "shop.example" } })).status === 400,
      5000,
      "the deleted Ingress to stop routing",
    );
  });

  it("routes on worker threads from the control thread's watch", async () => {
    const s = await kubeStub();
    await shopBackends(s);
    s.apply(site());
    const l = await startLintel(controllerConfig(s, { workers: 1, server: ", engine: uws" }));
    expect(l.runtime.pool).toBeDefined();
    const port = l.port();
    expect(await upstreamOf(port, "/cart/1")).toBe("cart");
    s.apply(site("web"));
    await eventually(
      async () => (await upstreamOf(port, "/cart/1")) === "web",
      5000,
      "workers to re-route",
    );
    // The worker opened no API connection of its own: one list of Ingresses in all.
    const ingressLists = s.requests.filter(
      (r) => r.path === "/apis/networking.k8s.io/v1/ingresses" && !r.query.has("watch"),
    );
    expect(ingressLists).toHaveLength(1);
  });
});

/** A TLS handshake: what the server presented for `servername`. */
function presented(port: number, servername: string | undefined): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const sock = connect({
      host: "127.0.0.1",
      port,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: false,
    });
    sock.setTimeout(5000, () => sock.destroy(new Error("handshake timed out")));
    sock.on("secureConnect", () => {
      resolve(sock.getPeerCertificate());
      sock.end();
    });
    sock.on("error", reject);
  });
}

/** An HTTPS request for shop.example, verified against the test root, on a new connection. */
function httpsGet(
  port: number,
  path = "/",
): Promise<{ status: number; serial: string; upstream: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        servername: "shop.example",
        headers: { host: "shop.example" },
        ca: root.certPem,
        agent: false,
      },
      (res) => {
        const serial = (res.socket as import("node:tls").TLSSocket).getPeerCertificate()
          .serialNumber;
        res.resume();
        res.on("end", () =>
          resolve({ status: res.statusCode!, serial, upstream: String(res.headers["x-upstream"]) }),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

const secretOf = (c: Issued, name = "site-tls") =>
  tlsSecret({ namespace: "shop", name, cert: chainPem(c), key: c.keyPem() });

describe("certificates from Kubernetes Secrets", () => {
  it("serves the Ingress's Secret by SNI, a generated default otherwise, and rotates it under load", async () => {
    const s = await kubeStub();
    await shopBackends(s);
    s.apply(site("cart", true));
    s.apply(secretOf(shop));
    const l = await startLintel(
      controllerConfig(s, { server: ", tls: {certs: [{ingressSecrets: {}}]}" }),
    );
    const port = l.port();
    expect((await presented(port, "shop.example")).serialNumber).toBe(shop.serial);
    const fallback = await presented(port, "nobody.example");
    expect(fallback.subjectaltname).toBe("DNS:lintel-default.invalid");
    expect((await presented(port, undefined)).subjectaltname).toBe("DNS:lintel-default.invalid");

    let stopped = false;
    const failures: string[] = [];
    const serials = new Set<string>();
    let ok = 0;
    const worker = async () => {
      while (!stopped) {
        try {
          const r = await httpsGet(port, "/cart");
          if (r.status === 200 && r.upstream === "cart") ok++;
          else failures.push(`status ${r.status} from ${r.upstream}`);
          serials.add(r.serial);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 3 }, worker);
    for (const c of shopRenewals) {
      await new Promise((r) => setTimeout(r, 300));
      s.apply(secretOf(c));
    }
    const last = shopRenewals.at(-1)!;
    await eventually(
      async () => (await presented(port, "shop.example")).serialNumber === last.serial,
      5000,
      "the last renewal to be served",
    );
    await new Promise((r) => setTimeout(r, 200));
    stopped = true;
    await Promise.all(workers);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect(serials.size).toBeGreaterThan(2);
  });

  it("keeps the last good certificate when a Secret goes bad, and names the Secret", async () => {
    const s = await kubeStub();
    await shopBackends(s);
    s.apply(site("cart", true));
    s.apply(secretOf(shop));
    const l = await startLintel(
      controllerConfig(s, {
        server: ", tls: {certs: [{secret: shop/site-tls}, {ingressSecrets: {}}]}",
      }),
    );
    const port = l.port();
    const other = await root.leaf({ dns: ["other.example"] });
    s.apply(
      tlsSecret({ namespace: "shop", name: "site-tls", cert: chainPem(shop), key: other.keyPem() }),
    );
    await eventually(
      () =>
        l.logs.some(
          (x) => x.includes("certificate reload failed") && x.includes("Secret shop/site-tls"),
        ),
      5000,
      "the bad Secret to be reported",
    );
    expect((await presented(port, "shop.example")).serialNumber).toBe(shop.serial);
    expect((await httpsGet(port, "/cart")).status).toBe(200);
  });

  it("adds and removes certificates as Ingresses name Secrets and stop naming them", async () => {
    const s = await kubeStub();
    await shopBackends(s);
    s.apply(site("cart", false));
    s.apply(secretOf(shop));
    const l = await startLintel(
      controllerConfig(s, { server: ", tls: {certs: [{ingressSecrets: {}}]}" }),
    );
    const port = l.port();
    const generated = "DNS:lintel-default.invalid";
    expect((await presented(port, "shop.example")).subjectaltname).toBe(generated);
    s.apply(site("cart", true));
    await eventually(
      async () => (await presented(port, "shop.example")).serialNumber === shop.serial,
      5000,
      "the Secret the Ingress now names to be served",
    );
    s.apply(site("cart", false));
    await eventually(
      async () => (await presented(port, "shop.example")).subjectaltname === generated,
      5000,
      "the certificate to be removed",
    );
    expect(
      l.logs.some((x) => x.includes("certificate removed") && x.includes("Secret shop/site-tls")),
    ).toBe(true);
  });

  it("does not start when a Secret named in the config is missing", async () => {
    const s = await kubeStub();
    await expect(
      startLintel(controllerConfig(s, { server: ", tls: {certs: [{secret: shop/nope}]}" })),
    ).rejects.toThrow("routers[0].servers[0]): TLS: Secret shop/nope: the Secret does not exist");
  });
});

describe("in-cluster mode", () => {
  it("reaches the API over HTTPS with the service account token, and follows its rotation", async () => {
    const s = await kubeStub({
      token: "token-1",
      tls: { cert: chainPem(apiCert), key: apiCert.keyPem() },
    });
    await shopBackends(s);
    s.apply(site());
    const sa = tempDir();
    writeFileSync(join(sa, "token"), "token-1");
    writeFileSync(join(sa, "ca.crt"), root.certPem);
    const saved = {
      host: process.env.KUBERNETES_SERVICE_HOST,
      port: process.env.KUBERNETES_SERVICE_PORT,
    };
    process.env.KUBERNETES_SERVICE_HOST = "127.0.0.1";
    process.env.KUBERNETES_SERVICE_PORT = String(s.port);
    onCleanup(() => {
      for (const [k, v] of [
        ["KUBERNETES_SERVICE_HOST", saved.host],
        ["KUBERNETES_SERVICE_PORT", saved.port],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    const l = await startLintel(
      controllerConfig(s).replace(
        /^kubernetes: .*$/m,
        `kubernetes: {mode: inCluster, tokenFile: ${join(sa, "token")}, caFile: ${join(sa, "ca.crt")}, initialSyncTimeoutMs: 3000}`,
      ),
    );
    const port = l.port();
    expect(await upstreamOf(port, "/cart")).toBe("cart");
    expect(s.requests.every((r) => r.headers.authorization === "Bearer token-1")).toBe(true);
    // The kubelet rotates the token; the API stops accepting the old one.
    writeFileSync(join(sa, "token"), "token-2");
    s.setToken("token-2");
    s.dropWatches();
    s.apply(site("web"));
    await eventually(
      async () => (await upstreamOf(port, "/cart")) === "web",
      8000,
      "the change after the rotation",
    );
    expect(s.requests.at(-1)!.headers.authorization).toBe("Bearer token-2");
  });
});
