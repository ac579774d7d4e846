// The messages between the control thread and the data-plane workers. The control
// thread owns the config, namers, DNS, file watches and certificates; a worker serves
// requests with its own listeners, pools and caches, and asks the control thread to bind
// names. Everything here survives structured cloning (no functions, no class instances).

import type { RouterClientsView } from "../client/client-view.js";
import type { KubeApiRef, WatchSelector } from "../k8s/api.js";
import type { MetricsSnapshot } from "../telemetry/index.js";
import type { TapBatch, TapFilter } from "../telemetry/tap-point.js";

/** A name tree whose bound leaves refer to address sets by number. */
export type WireTree =
  | { readonly kind: "leaf"; readonly id: string; readonly residual: string; readonly addr: number }
  | { readonly kind: "alt"; readonly trees: readonly WireTree[] }
  | { readonly kind: "union"; readonly trees: readonly { weight: number; tree: WireTree }[] }
  | { readonly kind: "neg" | "fail" | "empty" };

export type WireState =
  | { readonly status: "pending" }
  | { readonly status: "ok"; readonly tree: WireTree }
  | { readonly status: "failed"; readonly error: string };

export interface WireAddress {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly meta: Readonly<Record<string, string | number | boolean>>;
}

export type WireAddr =
  | { readonly kind: "pending" | "neg" }
  | { readonly kind: "failed"; readonly error: string }
  | { readonly kind: "bound"; readonly addresses: readonly WireAddress[] };

/** A certificate as a worker's TLS listener needs it. */
export interface WireCertificate {
  readonly names: readonly string[];
  readonly fingerprint: string;
  readonly chainPem: string;
  readonly keyPem: string;
  readonly passphrase: string | undefined;
}

/** The certificates of one TLS server: the default first. */
export interface WireCertificates {
  readonly server: string;
  readonly certs: readonly WireCertificate[];
}

/** Where a worker finds its config, and the ports the control thread chose. */
export interface WorkerInit {
  readonly type: "init";
  readonly index: number;
  readonly configText: string;
  readonly configFile: string;
  /** `router label/server index` → port, for servers configured with port 0. */
  readonly ports: Readonly<Record<string, number>>;
  readonly certificates: readonly WireCertificates[];
  /** The control thread's shared memory (shared, not copied). */
  readonly arena: SharedArrayBuffer;
}

export type ToWorker =
  | WorkerInit
  | { readonly type: "bound"; readonly sub: number; readonly state: WireState }
  | { readonly type: "addr"; readonly addr: number; readonly value: WireAddr }
  /** No tree of the worker refers to address set `addr` any more. */
  | { readonly type: "addr-drop"; readonly addr: number }
  | { readonly type: "certificates"; readonly update: WireCertificates }
  | KubeItems
  /** The answer to an acme-http question (undefined: no such challenge). */
  | { readonly type: "acme-http-answer"; readonly id: number; readonly answer: string | undefined }
  /** Asks for the worker's clients and their endpoints now (/admin/clients.json). */
  | { readonly type: "clients"; readonly id: number }
  /** Asks for the state of the telemeter at `telemetry[telemeter]` in this worker (its admin pages). */
  | { readonly type: "telemeter-state"; readonly id: number; readonly telemeter: number }
  /** The taps open now (`lintel tap`): the whole list at each change; [] stops the flow. */
  | { readonly type: "taps"; readonly filters: readonly TapFilter[] }
  | { readonly type: "shutdown"; readonly graceMs: number }
  /** End now, whatever is in flight (the grace period is over). */
  | { readonly type: "stop" };

/**
 * A change to a worker's copy of a Kubernetes watch: with `reset`, `upserts` is the
 * whole collection; otherwise only what changed. Views are plain objects.
 */
export interface KubeItems {
  readonly type: "kube-items";
  readonly sub: number;
  readonly synced: boolean;
  readonly reset: boolean;
  readonly upserts: readonly (readonly [string, unknown])[];
  readonly deletes: readonly string[];
}

/** What a worker counts, summed by the control thread for the admin server. */
export interface WorkerStats {
  readonly inflight: number;
  /** Requests handled since the worker started. */
  readonly requests: number;
}

export type FromWorker =
  | { readonly type: "ready" }
  | {
      readonly type: "log";
      readonly level: "debug" | "info" | "warn" | "error";
      readonly msg: string;
      readonly fields: Readonly<Record<string, string | number | boolean | undefined>>;
    }
  | { readonly type: "failed"; readonly error: string }
  | {
      readonly type: "bind";
      readonly sub: number;
      readonly router: string;
      readonly dtab: string;
      readonly path: string;
    }
  | { readonly type: "unbind"; readonly sub: number }
  /** The ACME HTTP-01 answer for a token (the control thread keeps the challenges). */
  | { readonly type: "acme-http"; readonly id: number; readonly token: string }
  /** Keep the worker's copy of a Kubernetes watch (by `resourceId`) up to date, for its life. */
  | {
      readonly type: "kube-watch";
      readonly sub: number;
      readonly ref: KubeApiRef | undefined;
      readonly resource: string;
      readonly selector: WatchSelector;
    }
  /** Sent every second (and once more when the worker drains): its counts and metrics. */
  | { readonly type: "stats"; readonly stats: WorkerStats; readonly metrics: MetricsSnapshot }
  /** The answer to a `clients` question: each router's clients as this worker sees them. */
  | {
      readonly type: "clients";
      readonly id: number;
      readonly routers: readonly RouterClientsView[];
    }
  /** The answer to a `telemeter-state` question: the telemeter's threadState(), or why none. */
  | { readonly type: "telemeter-state"; readonly id: number; readonly state: unknown }
  | { readonly type: "telemeter-state"; readonly id: number; readonly error: string }
  /** Finished requests matching the open taps, sent every TAP_FLUSH_MS while some match. */
  | { readonly type: "tap"; readonly batches: readonly TapBatch[] }
  | { readonly type: "stopped" };

/** The key of a server in `ports` and certificate updates. */
export function serverKey(router: string, index: number): string {
  return `${router}/${index}`;
}
