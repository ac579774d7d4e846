// A running lintel: the routers of a config with their listeners, clients and naming,
// their metrics, and the admin server. Starts completely or not at all (a listener that
// cannot bind stops everything already started), and shuts down gracefully.

import { availableParallelism } from "node:os";
import type { LiveCertificates } from "../tls/certificate-set.js";
import type { CertificateStore } from "../tls/certificate-store.js";
import { AcmeService } from "./acme/service.js";
import { type AdminServer, startAdminServer } from "./admin/admin-server.js";
import { certificateGauges, certificatesView, type TlsServerStore } from "./admin/certificates.js";
import { clientsView, routerClientsView } from "./admin/clients.js";
import { ClientCache } from "./client/client-cache.js";
import type { RouterClientsView } from "./client/client-view.js";
import { clientParamsResolver } from "./client/params.js";
import { clientTlsBlocks, UpstreamTlsContexts } from "./client/upstream-tls.js";
import { coarseClock, systemClock } from "./clock.js";
import type { AcmeConfig } from "./config/acme-schema.js";
import type { LintelConfig } from "./config/config-schema.js";
import { CidrSet } from "./http/cidr.js";
import type { Interpreter } from "./interpreters/interpreter.js";
import type { KubeApi, KubeApiRef } from "./k8s/api.js";
import type { Logger } from "./log.js";
import { AccessLog } from "./routing/access-log.js";
import { clientStack } from "./routing/client-stack.js";
import { ConnectTunnels } from "./routing/connect-tunnel.js";
import { EgressPolicy } from "./routing/egress-policy.js";
import {
  buildNaming,
  buildWorkerNaming,
  type NamingSetup,
  routerLabel,
} from "./routing/naming-setup.js";
import { PolicyKinds } from "./routing/policy-kinds.js";
import { responseSettings } from "./routing/response-settings.js";
import { Router } from "./routing/router.js";
import { ServerStack } from "./routing/server-stack/server-stack.js";
import { ServicePolicies } from "./routing/service-policy.js";
import {
  type ServerCertificateSources,
  serverCertificateSources,
} from "./server/certificate-sources.js";
import { freePort } from "./server/free-port.js";
import type { Listener, TunnelRequest } from "./server/listener.js";
import { listenNode } from "./server/node-engine.js";
import { type ListenerTls, listenerTls, tlsPolicy } from "./server/tls-listener.js";
import { listenUws } from "./server/uws-engine.js";
import { Telemeters } from "./telemeters/telemeters.js";
import {
  type MetricsSnapshot,
  mergeSnapshots,
  processScope,
  Registry,
  RouterMetrics,
} from "./telemetry/index.js";
import { WorkerPool } from "./workers/pool.js";
import { serverKey } from "./workers/protocol.js";

export interface RuntimeOptions {
  readonly log: Logger;
  /** The config as written, served at /config.json. */
  readonly configJson?: () => unknown;
  /** Called when shutdown was requested through the admin server. */
  readonly onShutdownRequest?: () => void;
  /** The config's file and text as loaded: workers load the same. Needed to run workers. */
  readonly source?: { readonly file: string; readonly text: string };
  /** Set in a worker thread: serve only the uws servers, binding through the control thread. */
  readonly worker?: WorkerSide;
}

/** What a worker thread's runtime gets from the control thread. */
export interface WorkerSide {
  readonly interpreters: (router: string) => Interpreter;
  /** The Kubernetes API as the control thread's watches serve it. */
  readonly kube: (ref?: KubeApiRef) => KubeApi;
  /** Waits (bounded) for the first lists of the watches the worker's kinds started. */
  readonly kubeSynced: (timeoutMs: number) => Promise<void>;
  /** The control thread's HTTP-01 answers, when the config orders from ACME. */
  readonly acmeHttp: ((token: string) => Promise<string | undefined>) | undefined;
  /** Ports chosen for servers configured with port 0, by server key. */
  readonly ports: Readonly<Record<string, number>>;
  readonly certificates: (server: string) => LiveCertificates | undefined;
}

