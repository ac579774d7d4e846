// Tests of the Kubernetes API stub itself, through plain node:http requests: lists and
// selectors, chunked lists, watches (replay, live, bookmarks, expiry), writes and their
// Status errors, authentication and the fault knobs.

import {
  type ClientRequest,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from "node:http";
import { request as httpsRequest } from "node:https";
import { afterEach, describe, expect, it } from "vitest";
import {
  type KubeApiStub,
  type KubeApiStubOptions,
  startKubeApiStub,
  type WatchEvent,
} from "../support/kube-api-stub.js";
import {
  configMap,
  endpointSlice,
  ingress,
  ingressClass,
  type KubeObject,
  node,
  opaqueSecret,
  pod,
  service,
  tlsSecret,
} from "../support/kube-objects.js";
import { TestCa } from "../tls/test-ca.js";

const stubs: KubeApiStub[] = [];
const clients: ClientRequest[] = [];

afterEach(async () => {
  for (const req of clients.splice(0)) req.destroy();
  await Promise.all(stubs.splice(0).map((s) => s.close()));
});

async function startStub(opts?: KubeApiStubOptions): Promise<KubeApiStub> {
  const stub = await startKubeApiStub(opts);
  stubs.push(stub);
  return stub;
}

interface CallOptions {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly token?: string;
  /** For an HTTPS stub: the CA to trust and the name to check its certificate for. */
  readonly ca?: string;
  readonly servername?: string;
}

interface Reply<T> {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: T;
}

interface ListBody {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: KubeObject[];
}

interface StatusBody {
  kind: string;
  apiVersion: string;
  metadata: { continue?: string };
  status: string;
  message: string;
  reason: string;
  details?: Record<string, unknown>;
  code: number;
}

/** One request on its own connection (no agent), so a reset or a closed stub is seen as is. */
function open(
  stub: KubeApiStub,
  method: string,
  path: string,
  opts: CallOptions,
  onResponse: (res: IncomingMessage) => void,
): ClientRequest {
  const headers: Record<string, string> = { "user-agent": "stub-test/1.0" };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
  const target = { host: "127.0.0.1", port: stub.port, method, path, headers, agent: false };
  const req = stub.url.startsWith("https:")
    ? httpsRequest({ ...target, ca: opts.ca, servername: opts.servername }, onResponse)
    : httpRequest(target, onResponse);
  clients.push(req);
  req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body));
  return req;
}

function call<T = KubeObject>(
  stub: KubeApiStub,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<Reply<T>> {
  return new Promise((resolve, reject) => {
    const req = open(stub, method, path, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) as T });
      });
    });
    req.on("error", reject);
  });
}

/** Polls `condition` until it holds, or fails after `ms`. */
async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A watch response read as newline-delimited events. */
class WatchStream {
  readonly events: WatchEvent[] = [];
  /** "end" when the server ended the stream cleanly, "aborted" when the connection broke. */
  readonly ended: Promise<"end" | "aborted">;
  private finished = false;

  constructor(
    readonly status: number,
    res: IncomingMessage,
  ) {
    let pending = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop()!;
      for (const line of lines) this.events.push(JSON.parse(line) as WatchEvent);
    });
    res.on("error", () => {}); // a broken stream is reported through `ended`
    this.ended = new Promise((resolve) =>
      res.on("close", () => {
        this.finished = true;
        resolve(res.complete ? "end" : "aborted");
      }),
    );
  }

  /** Waits for at least `n` events; returns the first `n`. */
  async take(n: number): Promise<WatchEvent[]> {
    await until(() => this.events.length >= n || this.finished);
    expect(this.events.length).toBeGreaterThanOrEqual(n);
    return this.events.slice(0, n);
  }
}

function watch(stub: KubeApiStub, path: string, opts: CallOptions = {}): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const req = open(stub, "GET", path, opts, (res) =>
      resolve(new WatchStream(res.statusCode!, res)),
    );
    req.on("error", reject);
  });
}

const names = (objects: readonly { metadata: { name: string } }[]) =>
  objects.map((o) => o.metadata.name);
const keys = (objects: readonly KubeObject[]) =>
  objects.map((o) => `${o.metadata.namespace}/${o.metadata.name}`);
