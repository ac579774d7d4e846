// A Kubernetes API server stub for tests, over HTTP or HTTPS on 127.0.0.1: list, watch, get
// and write a gateway's resources with the real API's semantics (one global resourceVersion,
// watch replay and compaction, chunked lists, selectors, Status errors), plus fault knobs.

import { randomUUID } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type KubeObject,
  type ManagedFieldsEntry,
  nameSuffix,
  type ObjectMeta,
  timestamp,
} from "./kube-objects.js";

type Json = Record<string, unknown>;

/** A resource the stub serves, with the traits of its real registry strategy. */
interface Resource {
  readonly kind: KubeKind;
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Has a status subresource: object writes keep .status, /status writes change only it. */
  readonly statusSubresource?: boolean;
  /** What a create through the API resets .status to (the client cannot set it). */
  readonly createdStatus?: Json;
  /** Keeps metadata.generation: 1 on create, +1 when anything but metadata or status changes. */
  readonly generation?: boolean;
  /** DELETE answers the object rather than a Success Status. */
  readonly deleteReturnsObject?: boolean;
  /** Fields a fieldSelector may name beyond metadata.name and metadata.namespace. */
  readonly fields?: Readonly<Record<string, (o: Json) => string>>;
  /** MicroTime fields (dotted paths): six fractional digits or a 400, stored in UTC. */
  readonly microTimes?: readonly string[];
}

export type KubeKind =
  | "Service"
  | "Endpoints"
  | "Secret"
  | "ConfigMap"
  | "Pod"
  | "Node"
  | "EndpointSlice"
  | "Ingress"
  | "IngressClass"
  | "Lease";

const field = (o: Json, path: string): unknown =>
  path.split(".").reduce<unknown>((v, k) => (isObject(v) ? v[k] : undefined), o);
const text = (v: unknown): string => (typeof v === "string" ? v : "");

const RESOURCES: readonly Resource[] = [
  {
    kind: "Service",
    group: "",
    version: "v1",
    plural: "services",
    namespaced: true,
    statusSubresource: true,
    createdStatus: { loadBalancer: {} },
    deleteReturnsObject: true,
  },
  { kind: "Endpoints", group: "", version: "v1", plural: "endpoints", namespaced: true },
  {
    kind: "Secret",
    group: "",
    version: "v1",
    plural: "secrets",
    namespaced: true,
    fields: { type: (o) => text(o.type) },
  },
  { kind: "ConfigMap", group: "", version: "v1", plural: "configmaps", namespaced: true },
  {
    kind: "Pod",
    group: "",
    version: "v1",
    plural: "pods",
    namespaced: true,
    statusSubresource: true,
    createdStatus: { phase: "Pending" },
    deleteReturnsObject: true,
    fields: {
      "spec.nodeName": (o) => text(field(o, "spec.nodeName")),
      "status.phase": (o) => text(field(o, "status.phase")),
      "status.podIP": (o) => text(field(o, "status.podIP")),
    },
  },
  {
    kind: "Node",
    group: "",
    version: "v1",
    plural: "nodes",
    namespaced: false,
    statusSubresource: true,
    fields: { "spec.unschedulable": (o) => String(field(o, "spec.unschedulable") === true) },
  },
  {
    kind: "EndpointSlice",
    group: "discovery.k8s.io",
    version: "v1",
    plural: "endpointslices",
    namespaced: true,
    generation: true,
  },
  {
    kind: "Ingress",
    group: "networking.k8s.io",
    version: "v1",
    plural: "ingresses",
    namespaced: true,
    statusSubresource: true,
    createdStatus: { loadBalancer: {} },
    generation: true,
  },
  {
    kind: "IngressClass",
    group: "networking.k8s.io",
    version: "v1",
    plural: "ingressclasses",
    namespaced: false,
    generation: true,
  },
  {
    kind: "Lease",
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    namespaced: true,
    microTimes: ["spec.acquireTime", "spec.renewTime"],
  },
];

const apiVersionOf = (r: Resource) => (r.group === "" ? r.version : `${r.group}/${r.version}`);

function resourceOfKind(kind: string, apiVersion?: string): Resource {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r || (apiVersion !== undefined && apiVersionOf(r) !== apiVersion))
    throw new Error(`the stub does not serve ${apiVersion ?? ""} ${kind}`);
  return r;
}

// ---- JSON helpers ---------------------------------------------------------------------

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A plain-JSON deep copy (undefined fields dropped): what is stored and handed out. */
function json<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** JSON with sorted keys, to compare objects whatever order their fields came in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

/** RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Json = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---- Status errors --------------------------------------------------------------------

function statusBody(
  code: number,
  reason: string,
  message: string,
  details?: Json,
  listMeta: Json = {},
): Json {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: listMeta,
    status: "Failure",
    message,
    reason,
    ...(details && { details }),
    code,
  };
}

/** A failure the API answers with a Status object. */
class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Json,
    readonly listMeta?: Json,
  ) {
    super(message);
  }

  get body(): Json {
    return statusBody(this.code, this.reason, this.message, this.details, this.listMeta);
  }
}

