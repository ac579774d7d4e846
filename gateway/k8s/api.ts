// What a kind sees of the Kubernetes API: shared, live collections of the objects it
// needs, and (in the control thread) a way to write status and objects. A kind never opens
// its own connection; it asks its context for the API and watches through it. In a worker
// thread the same interface is served by the control thread's watches.

import type { KubeObject, ResourceType } from "./resources.js";

/** Which objects of a resource: one namespace or all, and the API's selectors. */
export interface WatchSelector {
  /** Undefined watches every namespace (or a cluster-scoped resource). */
  readonly namespace?: string;
  /** The API's label selector syntax, e.g. `app=web,tier!=db`. */
  readonly labelSelector?: string;
  /** The API's field selector syntax, e.g. `metadata.name=lintel`. */
  readonly fieldSelector?: string;
}

/**
 * A live collection of the objects a selector matches, as views. It is kept by list +
 * watch while it has subscribers. When the API is unreachable it keeps the last known
 * objects (it never drops to empty because the API blinked).
 */
export interface KubeWatch<T> {
  /** The objects by `namespace/name` (cluster-scoped: `name`). Empty until the first list. */
  readonly items: ReadonlyMap<string, T>;
  /** True once a first list has completed: `items` is what the API holds, not a guess. */
  readonly synced: boolean;
  /**
   * Calls `listener` after each change with the keys that changed (added, modified or
   * deleted), or undefined when any may have (a first list or a relist). The first
   * subscriber starts the watch. Returns the function that unsubscribes.
   */
  subscribe(listener: (changed: ReadonlySet<string> | undefined) => void): () => void;
  /** Resolves true once synced, or false if `timeoutMs` passes first. Needs a subscriber. */
  whenSynced(timeoutMs: number): Promise<boolean>;
  /** What the admin server shows of it (Linkerd's /namer_state). */
  status(): WatchStatus;
}

/** A watch's state: what it covers, whether it has listed, when it last heard, what failed. */
export interface WatchStatus {
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly labelSelector: string | undefined;
  readonly fieldSelector: string | undefined;
  readonly phase: "idle" | "listing" | "watching" | "backoff" | "stopped" | "remote";
  readonly synced: boolean;
  readonly objects: number;
  readonly resourceVersion: string | undefined;
  readonly lastSyncAt: string | undefined;
  readonly lastEventAt: string | undefined;
  readonly lists: number;
  readonly watches: number;
  readonly events: number;
  readonly errors: number;
  readonly lastError: { readonly at: string; readonly message: string } | undefined;
}

/**
 * Writes, allowed in the control thread only (one writer per process): status patches,
 * and whole objects as the API holds them (for kinds that keep state in the cluster, such
 * as the kubernetes ACME storage). Each call is one request (a list: one per page), all of
 * it bounded by the request timeout. A failure names the object and carries the API's
 * message; a 409 is a KubeConflictError.
 */
export interface KubeWriter {
  /** Merge-patches the status subresource of an object. */
  patchStatus(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
    status: unknown,
  ): Promise<void>;
  /** The object, or undefined when there is none (404). */
  get(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
  ): Promise<KubeObject | undefined>;
  /** Creates `object` (its apiVersion and kind are the type's); KubeConflictError "AlreadyExists" when the name is taken. */
  create(type: ResourceType<unknown>, namespace: string, object: KubeObject): Promise<KubeObject>;
  /**
   * Replaces the object (PUT). With `object.metadata.resourceVersion` the write happens
   * only if the object is still at that version, else KubeConflictError "Conflict".
   */
  replace(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
    object: KubeObject,
  ): Promise<KubeObject>;
  /** Deletes the object; one that is already gone (404) is no error. */
  delete(type: ResourceType<unknown>, namespace: string, name: string): Promise<void>;
  /** Every object in `namespace` matching `labelSelector` (the API's syntax), page by page. */
  list(
    type: ResourceType<unknown>,
    namespace: string,
    labelSelector?: string,
  ): Promise<KubeObject[]>;
}

/** The API refused a request: its HTTP status, its Status reason, and its message in `message`. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** The Status object's reason (NotFound, Forbidden, Conflict, ...), when the API sent one. */
    readonly reason: string | undefined,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
}

/**
 * HTTP 409: a create found the name taken (reason "AlreadyExists"), or a write named a
 * resourceVersion the object has moved past (reason "Conflict"): someone else wrote first.
 */
export class KubeConflictError extends KubeApiError {
  constructor(message: string, reason: string | undefined) {
    super(message, 409, reason);
    this.name = "KubeConflictError";
  }
}

export interface KubeApi {
  /** The server and how lintel reaches it, for logs and messages. */
  readonly description: string;
  /** The shared watch of `type` objects matching `selector`: asking twice gives the same one. */
  watch<T>(type: ResourceType<T>, selector?: WatchSelector): KubeWatch<T>;
  /** Undefined in worker threads. */
  readonly writer: KubeWriter | undefined;
}

/** Where a kind's config says the API is: Linkerd's `host`/`port` (a kubectl proxy). */
export interface KubeApiRef {
  readonly host?: string;
  readonly port?: number;
}