const summary = (events: readonly WatchEvent[]) =>
  events.map((e) => `${e.type} ${(e.object as KubeObject).metadata.name}`);
const versionOf = (e: WatchEvent) => Number((e.object as KubeObject).metadata.resourceVersion);

const svc = (namespace: string, name: string, labels?: Record<string, string>) =>
  service({ namespace, name, ports: [{ name: "http", port: 80, targetPort: 8080 }], labels });

describe("lists", () => {
  it("answers a <Kind>List at the current resourceVersion, items in key order without type meta", async () => {
    const stub = await startStub();
    for (const [ns, name] of [
      ["b", "web"],
      ["a", "web"],
      ["a", "api"],
      ["other", "x"],
    ])
      stub.apply(svc(ns!, name!));
    stub.apply(ingressClass({ name: "lintel", controller: "example.com/lintel" }));

    const inA = await call<ListBody>(stub, "GET", "/api/v1/namespaces/a/services");
    expect(inA.status).toBe(200);
    expect(inA.headers["content-type"]).toBe("application/json");
    expect(inA.body.kind).toBe("ServiceList");
    expect(inA.body.apiVersion).toBe("v1");
    expect(inA.body.metadata).toEqual({ resourceVersion: stub.resourceVersion });
    expect(names(inA.body.items)).toEqual(["api", "web"]);
    const item = inA.body.items[0]!;
    expect(item.apiVersion).toBeUndefined();
    expect(item.kind).toBeUndefined();
    expect(item.metadata).toMatchObject({ name: "api", namespace: "a" });
    expect(item.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(item.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(item.metadata.generation).toBeUndefined(); // Services keep none
    expect(item.metadata.managedFields?.[0]).toMatchObject({
      manager: "kubectl-client-side-apply",
      operation: "Update",
      apiVersion: "v1",
      fieldsType: "FieldsV1",
    });

    const all = await call<ListBody>(stub, "GET", "/api/v1/services");
    expect(keys(all.body.items)).toEqual(["a/api", "a/web", "b/web", "other/x"]);
    // Each object's resourceVersion is that of its last write.
    const versions = all.body.items.map((o) => Number(o.metadata.resourceVersion));
    expect(new Set(versions).size).toBe(4);

    const classes = await call<ListBody>(stub, "GET", "/apis/networking.k8s.io/v1/ingressclasses");
    expect(classes.body.kind).toBe("IngressClassList");
    expect(classes.body.apiVersion).toBe("networking.k8s.io/v1");
    expect(names(classes.body.items)).toEqual(["lintel"]);
    expect(classes.body.items[0]!.metadata.generation).toBe(1);
  });

  it("filters by label selector: equality, sets, existence, AND", async () => {
    const stub = await startStub();
    stub.apply(
      configMap({ namespace: "ns", name: "web", data: {}, labels: { app: "web", tier: "front" } }),
    );
    stub.apply(
      configMap({ namespace: "ns", name: "api", data: {}, labels: { app: "api", tier: "back" } }),
    );
    stub.apply(configMap({ namespace: "ns", name: "db", data: {}, labels: { app: "db" } }));
    stub.apply(configMap({ namespace: "ns", name: "bare", data: {} }));
    const cases: [string, string[]][] = [
      ["", ["api", "bare", "db", "web"]],
      ["app=web", ["web"]],
      ["app==web", ["web"]],
      ["app!=web", ["api", "bare", "db"]],
      ["app in (web,api)", ["api", "web"]],
      ["app notin (web)", ["api", "bare", "db"]],
      ["tier", ["api", "web"]],
      ["!tier", ["bare", "db"]],
      ["app!=db,tier", ["api", "web"]],
      ["app in (web, api), tier=front", ["web"]],
    ];
    for (const [selector, expected] of cases) {
      const q = new URLSearchParams({ labelSelector: selector });
      const r = await call<ListBody>(stub, "GET", `/api/v1/namespaces/ns/configmaps?${q}`);
      expect(names(r.body.items), selector).toEqual(expected);
    }
    const bad = await call<StatusBody>(
      stub,
      "GET",
      "/api/v1/configmaps?labelSelector=app%20in%20web",
    );
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ kind: "Status", reason: "BadRequest", code: 400 });
  });

  it("filters by field selector: metadata.name, metadata.namespace, a Secret's type, !=", async () => {
    const stub = await startStub();
    stub.apply(tlsSecret({ namespace: "a", name: "cert", cert: "C", key: "K" }));
    stub.apply(opaqueSecret({ namespace: "a", name: "token", data: { token: "t" } }));
    stub.apply(tlsSecret({ namespace: "b", name: "cert", cert: "C", key: "K" }));
    const list = async (selector: string) => {
      const q = new URLSearchParams({ fieldSelector: selector });
      return keys((await call<ListBody>(stub, "GET", `/api/v1/secrets?${q}`)).body.items);
    };
    expect(await list("type=kubernetes.io/tls")).toEqual(["a/cert", "b/cert"]);
    expect(await list("metadata.name=token")).toEqual(["a/token"]);
    expect(await list("metadata.namespace!=a")).toEqual(["b/cert"]);
    expect(await list("type==kubernetes.io/tls,metadata.namespace=a")).toEqual(["a/cert"]);
    const bad = await call<StatusBody>(stub, "GET", "/api/v1/secrets?fieldSelector=spec.foo%3Dx");
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe("field label not supported: spec.foo");
  });

  it("serves chunks of a snapshot with limit/continue, every item once", async () => {
    const stub = await startStub();
    for (const name of ["c1", "c2", "c3"])
      stub.apply(configMap({ namespace: "x", name, data: {} }));
    for (const name of ["c4", "c5"]) stub.apply(configMap({ namespace: "y", name, data: {} }));
    const snapshot = stub.resourceVersion;

    const first = await call<ListBody>(stub, "GET", "/api/v1/configmaps?limit=2");
    expect(keys(first.body.items)).toEqual(["x/c1", "x/c2"]);
    expect(first.body.metadata).toMatchObject({ resourceVersion: snapshot, remainingItemCount: 3 });
    // Writes after the first chunk are not seen by the rest of the list.
    stub.apply(configMap({ namespace: "x", name: "c2b", data: {} }));
    stub.remove("ConfigMap", "y", "c5");

    const seen = [...keys(first.body.items)];
    let token = first.body.metadata.continue;
    while (token) {
      const q = new URLSearchParams({ limit: "2", continue: token });
      const page = await call<ListBody>(stub, "GET", `/api/v1/configmaps?${q}`);
      expect(page.status).toBe(200);
      expect(page.body.metadata.resourceVersion).toBe(snapshot);
      seen.push(...keys(page.body.items));
      token = page.body.metadata.continue;
    }
    expect(seen).toEqual(["x/c1", "x/c2", "x/c3", "y/c4", "y/c5"]);

    // No count of what is left when a selector hides part of it.
    const selected = await call<ListBody>(
      stub,
      "GET",
      "/api/v1/configmaps?limit=1&fieldSelector=metadata.namespace%3Dx",
    );
    expect(selected.body.metadata.continue).toBeDefined();
    expect(selected.body.metadata.remainingItemCount).toBeUndefined();
  });

  it("answers 410 Expired to a continue token older than the compacted history", async () => {
    const stub = await startStub();
    for (const name of ["a", "b", "c"]) stub.apply(configMap({ namespace: "x", name, data: {} }));
    const first = await call<ListBody>(stub, "GET", "/api/v1/namespaces/x/configmaps?limit=1");
    stub.apply(configMap({ namespace: "x", name: "d", data: {} }));
    stub.compact();

    const q = new URLSearchParams({ limit: "1", continue: first.body.metadata.continue! });
    const expired = await call<StatusBody>(stub, "GET", `/api/v1/namespaces/x/configmaps?${q}`);
    expect(expired.status).toBe(410);
    expect(expired.body).toMatchObject({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "Expired",
      code: 410,
    });
    expect(expired.body.message).toMatch(/^The provided continue parameter is too old/);

    // As the real API, the error carries a token to go on from the latest state.
    const q2 = new URLSearchParams({ continue: expired.body.metadata.continue! });
    const rest = await call<ListBody>(stub, "GET", `/api/v1/namespaces/x/configmaps?${q2}`);
    expect(rest.status).toBe(200);
    expect(names(rest.body.items)).toEqual(["b", "c", "d"]);
    expect(rest.body.metadata.resourceVersion).toBe(stub.resourceVersion);
  });

  it("answers 404 Status for a missing object and an unknown path", async () => {
    const stub = await startStub();
    const missing = await call<StatusBody>(stub, "GET", "/api/v1/namespaces/ns/services/nope");
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'services "nope" not found',
      reason: "NotFound",
      details: { name: "nope", kind: "services" },
      code: 404,
    });
    const grouped = await call<StatusBody>(
      stub,
      "GET",
      "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/nope",
    );
    expect(grouped.body.message).toBe('ingresses.networking.k8s.io "nope" not found');
    expect(grouped.body.details).toEqual({
      name: "nope",
      group: "networking.k8s.io",
      kind: "ingresses",
    });
    for (const path of [
      "/api/v1/widgets",
      "/apis/networking.k8s.io/v1/services",
      "/api/v1/namespaces/a/nodes",
      "/healthz",
    ]) {
      const r = await call<StatusBody>(stub, "GET", path);
      expect(r.status, path).toBe(404);
      expect(r.body).toMatchObject({ kind: "Status", reason: "NotFound", code: 404 });
    }
  });
});