/** How messages name a resource: `services`, `ingresses.networking.k8s.io`. */
const qualified = (r: Resource) => (r.group === "" ? r.plural : `${r.plural}.${r.group}`);

const objectDetails = (r: Resource, name: string): Json => ({
  name,
  ...(r.group !== "" && { group: r.group }),
  kind: r.plural,
});

const notFound = (r: Resource, name: string) =>
  new ApiError(404, "NotFound", `${qualified(r)} "${name}" not found`, objectDetails(r, name));
const noSuchPath = () =>
  new ApiError(404, "NotFound", "the server could not find the requested resource", {});
const badRequest = (message: string) => new ApiError(400, "BadRequest", message);

// ---- selectors ------------------------------------------------------------------------

type LabelRequirement =
  | { readonly key: string; readonly op: "in" | "notin"; readonly values: readonly string[] }
  | { readonly key: string; readonly op: "exists" }
  | { readonly key: string; readonly op: "!exists" };

const SELECTOR_TOKEN = /\s*(==|!=|=|!|\(|\)|,|[A-Za-z0-9][-A-Za-z0-9_./]*)\s*/y;
const isWord = (t: string | undefined): t is string => t !== undefined && /^[A-Za-z0-9]/.test(t);

/** Parses the API's label selector syntax into requirements that must all hold. */
function parseLabelSelector(selector: string): LabelRequirement[] {
  if (selector.trim() === "") return [];
  const bad = (why: string) => badRequest(`unable to parse requirement: ${why} in "${selector}"`);
  const tokens: string[] = [];
  const scanner = new RegExp(SELECTOR_TOKEN);
  while (scanner.lastIndex < selector.length) {
    const at = scanner.lastIndex;
    const m = scanner.exec(selector);
    if (!m) throw bad(`unexpected character at ${at}`);
    tokens.push(m[1]!);
  }
  let i = 0;
  const word = (what: string): string => {
    const t = tokens[i++];
    if (!isWord(t)) throw bad(`expected ${what}, found ${t ?? "end of string"}`);
    return t;
  };
  const expect = (t: string) => {
    if (tokens[i++] !== t) throw bad(`expected '${t}'`);
  };
  const requirement = (): LabelRequirement => {
    if (tokens[i] === "!") {
      i++;
      return { key: word("a key"), op: "!exists" };
    }
    const key = word("a key");
    const op = tokens[i];
    if (op === undefined || op === ",") return { key, op: "exists" };
    i++;
    if (op === "=" || op === "==" || op === "!=") {
      const value = isWord(tokens[i]) ? tokens[i++]! : "";
      return { key, op: op === "!=" ? "notin" : "in", values: [value] };
    }
    if (op !== "in" && op !== "notin") throw bad(`unknown operator '${op}'`);
    expect("(");
    const values = [word("a value")];
    while (tokens[i] === ",") {
      i++;
      values.push(word("a value"));
    }
    expect(")");
    return { key, op, values };
  };
  const requirements = [requirement()];
  while (i < tokens.length) {
    expect(",");
    requirements.push(requirement());
  }
  return requirements;
}

function labelsMatch(requirements: readonly LabelRequirement[], labels: Readonly<Json>): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    if (r.op === "exists") return has;
    if (r.op === "!exists") return !has;
    const listed = has && r.values.includes(text(labels[r.key]));
    return r.op === "in" ? listed : !listed;
  });
}

interface FieldRequirement {
  readonly get: (o: Json) => string;
  readonly value: string;
  readonly equal: boolean;
}

/** Parses a field selector (`a=b`, `a==b`, `a!=b`, comma = AND) over the fields `r` supports. */
function parseFieldSelector(selector: string, r: Resource): FieldRequirement[] {
  const fields: Record<string, (o: Json) => string> = {
    "metadata.name": (o) => text(field(o, "metadata.name")),
    ...(r.namespaced && {
      "metadata.namespace": (o: Json) => text(field(o, "metadata.namespace")),
    }),
    ...r.fields,
  };
  return selector
    .split(",")
    .filter((term) => term.trim() !== "")
    .map((term) => {
      const m = /^\s*([^=!\s]+)\s*(==|=|!=)(.*)$/.exec(term);
      if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
      const get = fields[m[1]!];
      if (!get) throw badRequest(`field label not supported: ${m[1]}`);
      return { get, value: m[3]!.trim(), equal: m[2] !== "!=" };
    });
}

// ---- routes ---------------------------------------------------------------------------

/** What a URL names: a collection (no name), an object, or its status. */
interface Target {
  readonly resource: Resource;
  /** Undefined: every namespace, or a cluster-scoped resource. */
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly status: boolean;
}

