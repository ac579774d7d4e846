// One Kubernetes API endpoint as the kinds see it: shared watches (one list+watch per
// resource and selector, however many kinds use it), kept while someone subscribes and
// for a while after, and writes (status patches; objects read and written whole).

import type { Clock, Timer } from "../clock.js";
import type { Logger } from "../log.js";
import {
  type KubeApi,
  KubeApiError,
  KubeConflictError,
  type KubeWatch,
  type KubeWriter,
  type WatchSelector,
} from "./api.js";
import type { ApiConnection, ApiRequest } from "./connection.js";
import {
  DEFAULT_TIMING,
  Reflector,
  type ReflectorStatus,
  type ReflectorTiming,
} from "./reflector.js";
import {
  apiVersionOf,
  collectionPath,
  type KubeObject,
  objectPath,
  type ResourceType,
} from "./resources.js";

export interface KubeClientOptions {
  readonly clock: Clock;
  readonly random: () => number;
  readonly log: Logger;
  readonly timing?: ReflectorTiming;
  /** How long a watch nobody subscribes to any more keeps running (a name looked up again soon is not re-listed). */
  readonly lingerMs?: number;
}

/** Five minutes: longer than a typical idle gap between two uses of a service. */
const DEFAULT_LINGER_MS = 300_000;

type Listener = (changed: ReadonlySet<string> | undefined) => void;

class SharedWatch<T> implements KubeWatch<T> {
  private readonly listeners = new Set<Listener>();
  private readonly reflector: Reflector<T>;
  private linger: Timer | undefined;
  private running = false;

  constructor(
    conn: ApiConnection,
    type: ResourceType<T>,
    selector: WatchSelector,
    private readonly opts: KubeClientOptions,
  ) {
    this.reflector = new Reflector(conn, type, selector, (changed) => this.notify(changed), {
      clock: opts.clock,
      random: opts.random,
      log: opts.log,
      timing: opts.timing ?? DEFAULT_TIMING,
    });
  }

  get items(): ReadonlyMap<string, T> {
    return this.reflector.items;
  }

  get synced(): boolean {
    return this.reflector.synced;
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  status(): ReflectorStatus {
    return this.reflector.status();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.linger) {
      this.opts.clock.clearTimeout(this.linger);
      this.linger = undefined;
    }
    if (!this.running) {
      this.running = true;
      this.reflector.start();
    }
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0 || !this.running) return;
      this.linger = this.opts.clock.setTimeout(() => {
        this.linger = undefined;
        this.stop();
      }, this.opts.lingerMs ?? DEFAULT_LINGER_MS);
      this.linger.unref?.();
    };
  }

  whenSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: Timer | undefined;
      const stop = this.subscribe(() => {
        if (!this.synced) return;
        if (timer) this.opts.clock.clearTimeout(timer);
        stop();
        resolve(true);
      });
      timer = this.opts.clock.setTimeout(() => {
        stop();
        resolve(this.synced);
      }, timeoutMs);
      timer.unref?.();
    });
  }

  stop(): void {
    if (this.linger) this.opts.clock.clearTimeout(this.linger);
    this.linger = undefined;
    this.running = false;
    this.reflector.stop();
  }

  private notify(changed: ReadonlySet<string> | undefined): void {
    for (const l of [...this.listeners]) {
      try {
        l(changed);
      } catch (e) {
        this.opts.log.error("a Kubernetes watch subscriber failed", {
          error: (e as Error).stack ?? String(e),
        });
      }
    }
  }
}

/** What the admin server shows of one API endpoint. */
export interface KubeClientStatus {
  readonly server: string;
  readonly auth: string;
  readonly watches: readonly (ReflectorStatus & { readonly subscribers: number })[];
}

export class KubeClient implements KubeApi {
  private readonly watches = new Map<string, SharedWatch<unknown>>();
  readonly writer: KubeWriter;