describe("watches", () => {
  it("replays the history after resourceVersion, then streams live events in order", async () => {
    const stub = await startStub();
    stub.apply(svc("ns", "before"));
    const from = stub.resourceVersion;
    stub.apply(svc("ns", "a"));
    stub.apply(svc("ns", "a", { changed: "yes" }));
    stub.apply(svc("ns", "b"));
    stub.remove("Service", "ns", "a");

    const w = await watch(stub, `/api/v1/namespaces/ns/services?watch=1&resourceVersion=${from}`);
    expect(w.status).toBe(200);
    await w.take(4);
    stub.apply(svc("ns", "c"));
    stub.apply(svc("elsewhere", "d"));
    const events = await w.take(5);
    expect(summary(events)).toEqual(["ADDED a", "MODIFIED a", "ADDED b", "DELETED a", "ADDED c"]);
    const versions = events.map(versionOf);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(versions[0]).toBe(Number(from) + 1);
    // Event objects carry type meta; a DELETED one has the deletion's version.
    expect(events[0]!.object).toMatchObject({ apiVersion: "v1", kind: "Service" });
    expect(versions[3]).toBe(versions[2]! + 1);
    expect((events[3]!.object as KubeObject).metadata.labels).toEqual({ changed: "yes" });
    await new Promise((r) => setTimeout(r, 30));
    expect(w.events).toHaveLength(5); // nothing from the other namespace
  });

  it("without resourceVersion (or 0) sends ADDED for what exists, then live events", async () => {
    const stub = await startStub();
    stub.apply(svc("ns", "b"));
    stub.apply(svc("ns", "a"));
    for (const query of ["watch=true", "watch=1&resourceVersion=0"]) {
      const w = await watch(stub, `/api/v1/services?${query}`);
      expect(summary(await w.take(2))).toEqual(["ADDED a", "ADDED b"]);
    }
    const w = await watch(stub, "/api/v1/services?watch=true");
    await w.take(2);
    stub.apply(svc("ns", "a", { v: "2" }));
    expect(summary(await w.take(3))[2]).toBe("MODIFIED a");
    expect(stub.watchCount()).toBe(3);
  });

  it("sends DELETED when an object stops matching the label selector and ADDED when it matches again", async () => {
    const stub = await startStub();
    const w = await watch(stub, "/api/v1/namespaces/ns/configmaps?watch=1&labelSelector=app%3Dweb");
    stub.apply(configMap({ namespace: "ns", name: "m", data: {}, labels: { app: "web" } }));
    stub.apply(configMap({ namespace: "ns", name: "m", data: {}, labels: { app: "db" } }));
    stub.apply(configMap({ namespace: "ns", name: "m", data: { k: "v" }, labels: { app: "db" } }));
    stub.apply(configMap({ namespace: "ns", name: "m", data: {}, labels: { app: "web" } }));
    const events = await w.take(3);
    expect(summary(events)).toEqual(["ADDED m", "DELETED m", "ADDED m"]);
    // The DELETED object is the last matching content, at the version of the change.
    const gone = events[1]!.object as KubeObject;
    expect(gone.metadata.labels).toEqual({ app: "web" });
    expect(versionOf(events[1]!)).toBe(versionOf(events[0]!) + 1);
    await new Promise((r) => setTimeout(r, 30));
    expect(w.events).toHaveLength(3);
  });

  it("sends bookmarks at the interval only to watches that allow them", async () => {
    const stub = await startStub({ bookmarkIntervalMs: 20 });
    stub.apply(svc("ns", "a"));
    const plain = await watch(stub, "/api/v1/services?watch=1&resourceVersion=1");
    const w = await watch(
      stub,
      "/api/v1/services?watch=1&allowWatchBookmarks=true&resourceVersion=1",
    );
    const [added, bookmark] = await w.take(2);
    expect(added!.type).toBe("ADDED");
    expect(bookmark).toEqual({
      type: "BOOKMARK",
      object: {
        kind: "Service",
        apiVersion: "v1",
        metadata: { resourceVersion: stub.resourceVersion },
      },
    });
    await w.take(3);
    expect(plain.events.map((e) => e.type)).toEqual(["ADDED"]);
  });

  it("streams a list (sendInitialEvents) ending in an initial-events-end bookmark", async () => {
    const stub = await startStub();
    stub.apply(svc("ns", "a"));
    const w = await watch(
      stub,
      "/api/v1/services?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
    );
    const [added, end] = await w.take(2);
    expect(added!.type).toBe("ADDED");
    expect(end).toEqual({
      type: "BOOKMARK",
      object: {
        kind: "Service",
        apiVersion: "v1",
        metadata: {
          resourceVersion: stub.resourceVersion,
          annotations: { "k8s.io/initial-events-end": "true" },
        },
      },
    });
  });

  it("ends the stream cleanly after timeoutSeconds", async () => {
    const stub = await startStub();
    const started = Date.now();
    const w = await watch(stub, "/api/v1/pods?watch=1&timeoutSeconds=0.15");
    expect(await w.ended).toBe("end");
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(stub.watchCount()).toBe(0);
  });

  it("answers a watch from a compacted resourceVersion with one ERROR 410 event", async () => {
    const stub = await startStub();
    stub.apply(svc("ns", "a"));
    const old = stub.resourceVersion;
    stub.apply(svc("ns", "b"));
    stub.compact();
    const w = await watch(stub, `/api/v1/services?watch=1&resourceVersion=${old}`);
    expect(w.status).toBe(200);
    expect(await w.ended).toBe("end");
    expect(w.events).toEqual([
      {
        type: "ERROR",
        object: {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Failure",
          message: `too old resource version: ${old} (${stub.resourceVersion})`,
          reason: "Expired",
          code: 410,
        },
      },
    ]);
    // The version the history was compacted at is still a fine place to start.
    const current = await watch(
      stub,
      `/api/v1/services?watch=1&resourceVersion=${stub.resourceVersion}`,
    );
    stub.apply(svc("ns", "c"));
    expect(summary(await current.take(1))).toEqual(["ADDED c"]);
  });

  it("dropWatches breaks streams mid-way; closeWatches ends them cleanly", async () => {
    const stub = await startStub();
    const dropped = await watch(stub, "/api/v1/services?watch=1");
    await until(() => stub.watchCount() === 1);
    stub.dropWatches();
    expect(await dropped.ended).toBe("aborted");
    const closed = await watch(stub, "/api/v1/services?watch=1");
    await until(() => stub.watchCount() === 1);
    stub.closeWatches();
    expect(await closed.ended).toBe("end");
    expect(stub.watchCount()).toBe(0);
  });
});