function route(pathname: string): Target | undefined {
  let parts: string[];
  try {
    parts = pathname
      .split("/")
      .filter((p) => p !== "")
      .map(decodeURIComponent);
  } catch {
    return undefined;
  }
  let group: string;
  let rest: string[];
  if (parts[0] === "api") [group, rest] = ["", parts.slice(1)];
  else if (parts[0] === "apis" && parts.length > 2) [group, rest] = [parts[1]!, parts.slice(2)];
  else return undefined;
  const [version, ...path] = rest;
  let namespace: string | undefined;
  if (path[0] === "namespaces" && path.length >= 3) namespace = path.splice(0, 2)[1];
  const [plural, name, sub, ...extra] = path;
  const resource = RESOURCES.find(
    (r) => r.group === group && r.version === version && r.plural === plural,
  );
  if (!resource || extra.length > 0) return undefined;
  if (sub !== undefined && (sub !== "status" || !resource.statusSubresource)) return undefined;
  if (namespace !== undefined && !resource.namespaced) return undefined;
  if (resource.namespaced && namespace === undefined && name !== undefined) return undefined;
  return { resource, namespace, name, status: sub === "status" };
}

const objectKey = (namespace: string | undefined, name: string) =>
  namespace ? `${namespace}/${name}` : name;

// ---- continue tokens ------------------------------------------------------------------
// As the real API encodes them: base64url JSON of the list's resourceVersion and the key to
// start from. rv -1 means "continue from the latest state" (handed out with an Expired error).

function encodeContinue(version: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv: version, start })).toString(
    "base64url",
  );
}

function decodeContinue(token: string): { version: number; start: string } {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    c = undefined;
  }
  if (!isObject(c) || c.v !== "meta.k8s.io/v1")
    throw badRequest("continue key is not valid: incorrect encoded start resourceVersion");
  if (typeof c.rv !== "number" || typeof c.start !== "string")
    throw badRequest("continue key is not valid: token is malformed");
  return { version: c.rv, start: c.start };
}

const EXPIRED_CONTINUE =
  "The provided continue parameter is too old to display a consistent list result. You can " +
  "start a new list without the continue parameter, or use the continue token in this response " +
  "to retrieve the remainder of the results. Continuing with the provided token results in an " +
  "inconsistent list - objects that were created, modified, or deleted between the time the " +
  "first chunk was returned and now may show up in the list.";

// ---- the server -----------------------------------------------------------------------

export interface KubeApiStubOptions {
  /** Require `Authorization: Bearer <token>` (change it later with setToken). */
  readonly token?: string;
  /** Serve HTTPS with this certificate and key (PEM), as the in-cluster API does. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** How often watches that allow bookmarks get one (default 1000 ms). */
  readonly bookmarkIntervalMs?: number;
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: Json;
}

/** One write, kept in the history that watches replay from. */
interface Change {
  readonly version: number;
  readonly resource: Resource;
  readonly key: string;
  /** The object after the write; undefined for a deletion. */
  readonly after: KubeObject | undefined;
  /** The object before the write; undefined for a creation. */
  readonly before: KubeObject | undefined;
}

interface Watch {
  readonly resource: Resource;
  readonly matches: (o: KubeObject) => boolean;
  /** Changes up to this version were replayed or predate the watch (or it asked to start later). */
  readonly since: number;
  readonly res: ServerResponse;
  readonly timers: NodeJS.Timeout[];
}

const withVersion = (o: KubeObject, version: number): KubeObject => ({
  ...o,
  metadata: { ...o.metadata, resourceVersion: String(version) },
});

/**
 * What a watch with filter `matches` sees of a change, as the API's watch cache decides it:
 * an object that starts matching is ADDED, one that stops matching is DELETED (its previous
 * content at the change's version).
 */
function eventFor(change: Change, matches: (o: KubeObject) => boolean): WatchEvent | undefined {
  const now = change.after !== undefined && matches(change.after);
  const was = change.before !== undefined && matches(change.before);
  if (now) return { type: was ? "MODIFIED" : "ADDED", object: change.after! };
  if (was) return { type: "DELETED", object: withVersion(change.before!, change.version) };
  return undefined;
}

/** Fields a client may not set: the server owns them. */
const SERVER_META = new Set([
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "managedFields",
  "selfLink",
]);

interface SystemMeta {
  uid: string;
  resourceVersion: string;
  generation: number | undefined;
  creationTimestamp: string;
  managedFields: ManagedFieldsEntry[];
}

