// The control thread's part of starting a runtime (see thread-role.ts): discovery with
// its own Kubernetes watches, ACME, the certificate sources of the TLS servers, the uws
// servers handed to worker threads when the config asks for workers, and the admin
// server (with `lintel stat`'s and `lintel tap`'s pages).

import { availableParallelism } from "node:os";
import type { LiveCertificates } from "../tls/certificate-set.js";
import { AcmeService } from "./acme/service.js";
import { adminToken } from "./admin/access.js";
import { startAdminServer } from "./admin/admin-server.js";
import { certificatesView } from "./admin/certificates.js";
import { clientsView } from "./admin/clients.js";
import { REQUEST_STATS_PATH, TAP_PATH } from "./admin/paths.js";
import { requestStatsRoute } from "./admin/request-stats-page.js";
import { TapHub } from "./admin/tap-hub.js";
import { tapRoute } from "./admin/tap-route.js";
import { systemClock } from "./clock.js";
import type { AcmeConfig } from "./config/acme-schema.js";
import type { LintelConfig, ServerConfig } from "./config/config-schema.js";
import type { KubeApi, KubeApiRef } from "./k8s/api.js";
import type { Logger } from "./log.js";
import type { PluginContext } from "./plugins/types.js";
import { buildNaming, type NamingSetup, routerLabel } from "./routing/naming-setup.js";
import type { Runtime, RuntimeOptions } from "./runtime.js";
import {
  type ServerCertificateSources,
  serverCertificateSources,
} from "./server/certificate-sources.js";
import { engineNotes } from "./server/engine-notes.js";
import { freePort } from "./server/free-port.js";
import { type ListenerTls, listenerTls } from "./server/tls-listener.js";
import { SharedArena } from "./shared-arena.js";
import type { AdminRouteHandler } from "./telemeters/telemeters.js";
import { processScope } from "./telemetry/index.js";
import type { HandedOver, Placement, ServerTlsSetup, ThreadRole } from "./thread-role.js";
import { WorkerPool } from "./workers/pool.js";
import { serverKey } from "./workers/protocol.js";

/** The number of workers a config asks for (`auto`: one per core). */
export function workerCount(config: LintelConfig): number {
  return config.workers === "auto" ? availableParallelism() : config.workers;
}

export class ControlThread implements ThreadRole {
  readonly naming: NamingSetup;
  readonly isWorker = false;
  readonly arena = new SharedArena();
  acmeHttp: ((token: string) => Promise<string | undefined>) | undefined;
  /** Worker threads for the uws servers: none when no server is uws. */
  private readonly workers: number;
  private sources = new Map<string, ServerCertificateSources>();
  private readonly handed: HandedOver[] = [];
  private readonly workerCertificates = new Map<string, LiveCertificates>();

  constructor(
    private readonly config: LintelConfig,
    private readonly log: Logger,
    private readonly opts: RuntimeOptions,
  ) {
    this.naming = buildNaming(config, { log });
    const uws = config.routers.some((r) => r.servers.some((s) => s.engine === "uws"));
    this.workers = uws ? workerCount(config) : 0;
    // What the engines do differently (lintel check says the same).
    for (const note of engineNotes(config)) log.warn(note);
  }

  kube(ref?: KubeApiRef): KubeApi {
    return this.naming.kube!.get(ref);
  }

  async prepare(rt: Runtime): Promise<void> {
    this.naming.resolver.reportTo?.(rt.metrics);
    const blocks = acmeBlocks(this.config);
    if (blocks.length > 0) {
      rt.acme = new AcmeService({
        log: this.log,
        clock: systemClock,
        random: Math.random,
        kube: (ref) => this.kube(ref),
        metrics: rt.metrics,
        blocks,
      });
    }
    this.sources = await certificateSourcesOf(this.config, rt.acme, {
      log: this.log,
      clock: systemClock,
      random: Math.random,
      kube: (ref) => this.kube(ref),
    });
    // HTTP-01 answers: every plain-HTTP server, when some server orders from ACME.
    const acme = rt.acme;
    this.acmeHttp = acme && ((token: string) => acme.httpAnswer(token));
    // Kinds watching Kubernetes objects (Ingresses, ConfigMaps, Secrets) have started
    // their watches: serve once they have listed what is there (bounded).
    await this.naming.kube?.waitForSync();
  }

  placement(s: ServerConfig): Placement {
    return s.engine === "uws" && this.workers > 0 ? "workers" : "here";
  }

  serverTls(s: ServerConfig, key: string, log: Logger): ServerTlsSetup {
    const sources = this.sources.get(key)!;
    const local = listenerTls(s.tls!, log, sources);
    return {
      tls: sources.acmeHooks ? { ...local, acme: sources.acmeHooks } : local,
      store: local.store,
    };
  }

  port(s: ServerConfig): number {
    return s.port;
  }

