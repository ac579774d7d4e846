// Keeps one collection of Kubernetes objects in step with the API the way a good
// controller does: list (in pages), then watch from the list's resourceVersion; resume
// a broken watch from the last version seen; list again only on 410 Gone; back off with
// jitter while the API is down, keeping the last known objects meanwhile.

import { StringDecoder } from "node:string_decoder";
import type { Clock, Timer } from "../clock.js";
import type { Logger } from "../log.js";
import type { WatchSelector, WatchStatus } from "./api.js";
import type { ApiConnection } from "./connection.js";
import { collectionPath, type KubeObject, objectKey, type ResourceType } from "./resources.js";
import { sameView } from "./same-view.js";

export interface ReflectorTiming {
  /** Objects per list page (the API's `limit`). */
  readonly pageSize: number;
  /** How long a list page or a watch's response head may take. */
  readonly requestTimeoutMs: number;
  /** A watch asks the API to end it after a random time in this range (seconds), as client-go does. */
  readonly watchSecs: readonly [number, number];
  /** A watch that brings no byte (not even a bookmark) for this long is presumed dead. */
  readonly idleTimeoutMs: number;
  /** Retry delays while the API fails: doubling from min to max, with jitter. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
}

export const DEFAULT_TIMING: ReflectorTiming = {
  pageSize: 500,
  requestTimeoutMs: 30_000,
  watchSecs: [300, 600],
  // The API sends a bookmark about once a minute to watches that ask for them.
  idleTimeoutMs: 150_000,
  backoffMinMs: 500,
  backoffMaxMs: 30_000,
};

type ReflectorPhase = WatchStatus["phase"];

/** What the admin server shows of a watch. */
export type ReflectorStatus = WatchStatus;

/** A failed request to the API, with the HTTP status when there was one. */
class ApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** How a watch stream ended. */
type WatchEnd = "closed" | "gone" | "failed";

export class Reflector<T> {
  /** The objects, by key; replaced wholesale only by a (re)list. */
  readonly items = new Map<string, T>();
  synced = false;
  private phase: ReflectorPhase = "idle";
  private resourceVersion: string | undefined;
  private needList = true;
  private failures = 0;
  private timer: Timer | undefined;
  private abort: AbortController | undefined;
  private lastSyncAt: number | undefined;
  private lastEventAt: number | undefined;
  private counts = { lists: 0, watches: 0, events: 0, errors: 0 };
  private lastError: { at: number; message: string } | undefined;
  private readonly path: string;

  constructor(
    private readonly conn: ApiConnection,
    private readonly type: ResourceType<T>,
    private readonly selector: WatchSelector,
    /** Told after each change: the keys changed, or undefined after a (re)list. */
    private readonly onChange: (changed: ReadonlySet<string> | undefined) => void,
    private readonly env: {
      readonly clock: Clock;
      readonly random: () => number;
      readonly log: Logger;
      readonly timing?: ReflectorTiming;
    },
  ) {
    this.path = collectionPath(type, selector.namespace);
  }

  private get timing(): ReflectorTiming {
    return this.env.timing ?? DEFAULT_TIMING;
  }

  start(): void {
    if (this.phase !== "idle" && this.phase !== "stopped") return;
    this.phase = "idle";
    void this.run();
  }