/** Metadata with the server's fields, in the order the API writes them. */
function serverMeta(given: Json, system: SystemMeta): ObjectMeta {
  const { name, generateName, namespace } = given;
  const user = Object.entries(given).filter(
    ([k]) => k !== "name" && k !== "generateName" && k !== "namespace" && !SERVER_META.has(k),
  );
  const { managedFields, ...fields } = system;
  return json({
    name,
    generateName,
    namespace,
    ...fields,
    ...Object.fromEntries(user),
    managedFields,
  }) as ObjectMeta;
}

/** An object with type meta and metadata first, as the API serializes it. */
function assemble(r: Resource, metadata: ObjectMeta, body: Json): KubeObject {
  const fields = Object.entries(body).filter(
    ([k]) => k !== "apiVersion" && k !== "kind" && k !== "metadata",
  );
  return json({
    apiVersion: apiVersionOf(r),
    kind: r.kind,
    metadata,
    ...Object.fromEntries(fields),
  });
}

/** A FieldsV1 set: `f:<field>` per field, `.` marking a nested map or struct as owned. */
function fieldSet(value: unknown, owned = false): Json {
  const set: Json = owned ? { ".": {} } : {};
  if (isObject(value))
    for (const [k, v] of Object.entries(value))
      set[`f:${k}`] = isObject(v) && Object.keys(v).length > 0 ? fieldSet(v, true) : {};
  return set;
}

function managedEntry(
  r: Resource,
  manager: string,
  object: KubeObject,
  subresource: "status" | undefined,
): ManagedFieldsEntry {
  let fields: Json;
  if (subresource) fields = { "f:status": fieldSet(object.status) };
  else {
    const meta = Object.fromEntries(
      Object.entries(object.metadata).filter(
        ([k]) => !SERVER_META.has(k) && k !== "name" && k !== "namespace",
      ),
    );
    fields = Object.keys(meta).length > 0 ? { "f:metadata": fieldSet(meta) } : {};
    for (const [k, v] of Object.entries(object)) {
      if (k === "apiVersion" || k === "kind" || k === "metadata") continue;
      if (k === "status" && r.statusSubresource) continue;
      fields[`f:${k}`] = fieldSet(v);
    }
  }
  return {
    manager,
    operation: "Update",
    apiVersion: apiVersionOf(r),
    time: timestamp(),
    fieldsType: "FieldsV1",
    fieldsV1: fields,
    ...(subresource && { subresource }),
  };
}

/** The manager's entry replaces its previous one (same manager and subresource). */
function upsertManaged(
  entries: readonly ManagedFieldsEntry[],
  entry: ManagedFieldsEntry,
): ManagedFieldsEntry[] {
  const same = (e: ManagedFieldsEntry) =>
    e.manager === entry.manager &&
    e.operation === entry.operation &&
    e.subresource === entry.subresource;
  return entries.some(same) ? entries.map((e) => (same(e) ? entry : e)) : [...entries, entry];
}

/** Everything but metadata and status: what a generation counts changes of. */
function specOf(o: KubeObject): string {
  const { metadata: _metadata, status: _status, ...spec } = o;
  return canonical(spec);
}

/** Field manager of the stub's control methods (as `kubectl apply` records itself). */
const CONTROL_MANAGER = "kubectl-client-side-apply";

/** Resets a connection (RST) when it is a TCP socket, else just destroys it. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function reply(res: ServerResponse, code: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(code, {
    ...responseHeaders(),
    "content-length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

const responseHeaders = () => ({
  "audit-id": randomUUID(),
  "cache-control": "no-cache, private",
  "content-type": "application/json",
});

function nonNegativeNumber(query: URLSearchParams, name: string, integer: boolean): number {
  const v = query.get(name);
  if (v === null || v === "") return 0;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
    throw badRequest(`invalid ${name}: ${v}`);
  return n;
}

/** Starts a stub API server on 127.0.0.1 with an ephemeral port. */
export function startKubeApiStub(opts: KubeApiStubOptions = {}): Promise<KubeApiStub> {
  return KubeApiStub.start(opts);
}

export class KubeApiStub {
  /** Every request that reached the server, in order (also those refused 401 or 503). */
  readonly requests: SeenRequest[] = [];
  private readonly store = new Map<Resource, Map<string, KubeObject>>();
  private readonly history: Change[] = [];
  private readonly watches = new Set<Watch>();
  private readonly sockets = new Set<Socket>();
  private version = 1;
  /** History up to this version is forgotten. */
  private compactedAt = 0;
  private mode: "up" | "down" | "unavailable" = "up";
  private latencyMs = 0;
  private token: string | undefined;