  async handOver(
    s: ServerConfig,
    server: Omit<HandedOver, "port">,
    tls: ListenerTls | undefined,
  ): Promise<HandedOver> {
    if (tls) this.workerCertificates.set(server.key, tls.store);
    // Port 0: chosen here, so every worker listens on the same one.
    const handed = { ...server, port: s.port === 0 ? await freePort(s.ip) : s.port };
    this.handed.push(handed);
    return handed;
  }

  async startWorkers(rt: Runtime): Promise<void> {
    const restarts = processMetrics(rt, this.workers);
    if (this.handed.length === 0) return;
    if (!this.opts.source) throw new Error("workers need the config's source text");
    const pool = new WorkerPool({
      count: this.workers,
      source: this.opts.source,
      naming: this.naming,
      log: this.log,
      ports: Object.fromEntries(this.handed.map((w) => [w.key, w.port])),
      certificates: this.workerCertificates,
      restarts,
      acmeHttp: this.acmeHttp,
      arena: this.arena,
    });
    rt.pool = pool;
    await pool.start();
    for (const w of this.handed) {
      rt.listeners.push({
        router: w.router,
        server: w.index,
        ip: w.ip,
        listener: pool.listener(w.port),
      });
      this.log.info("listening", {
        router: w.router,
        engine: "uws",
        address: `${w.ip}:${w.port}`,
        workers: this.workers,
      });
    }
  }

  async serveAdmin(rt: Runtime): Promise<void> {
    const { config, naming, opts } = this;
    // This thread's clients count when it serves some servers itself, besides the workers'.
    const own = rt.listeners.length > this.handed.length;
    const routes = rt.telemeters!.adminRoutes({
      metrics: () => rt.metricsSnapshot(),
      own,
      workers: rt.pool,
    });
    const labels = [...naming.routers.keys()];
    const hub = new TapHub(own ? rt.tap : undefined, rt.pool);
    addRoute(
      routes,
      REQUEST_STATS_PATH,
      requestStatsRoute(() => rt.metricsSnapshot(), labels),
    );
    addRoute(routes, TAP_PATH, tapRoute(hub, labels));
    rt.admin = await startAdminServer(
      {
        log: this.log.child({ component: "admin" }),
        routers: naming.routers,
        configJson: opts.configJson ?? (() => ({})),
        isReady: () => rt.ready,
        shutdown: () => opts.onShutdownRequest?.(),
        metrics: () => rt.metricsSnapshot(),
        namers: naming.namers,
        kubernetes: () => naming.kube?.status() ?? [],
        certificates: () => certificatesView(rt.tlsServers, rt.acme),
        clients: () => clientsView(own ? () => rt.clientsView() : undefined, rt.pool),
        token: adminToken(config.admin),
        routes,
      },
      config.admin.ip,
      config.admin.port,
    ).catch((e: NodeJS.ErrnoException) => {
      throw new Error(
        `the admin server cannot listen on ${config.admin.ip}:${config.admin.port}: ${e.code ?? e.message}`,
      );
    });
    this.log.info("admin server listening", { address: `${config.admin.ip}:${rt.admin.port}` });
  }
}

/** Adds one of lintel's own admin routes, unless a telemeter (a plugin's) claims its path. */
function addRoute(
  routes: Map<string, AdminRouteHandler>,
  path: string,
  route: AdminRouteHandler,
): void {
  if (routes.has(path))
    throw new Error(`a telemeter serves ${path} on the admin server, which lintel serves itself`);
  routes.set(path, route);
}

/** `process/…`: workers configured and serving, restarts, uptime. Returns the restart counter. */
function processMetrics(rt: Runtime, workers: number) {
  const p = processScope(rt.metrics);
  p.gauge("workers", () => workers);
  p.gauge("workers_live", () => rt.pool?.readyCount ?? 0);
  p.gauge("uptime_ms", () => Date.now() - rt.startedAt);
  return p.counter("worker_restarts");
}

/** The acme blocks of a config's servers. */
function acmeBlocks(config: LintelConfig): AcmeConfig[] {
  return config.routers.flatMap((r) => r.servers.flatMap((s) => (s.tls?.acme ? [s.tls.acme] : [])));
}

/** The certificate sources of every TLS server, by server key. */
async function certificateSourcesOf(
  config: LintelConfig,
  acme: AcmeService | undefined,
  context: PluginContext,
): Promise<Map<string, ServerCertificateSources>> {
  const out = new Map<string, ServerCertificateSources>();
  for (const [i, r] of config.routers.entries()) {
    for (const [j, s] of r.servers.entries()) {
      const label = routerLabel(r);
      const where = `router ${label} (routers[${i}].servers[${j}])`;
      try {
        const sources = await serverCertificateSources(s, r, `${label}/${j}`, { context, acme });
        if (sources) out.set(serverKey(label, j), sources);
      } catch (e) {
        throw new Error(`${where}: TLS: ${(e as Error).message}`);
      }
    }
  }
  return out;
}