describe("writes", () => {
  it("merge-patches /status: only the status changes, with a MODIFIED event", async () => {
    const stub = await startStub();
    const created = stub.apply(
      ingress({
        namespace: "ns",
        name: "web",
        className: "lintel",
        rules: [
          { host: "a.test", paths: [{ path: "/", pathType: "Prefix", service: "web", port: 80 }] },
        ],
      }),
    );
    const w = await watch(
      stub,
      `/apis/networking.k8s.io/v1/ingresses?watch=1&resourceVersion=${created.metadata.resourceVersion}`,
    );
    const path =
      "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/web/status?fieldManager=lintel";
    const patched = await call(stub, "PATCH", path, {
      contentType: "application/merge-patch+json",
      body: {
        spec: { ingressClassName: "other" },
        status: { loadBalancer: { ingress: [{ ip: "192.0.2.1" }] } },
      },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.spec).toEqual(created.spec);
    expect(patched.body.status).toEqual({ loadBalancer: { ingress: [{ ip: "192.0.2.1" }] } });
    expect(patched.body.metadata.generation).toBe(1);
    expect(Number(patched.body.metadata.resourceVersion)).toBe(
      Number(created.metadata.resourceVersion) + 1,
    );
    expect(patched.body.metadata.managedFields?.at(-1)).toMatchObject({
      manager: "lintel",
      subresource: "status",
      fieldsV1: { "f:status": { "f:loadBalancer": { ".": {}, "f:ingress": {} } } },
    });
    const [event] = await w.take(1);
    expect(event!.type).toBe("MODIFIED");
    expect(event!.object).toEqual(patched.body);

    // The same patch again changes nothing: no new version, no event.
    const again = await call(stub, "PATCH", path, {
      contentType: "application/merge-patch+json",
      body: { status: { loadBalancer: { ingress: [{ ip: "192.0.2.1" }] } } },
    });
    expect(again.body.metadata.resourceVersion).toBe(patched.body.metadata.resourceVersion);

    // A patch of the object leaves status alone; a spec change bumps the generation.
    const objectPath = "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/web";
    const spec = await call(stub, "PATCH", objectPath, {
      contentType: "application/strategic-merge-patch+json",
      body: { metadata: { labels: { x: "y" } }, spec: { ingressClassName: "other" }, status: null },
    });
    expect(spec.status).toBe(200);
    expect(spec.body.metadata.labels).toEqual({ x: "y" });
    expect(spec.body.spec).toMatchObject({ ingressClassName: "other" });
    expect(spec.body.status).toEqual(patched.body.status);
    expect(spec.body.metadata.generation).toBe(2);
    expect(summary(await w.take(2))).toEqual(["MODIFIED web", "MODIFIED web"]);
    expect(w.events).toHaveLength(2);

    const jsonPatch = await call<StatusBody>(stub, "PATCH", objectPath, {
      contentType: "application/json-patch+json",
      body: [],
    });
    expect(jsonPatch.status).toBe(415);
    expect(jsonPatch.body.reason).toBe("UnsupportedMediaType");
  });

  it("creates with POST, replaces with PUT under optimistic concurrency, deletes", async () => {
    const stub = await startStub();
    const w = await watch(stub, "/api/v1/namespaces/ns/configmaps?watch=1");
    const collection = "/api/v1/namespaces/ns/configmaps";
    const posted = await call(stub, "POST", collection, {
      body: { metadata: { name: "cfg" }, data: { a: "1" } },
    });
    expect(posted.status).toBe(201);
    expect(posted.body).toMatchObject({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cfg", namespace: "ns" },
      data: { a: "1" },
    });
    expect(posted.body.metadata.managedFields?.[0]?.manager).toBe("stub-test");

    const again = await call<StatusBody>(stub, "POST", collection, {
      body: { metadata: { name: "cfg" } },
    });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      reason: "AlreadyExists",
      message: 'configmaps "cfg" already exists',
      code: 409,
    });

    const stale = posted.body.metadata.resourceVersion;
    const put = await call(stub, "PUT", `${collection}/cfg`, {
      body: { ...posted.body, data: { a: "2" } },
    });
    expect(put.status).toBe(200);
    expect(put.body.data).toEqual({ a: "2" });
    expect(put.body.metadata.uid).toBe(posted.body.metadata.uid);
    expect(put.body.metadata.creationTimestamp).toBe(posted.body.metadata.creationTimestamp);

    const conflict = await call<StatusBody>(stub, "PUT", `${collection}/cfg`, {
      body: {
        ...posted.body,
        metadata: { ...posted.body.metadata, resourceVersion: stale },
        data: { a: "3" },
      },
    });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; please apply your changes to the latest version and try again',
      reason: "Conflict",
      details: { name: "cfg", kind: "configmaps" },
      code: 409,
    });
    expect(stub.get("ConfigMap", "ns", "cfg")?.data).toEqual({ a: "2" });

    const deleted = await call<StatusBody>(stub, "DELETE", `${collection}/cfg`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({
      kind: "Status",
      status: "Success",
      details: { name: "cfg", kind: "configmaps" },
    });
    const events = await w.take(3);
    expect(summary(events)).toEqual(["ADDED cfg", "MODIFIED cfg", "DELETED cfg"]);
    expect(versionOf(events[2]!)).toBe(Number(stub.resourceVersion));
    expect(stub.get("ConfigMap", "ns", "cfg")).toBeUndefined();
  });
});