/** The non-file certificate sources of every TLS server that has some, by server key. */
async function certificateSourcesOf(
  config: LintelConfig,
  naming: NamingSetup,
  acme: AcmeService | undefined,
): Promise<Map<string, ServerCertificateSources>> {
  const out = new Map<string, ServerCertificateSources>();
  for (const [i, r] of config.routers.entries()) {
    for (const [j, s] of r.servers.entries()) {
      const label = routerLabel(r);
      const where = `router ${label} (routers[${i}].servers[${j}])`;
      try {
        const sources = await serverCertificateSources(s, r, `${label}/${j}`, {
          kube: naming.kube,
          acme,
        });
        if (sources) out.set(serverKey(label, j), sources);
      } catch (e) {
        throw new Error(`${where}: TLS: ${(e as Error).message}`);
      }
    }
  }
  return out;
}

/** The acme blocks of a config's servers. */
function acmeBlocks(config: LintelConfig): AcmeConfig[] {
  return config.routers.flatMap((r) => r.servers.flatMap((s) => (s.tls?.acme ? [s.tls.acme] : [])));
}

/** The number of workers a config asks for (`auto`: one per core). */
export function workerCount(config: LintelConfig): number {
  return config.workers === "auto" ? availableParallelism() : config.workers;
}

export interface BoundListener {
  readonly router: string;
  readonly server: number;
  readonly ip: string;
  readonly listener: Listener;
}

/** How long past the grace period a worker may take to report that it stopped. */
const WORKER_STOP_MARGIN_MS = 2000;

/** How long a CONNECT tunnel waits for its destination to accept the connection. */
const CONNECT_TIMEOUT_MS = 10_000;