  constructor(
    private readonly conn: ApiConnection,
    private readonly opts: KubeClientOptions,
  ) {
    this.writer = {
      patchStatus: (type, ns, name, status) => this.patchStatus(type, ns, name, status),
      get: (type, ns, name) => this.getObject(type, ns, name),
      create: (type, ns, object) => this.createObject(type, ns, object),
      replace: (type, ns, name, object) => this.replaceObject(type, ns, name, object),
      delete: (type, ns, name) => this.deleteObject(type, ns, name),
      list: (type, ns, labelSelector) => this.listObjects(type, ns, labelSelector),
    };
  }

  get description(): string {
    return this.conn.server;
  }

  watch<T>(type: ResourceType<T>, selector: WatchSelector = {}): KubeWatch<T> {
    const key = `${collectionPath(type, selector.namespace)}?l=${selector.labelSelector ?? ""}&f=${selector.fieldSelector ?? ""}`;
    let w = this.watches.get(key);
    if (!w) {
      w = new SharedWatch(this.conn, type, selector, this.opts) as SharedWatch<unknown>;
      this.watches.set(key, w);
    }
    return w as KubeWatch<T>;
  }

  status(): KubeClientStatus {
    return {
      server: this.conn.server,
      auth: this.conn.auth,
      watches: [...this.watches.values()].map((w) => ({
        ...w.status(),
        subscribers: w.subscribers,
      })),
    };
  }

  /** Waits (up to `timeoutMs`) for every watch someone subscribes to; returns those still not synced. */
  async waitForSync(timeoutMs: number): Promise<ReflectorStatus[]> {
    const active = [...this.watches.values()].filter((w) => w.subscribers > 0);
    const results = await Promise.all(active.map((w) => w.whenSynced(timeoutMs)));
    return active.filter((_, i) => !results[i]).map((w) => w.status());
  }

  close(): void {
    for (const w of this.watches.values()) w.stop();
    this.watches.clear();
    this.conn.close();
  }

  private get timing(): ReflectorTiming {
    return this.opts.timing ?? DEFAULT_TIMING;
  }

  private async patchStatus(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
    status: unknown,
  ): Promise<void> {
    const what = `updating the status of ${objectName(type, namespace, name)}`;
    const res = await this.exchange(what, {
      method: "PATCH",
      path: `${objectPath(type, namespace, name)}/status`,
      body: JSON.stringify({ status }),
      contentType: "application/merge-patch+json",
    });
    if (res.status !== 200) throw apiError(what, res.status, res.body);
  }

  private async getObject(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
  ): Promise<KubeObject | undefined> {
    const what = `reading ${objectName(type, namespace, name)}`;
    const res = await this.exchange(what, {
      method: "GET",
      path: objectPath(type, namespace, name),
    });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw apiError(what, res.status, res.body);
    return parseObject(what, res.body);
  }

  private async createObject(
    type: ResourceType<unknown>,
    namespace: string,
    object: KubeObject,
  ): Promise<KubeObject> {
    const what = `creating ${objectName(type, namespace, object.metadata?.name ?? "")}`;
    const res = await this.exchange(what, {
      method: "POST",
      path: collectionPath(type, namespace),
      body: JSON.stringify(typed(type, object)),
    });
    if (res.status !== 200 && res.status !== 201 && res.status !== 202)
      throw apiError(what, res.status, res.body);
    return parseObject(what, res.body);
  }

  private async replaceObject(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
    object: KubeObject,
  ): Promise<KubeObject> {
    const what = `replacing ${objectName(type, namespace, name)}`;
    const res = await this.exchange(what, {
      method: "PUT",
      path: objectPath(type, namespace, name),
      body: JSON.stringify(typed(type, object)),
    });
    if (res.status !== 200 && res.status !== 201) throw apiError(what, res.status, res.body);
    return parseObject(what, res.body);
  }

  private async deleteObject(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
  ): Promise<void> {
    const what = `deleting ${objectName(type, namespace, name)}`;
    const res = await this.exchange(what, {
      method: "DELETE",
      path: objectPath(type, namespace, name),
    });
    if (res.status !== 200 && res.status !== 202 && res.status !== 404)
      throw apiError(what, res.status, res.body);
  }