  private constructor(
    private readonly server: Server,
    /** `http://127.0.0.1:<port>` (https with `tls`). */
    readonly url: string,
    readonly port: number,
    private readonly bookmarkIntervalMs: number,
    token: string | undefined,
  ) {
    this.token = token;
    server.on("connection", (socket: Socket) => {
      if (this.mode === "down") {
        reset(socket);
        return;
      }
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    server.on("clientError", (_err, socket) => socket.destroy());
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (res.headersSent || res.destroyed) res.destroy();
        else reply(res, 500, statusBody(500, "InternalError", String(err)));
      });
    });
  }

  static async start(opts: KubeApiStubOptions): Promise<KubeApiStub> {
    const server: Server = opts.tls
      ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key })
      : createHttpServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const scheme = opts.tls ? "https" : "http";
    return new KubeApiStub(
      server,
      `${scheme}://127.0.0.1:${port}`,
      port,
      opts.bookmarkIntervalMs ?? 1000,
      opts.token,
    );
  }

  // ---- control knobs ------------------------------------------------------------------

  /** The current global resourceVersion. */
  get resourceVersion(): string {
    return String(this.version);
  }

  /** Creates or replaces the object (status included), as an API write with watch events. */
  apply<T extends KubeObject>(obj: T): T {
    const r = resourceOfKind(obj.kind, obj.apiVersion);
    const namespace = r.namespaced ? obj.metadata.namespace : undefined;
    if (r.namespaced && !namespace) throw new Error(`a ${r.kind} needs metadata.namespace`);
    if (!obj.metadata.name) throw new Error(`a ${r.kind} needs metadata.name`);
    const body = json(obj) as Json;
    const current = this.objects(r).get(objectKey(namespace, obj.metadata.name));
    const stored = current
      ? this.update(r, current, body, CONTROL_MANAGER)
      : this.create(r, body, CONTROL_MANAGER);
    return json(stored) as T;
  }

  /** Deletes the object (with a DELETED event); returns its last state, if it existed. */
  remove(kind: KubeKind, namespace: string | undefined, name: string): KubeObject | undefined {
    const r = resourceOfKind(kind);
    const key = objectKey(r.namespaced ? namespace : undefined, name);
    const current = this.objects(r).get(key);
    if (!current) return undefined;
    this.commit(r, key, undefined);
    return json(current);
  }

  get(kind: KubeKind, namespace: string | undefined, name: string): KubeObject | undefined {
    const r = resourceOfKind(kind);
    const o = this.objects(r).get(objectKey(r.namespaced ? namespace : undefined, name));
    return o && json(o);
  }

  /** Every stored object of `kind`, in the API's list order. */
  list(kind: KubeKind): KubeObject[] {
    return sortedObjects(this.objects(resourceOfKind(kind))).map(json);
  }

  /** Forgets the history up to now: older watches get 410 Expired, older continue tokens too. */
  compact(): void {
    this.compactedAt = this.version;
    this.history.length = 0;
  }

  /** Breaks every open watch mid-stream (the socket is destroyed), as a network blip. */
  dropWatches(): void {
    for (const w of this.watches) {
      this.forget(w);
      w.res.destroy();
    }
  }

  /** Ends every open watch cleanly, as the API does when a watch times out. */
  closeWatches(): void {
    for (const w of this.watches) {
      this.forget(w);
      w.res.end();
    }
  }

  /** Until up(): every connection is reset, open ones (watches too) and new ones. */
  down(): void {
    this.mode = "down";
    for (const w of this.watches) this.forget(w);
    for (const socket of this.sockets) reset(socket);
  }

  /** Until up(): every request is answered 503 ServiceUnavailable (open watches stay). */
  unavailable(): void {
    this.mode = "unavailable";
  }

  up(): void {
    this.mode = "up";
  }

  /** Delays every response (its head) by `ms`. */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /** Requires this bearer token from now on (undefined: no authentication). */
  setToken(token: string | undefined): void {
    this.token = token;
  }

  /** Watches open now. */
  watchCount(): number {
    return this.watches.size;
  }

  /** Closes the server and every connection, open watches included. */
  async close(): Promise<void> {
    this.dropWatches();
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- the store ----------------------------------------------------------------------

  private objects(r: Resource): Map<string, KubeObject> {
    const objects = this.store.get(r) ?? new Map<string, KubeObject>();
    this.store.set(r, objects);
    return objects;
  }

  /** Writes (or with undefined, deletes) one object: a new version, history, watch events. */
  private commit(r: Resource, key: string, next: KubeObject | undefined): KubeObject {
    const objects = this.objects(r);
    const before = objects.get(key);
    const version = ++this.version;
    const after = next && withVersion(next, version);
    if (after) objects.set(key, after);
    else objects.delete(key);
    const change: Change = { version, resource: r, key, after, before };
    this.history.push(change);
    for (const w of this.watches)
      if (w.resource === r && version > w.since) this.send(w, eventFor(change, w.matches));
    return after ?? withVersion(before!, version);
  }

  private create(r: Resource, raw: Json, manager: string): KubeObject {
    const body = withMicroTimes(r, raw);
    const given: Json = { ...(isObject(body.metadata) ? body.metadata : {}) };
    if (!r.namespaced) delete given.namespace;
    const candidate = assemble(
      r,
      serverMeta(given, {
        uid: randomUUID(),
        resourceVersion: "",
        generation: r.generation ? 1 : undefined,
        creationTimestamp: timestamp(),
        managedFields: [],
      }),
      body,
    );
    candidate.metadata.managedFields = [managedEntry(r, manager, candidate, undefined)];
    const { namespace, name } = candidate.metadata;
    return this.commit(r, objectKey(namespace, name), candidate);
  }

  /** Writes `body` over `current`, unless nothing would change (the API skips no-op writes). */
  private update(
    r: Resource,
    current: KubeObject,
    raw: Json,
    manager: string,
    subresource?: "status",
  ): KubeObject {
    const body = withMicroTimes(r, raw);
    const m = current.metadata;
    const given: Json = {
      ...(isObject(body.metadata) ? body.metadata : {}),
      name: m.name,
      namespace: m.namespace,
    };
    const system: SystemMeta = {
      uid: m.uid!,
      resourceVersion: m.resourceVersion!,
      generation: m.generation,
      creationTimestamp: m.creationTimestamp!,
      managedFields: m.managedFields ?? [],
    };
    const candidate = assemble(r, serverMeta(given, system), body);
    if (canonical(candidate) === canonical(current)) return current;
    if (r.generation && specOf(candidate) !== specOf(current))
      candidate.metadata.generation = (m.generation ?? 0) + 1;
    candidate.metadata.managedFields = upsertManaged(
      system.managedFields,
      managedEntry(r, manager, candidate, subresource),
    );
    return this.commit(r, objectKey(m.namespace, m.name), candidate);
  }

  /** The objects of `r` as they were at `version` (history after it is undone). */
  private snapshot(r: Resource, version: number): Map<string, KubeObject> {
    const state = new Map(this.objects(r));
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.version > version; i--) {
      const change = this.history[i]!;
      if (change.resource !== r) continue;
      if (change.before) state.set(change.key, change.before);
      else state.delete(change.key);
    }
    return state;
  }

  // ---- requests -----------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://kube-api-stub");
    const method = req.method ?? "GET";
    this.requests.push({
      method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    if (this.mode === "down") reset(req.socket);
    if (req.socket.destroyed) return;
    try {
      if (this.mode === "unavailable")
        throw new ApiError(
          503,
          "ServiceUnavailable",
          "the server is currently unable to handle the request",
        );
      if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`)
        throw new ApiError(401, "Unauthorized", "Unauthorized");
      const target = route(url.pathname);
      if (!target) throw noSuchPath();
      const manager =
        url.searchParams.get("fieldManager") ||
        req.headers["user-agent"]?.split("/")[0] ||
        "unknown";
      const request = { target, query: url.searchParams, manager, req, res };
      const answer = this.serve(method, request, Buffer.concat(chunks).toString("utf8"));
      if (answer) reply(res, ...answer);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      reply(res, err.code, err.body);
    }
  }

  /** Answers a request: [status code, body], or undefined when a watch took the response. */
  private serve(method: string, request: ApiRequest, body: string): [number, unknown] | undefined {
    const { target } = request;
    const { resource: r, name } = target;
    if (name === undefined) {
      if (method === "GET") {
        if (!["1", "true"].includes(request.query.get("watch") ?? ""))
          return [200, this.listBody(request)];
        this.watch(request);
        return undefined;
      }
      if (method === "POST" && (target.namespace !== undefined || !r.namespaced))
        return [201, this.createFromRequest(request, parseObject(body))];
      throw methodNotAllowed();
    }
    const current = () => {
      const o = this.objects(r).get(objectKey(target.namespace, name));
      if (!o) throw notFound(r, name);
      return o;
    };
    switch (method) {
      case "GET":
        return [200, current()];
      case "PUT":
        return [200, this.replace(request, current(), parseObject(body))];
      case "PATCH":
        return [200, this.patch(request, current(), body)];
      case "DELETE": {
        if (target.status) throw methodNotAllowed();
        const gone = current();
        this.commit(r, objectKey(target.namespace, name), undefined);
        const success = {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Success",
          details: { ...objectDetails(r, name), uid: gone.metadata.uid },
        };
        return [200, r.deleteReturnsObject ? gone : success];
      }
    }
    throw methodNotAllowed();
  }

  private createFromRequest({ target, manager }: ApiRequest, body: Json): KubeObject {
    const r = target.resource;
    checkTypeMeta(r, body);
    const meta = isObject(body.metadata) ? { ...body.metadata } : {};
    if (r.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== target.namespace)
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      meta.namespace = target.namespace;
    } else delete meta.namespace;
    if (!meta.name && typeof meta.generateName === "string")
      meta.name = `${meta.generateName}${nameSuffix()}`;
    if (typeof meta.name !== "string" || meta.name === "")
      throw new ApiError(422, "Invalid", "name or generateName is required", { kind: r.kind });
    if (this.objects(r).has(objectKey(text(meta.namespace), meta.name)))
      throw new ApiError(
        409,
        "AlreadyExists",
        `${qualified(r)} "${meta.name}" already exists`,
        objectDetails(r, meta.name),
      );
    const created: Json = { ...body, metadata: meta };
    if (r.createdStatus) created.status = r.createdStatus;
    return this.create(r, created, manager);
  }

  /** PUT: the object (its status kept) or, on /status, the status alone. */
  private replace({ target, manager }: ApiRequest, current: KubeObject, body: Json): KubeObject {
    const r = target.resource;
    checkTypeMeta(r, body);
    const meta = isObject(body.metadata) ? body.metadata : {};
    if (meta.name !== undefined && meta.name !== target.name)
      throw badRequest(
        `the name of the object (${String(meta.name)}) does not match the name on the URL (${target.name})`,
      );
    if (r.namespaced && meta.namespace !== undefined && meta.namespace !== target.namespace)
      throw badRequest(
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    checkVersion(r, current, meta.resourceVersion);
    return this.writeTo(target, current, body, manager);
  }

  /** PATCH with a merge patch (strategic merge patches are applied as merge patches). */
  private patch(
    { target, manager, req }: ApiRequest,
    current: KubeObject,
    body: string,
  ): KubeObject {
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
    if (
      type !== "application/merge-patch+json" &&
      type !== "application/strategic-merge-patch+json"
    )
      throw new ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " +
          "application/merge-patch+json, application/strategic-merge-patch+json",
      );
    const patch = parseObject(body);
    const meta = isObject(patch.metadata) ? patch.metadata : {};
    checkVersion(target.resource, current, meta.resourceVersion);
    return this.writeTo(target, current, mergePatch(current, patch) as Json, manager);
  }

  /** Writes `next` to /status (only .status changes) or to the object (all but .status). */
  private writeTo(target: Target, current: KubeObject, next: Json, manager: string): KubeObject {
    const r = target.resource;
    if (target.status)
      return this.update(r, current, { ...current, status: next.status }, manager, "status");
    const body = r.statusSubresource ? { ...next, status: current.status } : next;
    return this.update(r, current, body, manager);
  }

  private selection(target: Target, query: URLSearchParams): (o: KubeObject) => boolean {
    const labels = parseLabelSelector(query.get("labelSelector") ?? "");
    const fields = parseFieldSelector(query.get("fieldSelector") ?? "", target.resource);
    return (o) =>
      (target.namespace === undefined || o.metadata.namespace === target.namespace) &&
      labelsMatch(labels, o.metadata.labels ?? {}) &&
      fields.every((f) => (f.get(o) === f.value) === f.equal);
  }

  private listBody({ target, query }: ApiRequest): Json {
    const r = target.resource;
    const matches = this.selection(target, query);
    const limit = nonNegativeNumber(query, "limit", true);
    const token = query.get("continue");
    let version = this.version;
    let start = "";
    if (token) {
      if (query.get("resourceVersion"))
        throw badRequest("specifying resource version is not allowed when using continue");
      const c = decodeContinue(token);
      start = c.start;
      if (c.version !== -1) {
        if (c.version <= this.compactedAt)
          throw new ApiError(410, "Expired", EXPIRED_CONTINUE, undefined, {
            continue: encodeContinue(-1, c.start),
          });
        version = c.version;
      }
    }
    const items = sortedObjects(this.snapshot(r, version), start).filter(matches);
    const page = limit > 0 ? items.slice(0, limit) : items;
    const metadata: Json = { resourceVersion: String(version) };
    if (page.length < items.length) {
      const last = page.at(-1)!.metadata;
      metadata.continue = encodeContinue(version, `${objectKey(last.namespace, last.name)}\u0000`);
      // The API only counts what is left when no selector hides part of it.
      if (!query.get("labelSelector") && !query.get("fieldSelector"))
        metadata.remainingItemCount = items.length - page.length;
    }
    return {
      kind: `${r.kind}List`,
      apiVersion: apiVersionOf(r),
      metadata,
      // List items carry no apiVersion or kind: the list's say it.
      items: page.map(({ apiVersion: _apiVersion, kind: _kind, ...item }) => item),
    };
  }

  private watch({ target, query, res }: ApiRequest): void {
    const r = target.resource;
    const matches = this.selection(target, query);
    const rv = query.get("resourceVersion") ?? "";
    if (rv !== "" && !/^\d+$/.test(rv)) throw badRequest(`invalid resource version: ${rv}`);
    const from = rv === "" || rv === "0" ? undefined : Number(rv);
    // Fractions are allowed (the real API takes whole seconds) so tests can be fast.
    const timeoutSeconds = nonNegativeNumber(query, "timeoutSeconds", false);
    const initialEvents = query.get("sendInitialEvents") === "true";
    const bookmarks = query.get("allowWatchBookmarks") === "true";
    res.writeHead(200, responseHeaders());
    res.flushHeaders();
    if (from !== undefined && from < this.compactedAt && !initialEvents) {
      const message = `too old resource version: ${from} (${this.compactedAt})`;
      writeEvent(res, { type: "ERROR", object: statusBody(410, "Expired", message) });
      res.end();
      return;
    }
    const replay = from !== undefined && !initialEvents;
    const w: Watch = { resource: r, matches, since: replay ? from : this.version, res, timers: [] };
    this.watches.add(w);
    res.on("close", () => this.forget(w));
    if (replay) {
      for (const change of this.history)
        if (change.resource === r && change.version > from) this.send(w, eventFor(change, matches));
    } else {
      // No version (or a streaming list): the current state as ADDED events first.
      for (const o of sortedObjects(this.objects(r)))
        if (matches(o)) this.send(w, { type: "ADDED", object: o });
      if (initialEvents && bookmarks)
        this.send(w, this.bookmark(w, { "k8s.io/initial-events-end": "true" }));
    }
    if (bookmarks)
      w.timers.push(setInterval(() => this.send(w, this.bookmark(w)), this.bookmarkIntervalMs));
    if (timeoutSeconds > 0)
      w.timers.push(
        setTimeout(() => {
          this.forget(w);
          res.end();
        }, timeoutSeconds * 1000),
      );
  }

  private bookmark(w: Watch, annotations?: Record<string, string>): WatchEvent {
    const resourceVersion = String(Math.max(this.version, w.since));
    return {
      type: "BOOKMARK",
      object: {
        kind: w.resource.kind,
        apiVersion: apiVersionOf(w.resource),
        metadata: { resourceVersion, ...(annotations && { annotations }) },
      },
    };
  }

  private send(w: Watch, event: WatchEvent | undefined): void {
    if (event && this.watches.has(w)) writeEvent(w.res, event);
  }

  private forget(w: Watch): void {
    for (const t of w.timers) clearTimeout(t);
    this.watches.delete(w);
  }
}

interface ApiRequest {
  readonly target: Target;
  readonly query: URLSearchParams;
  /** Who writes, for managedFields: ?fieldManager=, else the User-Agent's product. */
  readonly manager: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
}

function writeEvent(res: ServerResponse, event: WatchEvent): void {
  if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(event)}\n`);
}

/** Objects in the API's list order (by storage key: namespace/name), from key `start` on. */
function sortedObjects(objects: ReadonlyMap<string, KubeObject>, start = ""): KubeObject[] {
  return [...objects]
    .filter(([key]) => key >= start)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, o]) => o);
}

