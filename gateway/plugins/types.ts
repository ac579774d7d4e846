// What each plugin category is given when created, and what it returns.

import type { DnsProvider } from "../../tls/acme/dns-provider.js";
import type { AcmeStorage } from "../../tls/acme/storage.js";
import type { CertificateSource } from "../../tls/certificate-store.js";
import type { FailureAccrualPolicy } from "../client/accrual/accrual.js";
import type { LoadBalancerFactory } from "../client/balancers/balancer.js";
import type { Clock } from "../clock.js";
import type { PluginConfig } from "../config/plugin-schema.js";
import type { RequestLimits } from "../http/request-checks.js";
import type { Identifier } from "../identifiers/identifier.js";
import type { Interpreter } from "../interpreters/interpreter.js";
import type { KubeApi, KubeApiRef } from "../k8s/api.js";
import type { RateLimitStore } from "../layers/limits/store.js";
import type { Logger } from "../log.js";
import type { HostResolver } from "../namers/dns.js";
import type { Dtab, Namer, NamerLookup, Path, Transformer } from "../naming/index.js";
import type { Backoff } from "../policy/backoff.js";
import type { ResponseClassifier } from "../policy/classifier.js";
import type { RedisClients } from "../redis-clients.js";
import type { ServerLayer } from "../routing/server-stack/layer.js";
import type { SharedArena } from "../shared-arena.js";
import type { Telemeter } from "../telemeters/telemeter.js";
import type { Registry } from "../telemetry/registry.js";

/** What every kind is given: shared services, so no kind builds its own. */
export interface PluginContext {
  readonly log: Logger;
  readonly clock: Clock;
  /** A random number in [0, 1): injected, so balancers and jitter are testable. */
  readonly random: () => number;
  /**
   * The Kubernetes API at `ref` (a kind's Linkerd `host`/`port`), or where the config's
   * `kubernetes` block says when `ref` gives neither: one shared connection per endpoint.
   */
  readonly kube: (ref?: KubeApiRef) => KubeApi;
}

export interface IdentifierContext extends PluginContext {
  /** The router's dstPrefix (default /svc). */
  readonly dstPrefix: Path;
}

export interface NamerContext extends PluginContext {
  /** Where the namer is mounted, `/#/<prefix>`; bound ids start with it. */
  readonly prefix: Path;
  /** Host names to addresses, with the `dns` block's TTLs (e.g. a load balancer's hostname). */
  readonly resolver: HostResolver;
}

export interface TransformerContext extends PluginContext {
  /** The transformer's id prefix, `/%/<prefix>`, to put in front of bound ids. */
  readonly prefix: Path;
  /** Resolves names through the `/$/` namers only (for io.l5d.replace / io.l5d.const). */
  readonly globalNamers: NamerLookup;
  readonly resolver: HostResolver;
}

export interface InterpreterContext extends PluginContext {
  readonly label: string;
  readonly routerDtab: Dtab;
  /** Configured namers (by prefix), then the `/$/` namers. */
  readonly namers: NamerLookup;
  readonly transformers: readonly Transformer[];
}

export interface CertSourceContext extends PluginContext {
  /** The router's identifiers: a source of Ingress Secrets serves what its io.l5d.ingress serves. */
  readonly identifiers: readonly PluginConfig<"identifier">[];
}

export interface ServerLayerContext extends PluginContext {
  readonly routerLabel: string;
  /** This thread's metrics (merged over the threads by the admin server). */
  readonly metrics: Registry;
  /** Memory every thread of the process shares (a limit's counts). */
  readonly arena: SharedArena;
  /** This thread's Redis connections, one per address. */
  readonly redis: RedisClients;
  /** The router's limits on request heads and bodies. */
  readonly limits: RequestLimits;
  /** The ACME HTTP-01 answer for a token (plain-HTTP servers, when the config uses ACME). */
  readonly acmeHttp?: (token: string) => Promise<string | undefined>;
}

/** A namer instance; `close` stops its watches; `state` is its /namer_state/<prefix>.json. */
export interface NamerInstance extends Namer {
  close?(): void;
  state?(): unknown;
}

export interface PluginContexts {
  identifier: IdentifierContext;
  namer: NamerContext;
  transformer: TransformerContext;
  interpreter: InterpreterContext;
  /** Where ACME state and locks live (dir, redis, kubernetes). */
  acmeStorage: PluginContext;
  /** Who publishes DNS-01 TXT records (exec). */
  dnsProvider: PluginContext;
  loadBalancer: PluginContext;
  /** A failure accrual policy gets the backoff of its dead endpoints (its `backoff` block). */
  failureAccrual: PluginContext & { readonly backoff: Backoff };
  backoff: PluginContext;
  responseClassifier: PluginContext;
  /** Made in every thread that serves requests (and the control thread, for its admin routes). */
  telemeter: PluginContext & {
    /** This thread's metrics (a tracer counts the spans it sends and drops there). */
    readonly metrics?: Registry;
  };
  /** Made on the control thread when a TLS server starts (`tls.certs`). */
  certSource: CertSourceContext;
  /** Made once per server, in the thread that serves it (`layers`). */
  serverLayer: ServerLayerContext;
  /** Made by the rateLimit layer that names it (`store`), with that layer's context. */
  rateLimitStore: ServerLayerContext;
}

/** An identifier instance; `close` stops its watches (io.l5d.ingress). */
export interface IdentifierInstance extends Identifier {
  close?(): void;
}

export interface PluginInstances {
  identifier: IdentifierInstance;
  namer: NamerInstance;
  transformer: Transformer;
  interpreter: Interpreter;
  acmeStorage: AcmeStorage;
  dnsProvider: DnsProvider;
  loadBalancer: LoadBalancerFactory;
  failureAccrual: FailureAccrualPolicy;
  backoff: Backoff;
  responseClassifier: ResponseClassifier;
  telemeter: Telemeter;
  /** Files, a folder, or a live source of PEM pairs (tls/live-source.ts). */
  certSource: CertificateSource;
  serverLayer: ServerLayer;
  rateLimitStore: RateLimitStore;
}