describe("authentication and faults", () => {
  it("requires the bearer token, and the rotated one once set", async () => {
    const stub = await startStub({ token: "first" });
    const anonymous = await call<StatusBody>(stub, "GET", "/api/v1/nodes");
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "Unauthorized",
      reason: "Unauthorized",
      code: 401,
    });
    expect((await call(stub, "GET", "/api/v1/nodes", { token: "first" })).status).toBe(200);
    stub.setToken("second");
    expect((await call(stub, "GET", "/api/v1/nodes", { token: "first" })).status).toBe(401);
    expect((await call(stub, "GET", "/api/v1/nodes", { token: "second" })).status).toBe(200);
    expect(stub.requests.map((r) => r.headers.authorization)).toEqual([
      undefined,
      "Bearer first",
      "Bearer first",
      "Bearer second",
    ]);
    expect(stub.requests[0]).toMatchObject({ method: "GET", path: "/api/v1/nodes" });
  });

  it("down() resets open and new connections until up()", async () => {
    const stub = await startStub();
    const w = await watch(stub, "/api/v1/services?watch=1");
    await until(() => stub.watchCount() === 1);
    stub.down();
    expect(await w.ended).toBe("aborted");
    expect(stub.watchCount()).toBe(0);
    await expect(call(stub, "GET", "/api/v1/services")).rejects.toMatchObject({
      code: "ECONNRESET",
    });
    stub.up();
    expect((await call(stub, "GET", "/api/v1/services")).status).toBe(200);
  });

  it("unavailable() answers 503 ServiceUnavailable until up()", async () => {
    const stub = await startStub();
    stub.unavailable();
    const r = await call<StatusBody>(stub, "GET", "/api/v1/services");
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({
      kind: "Status",
      status: "Failure",
      reason: "ServiceUnavailable",
      code: 503,
    });
    stub.up();
    expect((await call(stub, "GET", "/api/v1/services")).status).toBe(200);
  });

  it("setLatency delays responses", async () => {
    const stub = await startStub();
    stub.setLatency(120);
    let started = Date.now();
    await call(stub, "GET", "/api/v1/services");
    expect(Date.now() - started).toBeGreaterThanOrEqual(115);
    started = Date.now();
    const w = await watch(stub, "/api/v1/services?watch=1");
    expect(Date.now() - started).toBeGreaterThanOrEqual(115);
    expect(w.status).toBe(200);
    stub.setLatency(0);
  });

  it("serves HTTPS with the given certificate", async () => {
    const ca = await TestCa.root("Kube Test CA");
    const leaf = await ca.leaf({ dns: ["kubernetes.default.svc"] });
    const stub = await startStub({ tls: { cert: leaf.certPem, key: leaf.keyPem() }, token: "t" });
    expect(stub.url).toBe(`https://127.0.0.1:${stub.port}`);
    const tls = { ca: ca.certPem, servername: "kubernetes.default.svc", token: "t" };
    expect((await call(stub, "GET", "/api/v1/services", tls)).status).toBe(200);
    await expect(call(stub, "GET", "/api/v1/services", { token: "t" })).rejects.toThrow();
    const w = await watch(stub, "/api/v1/services?watch=1", tls);
    stub.apply(svc("ns", "a"));
    expect(summary(await w.take(1))).toEqual(["ADDED a"]);
  });
});

