// One Kubernetes API endpoint as the kinds see it: shared watches (one list+watch per
// resource and selector, however many kinds use it), kept while someone subscribes and
// for a while after, and status writes.

import type { Clock, Timer } from "../clock.js";
import type { Logger } from "../log.js";
import type { KubeApi, KubeWatch, KubeWriter, WatchSelector } from "./api.js";
import type { ApiConnection } from "./connection.js";
import {
  DEFAULT_TIMING,
  Reflector,
  type ReflectorStatus,
  type ReflectorTiming,
} from "./reflector.js";
import { collectionPath, objectPath, type ResourceType } from "./resources.js";

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

  private async patchStatus(
    type: ResourceType<unknown>,
    namespace: string,
    name: string,
    status: unknown,
  ): Promise<void> {
    const path = `${objectPath(type, namespace, name)}/status`;
    const res = await this.conn.request({
      method: "PATCH",
      path,
      body: JSON.stringify({ status }),
      contentType: "application/merge-patch+json",
      timeoutMs: (this.opts.timing ?? DEFAULT_TIMING).requestTimeoutMs,
    });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    if (res.statusCode !== 200) {
      const body = Buffer.concat(chunks).toString("utf8");
      let message = body.slice(0, 200);
      try {
        message = (JSON.parse(body) as { message?: string }).message ?? message;
      } catch {
        // not a Status: the raw text says it
      }
      throw new Error(`PATCH ${path}: HTTP ${res.statusCode}: ${message}`);
    }
  }
}