export class Runtime {
  ready = false;
  /** Certificate stores of the TLS listeners, stopped at shutdown. */
  readonly tlsStores: CertificateStore[] = [];
  /** The ACME managers of the servers with an acme block (control thread). */
  acme: AcmeService | undefined;
  /** The TLS servers whose certificates this thread loads, for the admin server and metrics. */
  readonly tlsServers: TlsServerStore[] = [];
  /** CONNECT tunnels of the servers that accept them: waited for, then cut, at shutdown. */
  readonly tunnels: ConnectTunnels[] = [];
  /** The data-plane workers serving the uws servers, when there are any. */
  pool: WorkerPool | undefined;
  /** This thread's telemeters (the `telemetry` list). */
  telemeters: Telemeters | undefined;
  /** This thread's metrics (a worker's own; see metricsSnapshot() for all threads'). */
  readonly metrics = new Registry();
  private readonly certificateGauges = certificateGauges(this.metrics, () => this.tlsServers);
  private readonly startedAt = Date.now();
  /** This runtime serves a worker thread's share of the servers. */
  private inWorker = false;
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly config: LintelConfig,
    private readonly log: Logger,
    readonly naming: NamingSetup,
    readonly routers: Router[],
    private readonly clients: ClientCache[],
    private readonly accessLogs: AccessLog[],
    readonly listeners: BoundListener[],
    public admin: AdminServer | undefined,
  ) {}

  static async start(config: LintelConfig, opts: RuntimeOptions): Promise<Runtime> {
    const log = opts.log;
    const side = opts.worker;
    const naming = side
      ? buildWorkerNaming(config, log, side.interpreters, side.kube)
      : buildNaming(config, { log });
    // uws servers go to the workers when there are any; the control thread keeps the rest.
    const workers =
      side || !config.routers.some((r) => r.servers.some((s) => s.engine === "uws"))
        ? 0
        : workerCount(config);
    const routers: Router[] = [];
    const clients: ClientCache[] = [];
    const accessLogs: AccessLog[] = [];
    const listeners: BoundListener[] = [];
    const rt = new Runtime(config, log, naming, routers, clients, accessLogs, listeners, undefined);
    rt.inWorker = side !== undefined;
    const upstreamTls = new UpstreamTlsContexts();
    const kindContext = {
      log,
      clock: systemClock,
      random: Math.random,
      kube: side ? side.kube : (ref?: KubeApiRef) => naming.kube!.get(ref),
    };
    const policyKinds = new PolicyKinds(kindContext);
    /** uws servers the workers will serve: their key, address and certificates. */
    const forWorkers: { key: string; router: string; index: number; ip: string; port: number }[] =
      [];
    const workerCertificates = new Map<string, LiveCertificates>();
    try {
      rt.telemeters = new Telemeters(config.telemetry, kindContext);
      const blocks = side ? [] : acmeBlocks(config);
      if (blocks.length > 0) {
        rt.acme = new AcmeService({
          log,
          clock: systemClock,
          random: Math.random,
          kube: (ref) => naming.kube!.get(ref),
          metrics: rt.metrics,
          blocks,
        });
      }
      const certSources = side ? new Map() : await certificateSourcesOf(config, naming, rt.acme);
      // HTTP-01 answers: every plain-HTTP server, when some server orders from ACME.
      const acmeHttp = side
        ? side.acmeHttp
        : rt.acme && ((token: string) => rt.acme!.httpAnswer(token));
      // Kinds watching Kubernetes objects (Ingresses, ConfigMaps, Secrets) have started
      // their watches: serve once they have listed what is there (bounded).
      if (side) await side.kubeSynced(config.kubernetes.initialSyncTimeoutMs);
      else await naming.kube?.waitForSync();
      for (const [i, r] of config.routers.entries()) {
        const label = routerLabel(r);
        const rlog = log.child({ router: label });
        // Load every client TLS file now, so a bad one stops startup rather than a request.
        for (const { path, tls } of clientTlsBlocks(r.client, `routers[${i}].client`)) {
          try {
            upstreamTls.get(tls);
          } catch (e) {
            throw new Error(`router ${label} (${path}): TLS: ${(e as Error).message}`);
          }
        }
        const metrics = new RouterMetrics(rt.metrics, label);
        const egress = r.egress ? new EgressPolicy(r.egress) : undefined;
        const cache = new ClientCache(
          clientStack({
            paramsFor: clientParamsResolver(r.client),
            kinds: policyKinds,
            tlsContexts: upstreamTls,
            metrics,
            clock: coarseClock,
            log: rlog,
            egress,
          }),
          r.bindingCache.clients,
          r.bindingCache.idleTtlSecs * 1000,
        );
        clients.push(cache);
        const accessLog = r.httpAccessLog ? new AccessLog(r.httpAccessLog, rlog) : undefined;
        if (accessLog) accessLogs.push(accessLog);
        const limits = {
          maxTargetBytes: r.maxInitialLineKB * 1024,
          maxHeaderBytes: r.maxHeadersKB * 1024,
          maxHeaderCount: r.maxHeaderCount,
          maxBodyBytes: r.maxRequestKB === undefined ? undefined : r.maxRequestKB * 1024,
        };
        const router = new Router(label, {
          naming: naming.routers.get(label)!,
          clients: cache,
          log: rlog,
          accessLog,
          limits,
          bindingCacheSize: r.bindingCache.paths,
          bindingIdleTtlMs: r.bindingCache.idleTtlSecs * 1000,
          egress,
          metrics,
          services: new ServicePolicies(r.service, policyKinds, metrics, coarseClock),
          response: responseSettings(r),
          observer: rt.telemeters.observer,
        });
        routers.push(router);
        for (const [j, s] of r.servers.entries()) {
          const key = serverKey(label, j);
          const where = `router ${label} (routers[${i}].servers[${j}])`;
          const inWorker = s.engine === "uws" && workers > 0;
          if (side && s.engine !== "uws") continue;
          let tls: ListenerTls | undefined;
          let localStore: CertificateStore | undefined;
          if (s.tls) {
            const slog = rlog.child({ server: `${s.ip}:${s.port}` });
            try {
              if (side) {
                const remote = side.certificates(key);
                if (!remote) throw new Error("the control thread sent no certificates");
                tls = tlsPolicy(s.tls, remote, slog);
              } else {
                const sources = certSources.get(key);
                const local = listenerTls(s.tls, slog, sources);
                rt.tlsStores.push(local.store);
                localStore = local.store;
                tls = sources?.acmeHooks ? { ...local, acme: sources.acmeHooks } : local;
              }
            } catch (e) {
              throw new Error(`${where}: TLS: ${(e as Error).message}`);
            }
          }
          if (inWorker) {
            if (tls) workerCertificates.set(key, tls.store);
            const port = s.port === 0 ? await freePort(s.ip) : s.port;
            forWorkers.push({ key, router: label, index: j, ip: s.ip, port });
            if (localStore)
              rt.tlsServers.push({
                router: label,
                server: j,
                address: `${s.ip}:${port}`,
                store: localStore,
              });
            continue;
          }
          const server = new ServerStack(s, {
            routerLabel: label,
            limits,
            acmeHttp: s.tls ? undefined : acmeHttp,
          });
          let onConnect: ((req: TunnelRequest) => void) | undefined;
          if (s.connect) {
            const tunnels = new ConnectTunnels(CONNECT_TIMEOUT_MS);
            rt.tunnels.push(tunnels);
            onConnect = (req) => router.tunnel(req, server, tunnels);
          }
          const listen = s.engine === "uws" ? listenUws : listenNode;
          const port = side?.ports[key] ?? s.port;
          let listener: Listener;
          try {
            listener = await listen(
              {
                ip: s.ip,
                port,
                // A backstop for the engine's parser; the router checks the exact limits.
                maxHeaderBytes: Math.max(
                  64 * 1024,
                  2 * (r.maxHeadersKB + r.maxInitialLineKB) * 1024,
                ),
                tls,
                proxyProtocolFrom: s.proxyProtocol ? new CidrSet(s.proxyProtocolFrom) : undefined,
                headersTimeoutMs: s.headersTimeoutMs,
                maxConnections: s.maxConnections,
                onConnect,
              },
              (ex) => router.handle(ex, server),
            );
          } catch (e) {
            const err = e as NodeJS.ErrnoException;
            throw new Error(
              `${where} cannot listen on ${s.ip}:${port}: ${err.code ?? err.message}`,
            );
          }
          // Named by the port it listens on (the one chosen, for port 0).
          server.stats = metrics.server(s.ip, listener.port);
          if (localStore) {
            rt.tlsServers.push({
              router: label,
              server: j,
              address: `${s.ip}:${listener.port}`,
              store: localStore,
            });
          }
          listeners.push({ router: label, server: j, ip: s.ip, listener });
          rlog.info("listening", {
            engine: s.engine,
            address: `${s.ip}:${listener.port}`,
            tls: tls ? `${tls.store.current.names.size} names` : undefined,
          });
        }
      }
      const restarts = side ? undefined : rt.processMetrics(workers);
      if (forWorkers.length > 0) {
        if (!opts.source) throw new Error("workers need the config's source text");
        const pool = new WorkerPool({
          count: workers,
          source: opts.source,
          naming,
          log,
          ports: Object.fromEntries(forWorkers.map((w) => [w.key, w.port])),
          certificates: workerCertificates,
          restarts,
          acmeHttp: acmeHttp,
        });
        rt.pool = pool;
        await pool.start();
        for (const w of forWorkers) {
          listeners.push({
            router: w.router,
            server: w.index,
            ip: w.ip,
            listener: pool.listener(w.port),
          });
          log.info("listening", {
            router: w.router,
            engine: "uws",
            address: `${w.ip}:${w.port}`,
            workers,
          });
        }
      }
      for (const t of rt.tlsStores) t.start();
      // Every listener that answers challenges is up: ACME may order now.
      rt.acme?.start();
      if (!side) {
        rt.admin = await startAdminServer(
          {
            log: log.child({ component: "admin" }),
            routers: naming.routers,
            configJson: opts.configJson ?? (() => ({})),
            isReady: () => rt.ready,
            shutdown: () => opts.onShutdownRequest?.(),
            metrics: () => rt.metricsSnapshot(),
            namers: naming.namers,
            kubernetes: () => naming.kube?.status() ?? [],
            certificates: () => certificatesView(rt.tlsServers, rt.acme),
            // This thread's clients when it serves some servers itself, and the workers'.
            clients: () =>
              clientsView(
                listeners.length > forWorkers.length ? () => rt.clientsView() : undefined,
                rt.pool,
              ),
            routes: rt.telemeters.adminRoutes({
              metrics: () => rt.metricsSnapshot(),
              own: listeners.length > forWorkers.length,
              workers: rt.pool,
            }),
          },
          config.admin.ip,
          config.admin.port,
        ).catch((e: NodeJS.ErrnoException) => {
          throw new Error(
            `the admin server cannot listen on ${config.admin.ip}:${config.admin.port}: ${e.code ?? e.message}`,
          );
        });
        log.info("admin server listening", { address: `${config.admin.ip}:${rt.admin.port}` });
      }
    } catch (e) {
      await rt.shutdown(0);
      throw e;
    }
    rt.ready = true;
    return rt;
  }

  /** `process/…`: workers configured and serving, restarts, uptime. Returns the restart counter. */
  private processMetrics(workers: number) {
    const p = processScope(this.metrics);
    p.gauge("workers", () => workers);
    p.gauge("workers_live", () => this.pool?.readyCount ?? 0);
    p.gauge("uptime_ms", () => Date.now() - this.startedAt);
    return p.counter("worker_restarts");
  }

  /** Each router's clients and their endpoints as this thread sees them (/admin/clients.json). */
  clientsView(): RouterClientsView[] {
    return this.routers.map((r, i) => routerClientsView(r.label, this.clients[i]!));
  }

  /**
   * Every thread's metrics added up: this thread's now, each worker's as of its last
   * report (at most a second old), and what workers that ended had counted.
   */
  metricsSnapshot(): MetricsSnapshot {
    this.certificateGauges();
    const own = this.metrics.snapshot();
    return this.pool ? mergeSnapshots([own, ...this.pool.metrics()]) : own;
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `graceMs` (the admin
   * `shutdownGraceMs` by default), then closes everything.
   */
  shutdown(graceMs = this.config.admin.shutdownGraceMs): Promise<void> {
    this.stopping ??= this.drainAndClose(graceMs);
    return this.stopping;
  }

  private async drainAndClose(graceMs: number): Promise<void> {
    this.ready = false;
    // Load balancers learn of the shutdown from /admin/ready; keep serving until they have.
    // (A worker is told to drain once the control thread has waited.)
    const delay = graceMs > 0 && !this.inWorker ? this.config.admin.drainDelayMs : 0;
    if (delay > 0) {
      this.log.info("not ready; still serving while load balancers notice", {
        drainDelayMs: delay,
      });
      await new Promise((r) => setTimeout(r, delay));
    }
    for (const r of this.routers) r.draining = true;
    // Workers drain the same way, each within the grace period.
    const workersDone = this.pool?.shutdown(graceMs);
    for (const l of this.listeners) {
      l.listener.stopAccepting();
      l.listener.closeIdle();
    }
    const inflight = this.routers.reduce((n, r) => n + r.inflight, 0) + (this.pool?.inflight ?? 0);
    const tunnels = this.tunnels.reduce((n, t) => n + t.count, 0);
    if (inflight + tunnels > 0) this.log.info("draining", { inflight, tunnels, graceMs });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([
        ...this.routers.map((r) => r.idle()),
        ...this.tunnels.map((t) => t.idle()),
        workersDone,
      ]),
      new Promise<void>((r) => {
        // A moment beyond the grace period for the workers to report back.
        timer = setTimeout(r, graceMs + (this.pool ? WORKER_STOP_MARGIN_MS : 0));
      }),
    ]);
    clearTimeout(timer);
    await this.pool?.stop();
    const left = this.routers.reduce((n, r) => n + r.inflight, 0);
    if (left > 0)
      this.log.warn("grace period over; closing requests still in flight", { inflight: left });
    for (const l of this.listeners) l.listener.destroy();
    for (const t of this.tunnels) t.destroyAll();
    for (const t of this.tlsStores) t.stop();
    await this.acme?.close();
    for (const r of this.routers) r.close();
    // The grace period is over: cut whatever upstream requests remain.
    await Promise.all(this.clients.map((c) => c.close(true)));
    this.naming.close();
    await Promise.all(this.accessLogs.map((a) => a.close()));
    await this.telemeters?.close();
    await this.admin?.close();
  }
}