describe("object builders", () => {
  it("build objects the stub stores as the API would return them", async () => {
    const stub = await startStub();
    const s = stub.apply(
      service({
        namespace: "ns",
        name: "web",
        type: "LoadBalancer",
        ports: [{ port: 443, targetPort: "https" }],
        selector: { app: "web" },
        loadBalancer: [{ ip: "203.0.113.7" }, { hostname: "lb.example.com" }],
      }),
    );
    expect(s.spec.clusterIP).toMatch(/^10\.96\.\d+\.\d+$/);
    expect(s.spec.clusterIPs).toEqual([s.spec.clusterIP]);
    expect(s.spec.ports[0]).toMatchObject({ protocol: "TCP", port: 443, targetPort: "https" });
    expect(s.spec.ports[0]!.nodePort).toBeGreaterThanOrEqual(30000);
    expect(s.status.loadBalancer.ingress).toEqual([
      { ip: "203.0.113.7", ipMode: "VIP" },
      { hostname: "lb.example.com" },
    ]);

    const slice = stub.apply(
      endpointSlice({
        namespace: "ns",
        service: "web",
        serviceUid: s.metadata.uid,
        ports: [{ port: 8443 }],
        endpoints: [
          { addresses: ["10.0.0.1"], nodeName: "n1", targetRef: { kind: "Pod", name: "web-1" } },
          { addresses: ["10.0.0.2"], terminating: true },
        ],
      }),
    );
    expect(slice.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
    expect(slice.metadata.generateName).toBe("web-");
    expect(slice.metadata.labels).toEqual({
      "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      "kubernetes.io/service-name": "web",
    });
    expect(slice.metadata.ownerReferences).toEqual([
      {
        apiVersion: "v1",
        kind: "Service",
        name: "web",
        uid: s.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(slice.ports).toEqual([{ name: "", port: 8443, protocol: "TCP" }]);
    expect(slice.endpoints?.map((e) => e.conditions)).toEqual([
      { ready: true, serving: true, terminating: false },
      { ready: false, serving: true, terminating: true },
    ]);
    expect(slice.endpoints?.[0]?.targetRef).toMatchObject({
      kind: "Pod",
      name: "web-1",
      namespace: "ns",
    });
    expect(
      endpointSlice({ namespace: "ns", service: "none", ports: [], endpoints: [] }).endpoints,
    ).toBeNull();

    const ing = ingress({
      namespace: "ns",
      name: "web",
      annotations: { "kubernetes.io/ingress.class": "lintel" },
      defaultBackend: { service: "fallback", port: "http" },
      rules: [{ paths: [{ pathType: "Exact", service: "web", port: 80 }] }],
      tls: [{ hosts: ["a.test"], secretName: "a-tls" }],
    });
    expect(ing.spec).toEqual({
      defaultBackend: { service: { name: "fallback", port: { name: "http" } } },
      rules: [
        {
          http: {
            paths: [
              { pathType: "Exact", backend: { service: { name: "web", port: { number: 80 } } } },
            ],
          },
        },
      ],
      tls: [{ hosts: ["a.test"], secretName: "a-tls" }],
    });
    expect(stub.apply(ing).metadata.generation).toBe(1);
    expect(
      ingressClass({ name: "c", controller: "x/y", isDefault: true }).metadata.annotations,
    ).toEqual({
      "ingressclass.kubernetes.io/is-default-class": "true",
    });

    const secret = stub.apply(tlsSecret({ namespace: "ns", name: "t", cert: "CERT", key: "KEY" }));
    expect(secret.type).toBe("kubernetes.io/tls");
    expect(Buffer.from(secret.data["tls.crt"]!, "base64").toString()).toBe("CERT");

    const n = stub.apply(node({ name: "n1", internalIP: "172.18.0.2", podCIDR: "10.244.1.0/24" }));
    expect(n.metadata.namespace).toBeUndefined();
    expect(n.status.addresses[0]).toEqual({ type: "InternalIP", address: "172.18.0.2" });
    expect(stub.get("Node", undefined, "n1")?.spec).toEqual({
      podCIDR: "10.244.1.0/24",
      podCIDRs: ["10.244.1.0/24"],
    });

    const p = stub.apply(
      pod({ namespace: "ns", name: "web-1", nodeName: "n1", podIP: "10.0.0.1", ready: false }),
    );
    expect(p.status.conditions.find((c) => c.type === "Ready")?.status).toBe("False");
    expect(p.status.podIPs).toEqual([{ ip: "10.0.0.1" }]);
    const q = new URLSearchParams({ fieldSelector: "spec.nodeName=n1,status.podIP=10.0.0.1" });
    const onNode = await call<ListBody>(stub, "GET", `/api/v1/pods?${q}`);
    expect(names(onNode.body.items)).toEqual(["web-1"]);
  });
});