  private async listObjects(
    type: ResourceType<unknown>,
    namespace: string,
    labelSelector: string | undefined,
  ): Promise<KubeObject[]> {
    const where = type.namespaced ? ` in namespace ${namespace}` : "";
    const what = `listing ${type.plural}${where}${labelSelector ? ` matching ${labelSelector}` : ""}`;
    const items: KubeObject[] = [];
    let cont: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(this.timing.pageSize) });
      if (labelSelector) q.set("labelSelector", labelSelector);
      if (cont) q.set("continue", cont);
      const res = await this.exchange(what, {
        method: "GET",
        path: `${collectionPath(type, namespace)}?${q}`,
      });
      if (res.status !== 200) throw apiError(what, res.status, res.body);
      const page = parseObject(what, res.body) as {
        items?: unknown;
        metadata?: { continue?: unknown };
      };
      if (Array.isArray(page.items)) items.push(...(page.items as KubeObject[]));
      cont = typeof page.metadata?.continue === "string" ? page.metadata.continue : undefined;
    } while (cont);
    return items;
  }

  /**
   * One request and its whole answer, within the request timeout. A request that gets no
   * answer (refused, reset, too slow) rejects with `what` and why.
   */
  private async exchange(
    what: string,
    req: Omit<ApiRequest, "timeoutMs" | "signal">,
  ): Promise<{ status: number; body: string }> {
    const { requestTimeoutMs } = this.timing;
    const deadline = new AbortController();
    const timer = this.opts.clock.setTimeout(() => deadline.abort(), requestTimeoutMs);
    timer.unref?.();
    try {
      const res = await this.conn.request({
        ...req,
        timeoutMs: requestTimeoutMs,
        signal: deadline.signal,
      });
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      return { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") };
    } catch (e) {
      const why = deadline.signal.aborted
        ? `the API at ${this.conn.server} did not answer within ${requestTimeoutMs} ms`
        : (e as Error).message;
      throw new Error(`${what}: ${why}`, { cause: e });
    } finally {
      this.opts.clock.clearTimeout(timer);
    }
  }
}

/** How messages name an object: `Secret lintel/acme`, `IngressClass lintel`. */
function objectName(type: ResourceType<unknown>, namespace: string, name: string): string {
  return `${type.kind} ${type.namespaced ? `${namespace}/` : ""}${name}`;
}

/** The object with its type's apiVersion and kind, as a write's body. */
function typed(type: ResourceType<unknown>, object: KubeObject): KubeObject {
  return { ...object, apiVersion: apiVersionOf(type), kind: type.kind };
}

function parseObject(what: string, body: string): KubeObject {
  let o: unknown;
  try {
    o = JSON.parse(body);
  } catch {
    // handled below, as any body that is not an object
  }
  if (typeof o !== "object" || o === null || Array.isArray(o))
    throw new Error(`${what}: the API answered with a body that is not a JSON object`);
  return o as KubeObject;
}

/**
 * The error for an answer other than the expected one: the HTTP status, what a 401 or 403
 * means for lintel, and the API's own message and reason when it sent a Status. A 409 is
 * a KubeConflictError.
 */
export function apiError(what: string, status: number, body: string): KubeApiError {
  let message = body.slice(0, 200);
  let reason: string | undefined;
  try {
    const s = JSON.parse(body) as { message?: unknown; reason?: unknown } | null;
    if (typeof s?.message === "string") message = s.message;
    if (typeof s?.reason === "string") reason = s.reason;
  } catch {
    // not a Status: the raw text says it
  }
  const hint =
    status === 401
      ? " (the API did not accept lintel's credentials)"
      : status === 403
        ? " (lintel's service account lacks RBAC permission for this; see deploy/k8s)"
        : "";
  const text = `${what}: HTTP ${status}${hint}${message ? `: ${message}` : ""}`;
  return status === 409
    ? new KubeConflictError(text, reason)
    : new KubeApiError(text, status, reason);
}