function parseObject(body: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw badRequest("the body of the request is not a JSON object");
  return parsed;
}

/** A body may leave apiVersion and kind out (the URL says them) but may not contradict them. */
function checkTypeMeta(r: Resource, body: Json): void {
  if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(r))
    throw badRequest(
      `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersionOf(r)})`,
    );
  if (body.kind !== undefined && body.kind !== r.kind)
    throw badRequest(
      `the kind in the data (${String(body.kind)}) does not match the expected kind (${r.kind})`,
    );
}

const MICRO_TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})(Z|[+-]\d\d:\d\d)$/;

/**
 * `body` with its MicroTime fields as the API stores them (UTC, six fractional digits); a
 * 400 as the API's decoder answers when one has another form (Date's three digits too).
 */
function withMicroTimes(r: Resource, body: Json): Json {
  if (!r.microTimes) return body;
  const out = json(body);
  for (const path of r.microTimes) {
    const keys = path.split(".");
    const parent = field(out, keys.slice(0, -1).join("."));
    const key = keys.at(-1)!;
    if (!isObject(parent) || parent[key] === undefined) continue;
    const value = parent[key];
    if (value === null) {
      delete parent[key];
      continue;
    }
    const m = typeof value === "string" ? MICRO_TIME.exec(value) : null;
    const seconds = m ? new Date(`${m[1]}${m[3]}`) : undefined;
    if (!m || !seconds || Number.isNaN(seconds.getTime()))
      throw badRequest(
        `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse`,
      );
    parent[key] = `${seconds.toISOString().slice(0, 19)}.${m[2]}Z`;
  }
  return out;
}

/** Optimistic concurrency: a write naming a resourceVersion must name the current one. */
function checkVersion(r: Resource, current: KubeObject, given: unknown): void {
  if (given === undefined || given === "" || given === current.metadata.resourceVersion) return;
  throw new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(r)} "${current.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
    objectDetails(r, current.metadata.name),
  );
}

const methodNotAllowed = () =>
  new ApiError(
    405,
    "MethodNotAllowed",
    "the server does not allow this method on the requested resource",
    {},
  );