  /** Stops listing and watching; the objects stay as they were. */
  stop(): void {
    this.phase = "stopped";
    this.abort?.abort();
    if (this.timer) this.env.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  status(): ReflectorStatus {
    const iso = (t: number | undefined) =>
      t === undefined ? undefined : new Date(t).toISOString();
    return {
      resource:
        this.type.group === "" ? this.type.plural : `${this.type.plural}.${this.type.group}`,
      namespace: this.selector.namespace,
      labelSelector: this.selector.labelSelector,
      fieldSelector: this.selector.fieldSelector,
      phase: this.phase,
      synced: this.synced,
      objects: this.items.size,
      resourceVersion: this.resourceVersion,
      lastSyncAt: iso(this.lastSyncAt),
      lastEventAt: iso(this.lastEventAt),
      ...this.counts,
      lastError: this.lastError && { at: iso(this.lastError.at)!, message: this.lastError.message },
    };
  }

  private get stopped(): boolean {
    return this.phase === "stopped";
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.needList) await this.list();
        if (this.stopped) return;
        const started = this.env.clock.now();
        const end = await this.watch();
        if (end === "gone") {
          this.needList = true;
          continue;
        }
        // A watch the API ended by itself is normal; one that ends at once, again and
        // again, is a failing API and waits like any failure.
        if (end === "closed" && this.env.clock.now() - started >= 1000) {
          this.failures = 0;
          continue;
        }
        if (end === "closed") this.failures++;
      } catch (e) {
        if (this.stopped) return;
        this.recordError(e as Error);
        if (e instanceof ApiError && e.status === 410) this.needList = true;
      }
      if (this.stopped) return;
      await this.backoff();
    }
  }

  private recordError(e: Error): void {
    this.failures++;
    this.counts.errors++;
    this.lastError = { at: this.env.clock.now(), message: e.message };
    this.env.log.warn("Kubernetes watch failed; keeping the last known objects", {
      resource: this.type.plural,
      namespace: this.selector.namespace,
      server: this.conn.server,
      error: e.message,
      retries: this.failures,
    });
  }

  /** Waits before the next try: doubling per failure up to the max, with equal jitter. */
  private backoff(): Promise<void> {
    const t = this.timing;
    const base = Math.min(t.backoffMaxMs, t.backoffMinMs * 2 ** Math.max(0, this.failures - 1));
    const delay = base / 2 + this.env.random() * (base / 2);
    this.phase = "backoff";
    return new Promise((resolve) => {
      this.timer = this.env.clock.setTimeout(() => {
        this.timer = undefined;
        resolve();
      }, delay);
      this.timer.unref?.();
    });
  }

  private query(extra: Record<string, string | undefined>): string {
    const q = new URLSearchParams();
    if (this.selector.labelSelector) q.set("labelSelector", this.selector.labelSelector);
    if (this.selector.fieldSelector) q.set("fieldSelector", this.selector.fieldSelector);
    for (const [k, v] of Object.entries(extra)) if (v !== undefined) q.set(k, v);
    return `${this.path}?${q}`;
  }

  /** Lists every object (page by page) and replaces the collection with them. */
  private async list(): Promise<void> {
    this.phase = "listing";
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let version: string | undefined;
    do {
      const page = (await this.getJson(
        this.query({ limit: String(this.timing.pageSize), continue: cont }),
      )) as { metadata?: { resourceVersion?: string; continue?: string }; items?: KubeObject[] };
      if (this.stopped) return;
      for (const item of page.items ?? []) fresh.set(objectKey(item), this.type.project(item));
      version = page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    this.counts.lists++;
    this.resourceVersion = version;
    this.needList = false;
    this.failures = 0;
    this.lastSyncAt = this.env.clock.now();
    this.items.clear();
    for (const [k, v] of fresh) this.items.set(k, v);
    const first = !this.synced;
    this.synced = true;
    if (first) {
      this.env.log.debug("Kubernetes watch synced", {
        resource: this.type.plural,
        namespace: this.selector.namespace,
        objects: fresh.size,
      });
    }
    this.onChange(undefined);
  }

  private async getJson(path: string): Promise<unknown> {
    this.abort = new AbortController();
    const res = await this.conn.request({
      method: "GET",
      path,
      timeoutMs: this.timing.requestTimeoutMs,
      signal: this.abort.signal,
    });
    const body = await readBody(res, this.timing.requestTimeoutMs, this.env.clock);
    if (res.statusCode !== 200) throw statusError(res.statusCode ?? 0, body, path);
    try {
      return JSON.parse(body);
    } catch {
      throw new ApiError(`${path}: the API answered with a body that is not JSON`);
    }
  }

  /** Watches from the last version until the stream ends; applies events as they come. */
  private watch(): Promise<WatchEnd> {
    this.phase = "watching";
    this.counts.watches++;
    const [lo, hi] = this.timing.watchSecs;
    const secs = Math.floor(lo + this.env.random() * (hi - lo));
    const path = this.query({
      watch: "1",
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(secs),
    });
    this.abort = new AbortController();
    const signal = this.abort.signal;
    return this.conn
      .request({ method: "GET", path, timeoutMs: this.timing.requestTimeoutMs, signal })
      .then(async (res) => {
        if (res.statusCode !== 200) {
          const body = await readBody(res, this.timing.requestTimeoutMs, this.env.clock);
          throw statusError(res.statusCode ?? 0, body, path);
        }
        return new Promise<WatchEnd>((resolve) => {
          const decoder = new StringDecoder("utf8");
          let partial = "";
          let idle: Timer | undefined;
          let ended = false;
          const finish = (how: WatchEnd, error?: Error) => {
            if (ended) return;
            ended = true;
            if (idle) this.env.clock.clearTimeout(idle);
            res.destroy();
            if (error) this.recordError(error);
            resolve(how);
          };
          const armIdle = () => {
            if (idle) this.env.clock.clearTimeout(idle);
            idle = this.env.clock.setTimeout(
              () => finish("failed", new Error("the watch went silent")),
              this.timing.idleTimeoutMs,
            );
            idle.unref?.();
          };
          armIdle();
          res.on("data", (chunk: Buffer) => {
            armIdle();
            const lines = (partial + decoder.write(chunk)).split("\n");
            partial = lines.pop()!;
            const changed = new Set<string>();
            let end: WatchEnd | undefined;
            for (const line of lines) {
              if (line.trim() === "") continue;
              end = this.apply(line, changed);
              if (end) break;
            }
            if (changed.size > 0) this.onChange(changed);
            if (end) finish(end);
          });
          res.on("end", () => finish("closed"));
          res.on("error", (e) => finish("failed", e));
          res.on("close", () =>
            finish(signal.aborted ? "closed" : "failed", new Error("the watch connection closed")),
          );
        });
      });
  }

  /** Applies one watch event; returns how the stream ends when the event ends it. */
  private apply(line: string, changed: Set<string>): WatchEnd | undefined {
    let ev: { type?: string; object?: KubeObject };
    try {
      ev = JSON.parse(line);
    } catch {
      this.recordError(new Error("the watch sent a line that is not JSON"));
      return "failed";
    }
    const o = ev.object ?? {};
    const version = o.metadata?.resourceVersion;
    switch (ev.type) {
      case "ADDED":
      case "MODIFIED": {
        const key = objectKey(o);
        const view = this.type.project(o);
        const prev = this.items.get(key);
        if (prev === undefined || !sameView(prev, view)) {
          this.items.set(key, view);
          changed.add(key);
        }
        break;
      }
      case "DELETED": {
        const key = objectKey(o);
        if (this.items.delete(key)) changed.add(key);
        break;
      }
      case "BOOKMARK":
        break;
      case "ERROR": {
        const status = o as { code?: number; message?: string };
        if (status.code === 410) {
          this.env.log.info("Kubernetes watch expired; listing again", {
            resource: this.type.plural,
            namespace: this.selector.namespace,
          });
          return "gone";
        }
        this.recordError(new Error(`the watch reported an error: ${status.message ?? line}`));
        return "failed";
      }
      default:
        return undefined;
    }
    this.counts.events++;
    this.lastEventAt = this.env.clock.now();
    if (version) this.resourceVersion = version;
    return undefined;
  }
}

/** Reads a whole (small) response body, within `timeoutMs`. */
function readBody(
  res: import("node:http").IncomingMessage,
  timeoutMs: number,
  clock: Clock,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = clock.setTimeout(() => {
      res.destroy();
      reject(new ApiError(`the API did not send the whole answer within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref?.();
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => {
      clock.clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    res.on("error", (e) => {
      clock.clearTimeout(timer);
      reject(e);
    });
  });
}

/** An error for an answer other than 200, with the API's own message when it sent a Status. */
function statusError(status: number, body: string, path: string): ApiError {
  let message = "";
  try {
    const s = JSON.parse(body) as { message?: unknown };
    if (typeof s.message === "string") message = s.message;
  } catch {
    message = body.slice(0, 200);
  }
  const hint =
    status === 401
      ? " (the API did not accept lintel's credentials)"
      : status === 403
        ? " (lintel's service account lacks RBAC permission for this; see deploy/k8s)"
        : "";
  return new ApiError(`${path}: HTTP ${status}${hint}${message ? `: ${message}` : ""}`, status);
}
