// A running lintel: the routers of a config with their listeners, clients and naming,
// their metrics, and the admin server. Starts completely or not at all (a listener that
// cannot bind stops everything already started), and shuts down gracefully. Where the
// control thread and a worker thread differ, its thread's role decides (thread-role.ts:
// control-thread.ts, workers/worker-thread.ts).

import type { CertificateStore } from "../tls/certificate-store.js";
import type { AcmeService } from "./acme/service.js";
import type { AdminServer } from "./admin/admin-server.js";
import { certificateGauges, type TlsServerStore } from "./admin/certificates.js";
import { routerClientsView } from "./admin/clients.js";
import { ClientCache } from "./client/client-cache.js";
import type { RouterClientsView } from "./client/client-view.js";
import { clientParamsResolver } from "./client/params.js";
import { clientTlsBlocks, UpstreamTlsContexts } from "./client/upstream-tls.js";
import { coarseClock, systemClock } from "./clock.js";
import type { LintelConfig } from "./config/config-schema.js";
import { http2Settings } from "./config/h2-settings.js";
import { ControlThread } from "./control-thread.js";
import { CidrSet } from "./http/cidr.js";
import type { KubeApiRef } from "./k8s/api.js";
import type { Logger } from "./log.js";
import { RedisClients } from "./redis-clients.js";
import { AccessLog } from "./routing/access-log.js";
import { clientStack } from "./routing/client-stack.js";
import { EgressPolicy } from "./routing/egress-policy.js";
import { type NamingSetup, routerLabel } from "./routing/naming-setup.js";
import { PolicyKinds } from "./routing/policy-kinds.js";
import { responseSettings } from "./routing/response-settings.js";
import { Router } from "./routing/router.js";
import { configuredLayer, ServerStack } from "./routing/server-stack/server-stack.js";
import { ServicePolicies } from "./routing/service-policy.js";
import { Tunnels } from "./routing/tunnels.js";
import { LISTENERS } from "./server/engines.js";
import type { Listener, TunnelRequest } from "./server/listener.js";
import { Telemeters } from "./telemeters/telemeters.js";
import {
  type MetricsSnapshot,
  mergeSnapshots,
  Registry,
  RouterMetrics,
  type ThreadMetrics,
  threadMetrics,
} from "./telemetry/index.js";
import { TapPoint, tappedObserver } from "./telemetry/tap-point.js";
import type { ServerTlsSetup, ThreadRole } from "./thread-role.js";
import type { TraceFormat } from "./tracing/context.js";
import type { WorkerPool } from "./workers/pool.js";
import { serverKey } from "./workers/protocol.js";
import { type WorkerSide, WorkerThread } from "./workers/worker-thread.js";

/** Linkerd's trace propagators, as the formats lintel sends upstream. */
const TRACE_PROPAGATORS: Readonly<Record<string, readonly TraceFormat[]>> = {
  "io.l5d.default": ["l5d"],
  "io.l5d.zipkin": ["b3"],
};

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

export interface BoundListener {
  readonly router: string;
  readonly server: number;
  readonly ip: string;
  readonly listener: Listener;
}

/** How long a server's start waits for the Redis its layers use (then they start without). */
const REDIS_CONNECT_WAIT_MS = 2000;

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
  readonly tunnels: Tunnels[] = [];
  /** The data-plane workers serving the uws servers, when there are any. */
  pool: WorkerPool | undefined;
  /** This thread's telemeters (the `telemetry` list). */
  telemeters: Telemeters | undefined;
  /** This thread's metrics (a worker's own; see metricsSnapshot() for all threads'). */
  readonly metrics = new Registry();
  /** This thread's end of `lintel tap`: the open taps' filters (admin/tap-hub.ts sends them). */
  readonly tap = new TapPoint(this.metrics);
  /** This thread's Redis connections (the kinds that share state through Redis). */
  readonly redis = new RedisClients();
  private readonly certificateGauges = certificateGauges(this.metrics, () => this.tlsServers);
  /** The control thread's process metrics (workers add their own, worker-main.ts). */
  private threadMetrics: ThreadMetrics | undefined;
  readonly startedAt = Date.now();
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly config: LintelConfig,
    private readonly log: Logger,
    private readonly role: ThreadRole,
    readonly routers: Router[],
    private readonly clients: ClientCache[],
    private readonly accessLogs: AccessLog[],
    readonly listeners: BoundListener[],
    public admin: AdminServer | undefined,
  ) {}

  get naming(): NamingSetup {
    return this.role.naming;
  }

  static async start(config: LintelConfig, opts: RuntimeOptions): Promise<Runtime> {
    const log = opts.log;
    const role: ThreadRole = opts.worker
      ? new WorkerThread(config, log, opts.worker)
      : new ControlThread(config, log, opts);
    const routers: Router[] = [];
    const clients: ClientCache[] = [];
    const accessLogs: AccessLog[] = [];
    const listeners: BoundListener[] = [];
    const rt = new Runtime(config, log, role, routers, clients, accessLogs, listeners, undefined);
    if (!opts.worker) rt.threadMetrics = threadMetrics(rt.metrics, "main", { wholeProcess: true });
    const upstreamTls = new UpstreamTlsContexts();
    const kindContext = {
      log,
      clock: systemClock,
      random: Math.random,
      kube: (ref?: KubeApiRef) => role.kube(ref),
    };
    const policyKinds = new PolicyKinds(kindContext);
    try {
      rt.telemeters = new Telemeters(config.telemetry, { ...kindContext, metrics: rt.metrics });
      await role.prepare(rt);
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
            protocol: r.protocol,
          }),
          r.bindingCache.clients,
          r.bindingCache.idleTtlSecs * 1000,
          metrics.clientcache,
        );
        clients.push(cache);
        const accessLogFile = r.httpAccessLog ?? r.h2AccessLog;
        const accessLog = accessLogFile
          ? new AccessLog(accessLogFile, rlog, r.httpAccessLogFormat)
          : undefined;
        if (accessLog) accessLogs.push(accessLog);
        const limits = {
          maxTargetBytes: r.maxInitialLineKB * 1024,
          maxHeaderBytes: r.maxHeadersKB * 1024,
          maxHeaderCount: r.maxHeaderCount,
          maxBodyBytes: r.maxRequestKB === undefined ? undefined : r.maxRequestKB * 1024,
        };
        const layerContext = {
          ...kindContext,
          routerLabel: label,
          limits,
          metrics: rt.metrics,
          arena: role.arena,
          redis: rt.redis,
        };
        const router = new Router(label, {
          naming: role.naming.routers.get(label)!,
          clients: cache,
          log: rlog,
          accessLog,
          limits,
          bindingCacheSize: r.bindingCache.paths,
          bindingIdleTtlMs: r.bindingCache.idleTtlSecs * 1000,
          egress,
          metrics,
          services: new ServicePolicies(r.service, policyKinds, metrics, coarseClock, (ls, at) =>
            ls.map((l, k) => configuredLayer(l, `${at}[${k}]`, layerContext)),
          ),
          response: responseSettings(r),
          observer: tappedObserver(rt.telemeters.observer, rt.tap),
          tracePropagation: r.tracePropagator && TRACE_PROPAGATORS[r.tracePropagator.kind],
        });
        routers.push(router);
        for (const [j, s] of r.servers.entries()) {
          const placement = role.placement(s);
          if (placement === "elsewhere") continue;
          const key = serverKey(label, j);
          const where = `router ${label} (routers[${i}].servers[${j}])`;
          let setup: ServerTlsSetup | undefined;
          if (s.tls) {
            try {
              setup = role.serverTls(s, key, rlog.child({ server: `${s.ip}:${s.port}` }));
            } catch (e) {
              throw new Error(`${where}: TLS: ${(e as Error).message}`);
            }
            if (setup.store) rt.tlsStores.push(setup.store);
          }
          const tls = setup?.tls;
          const tlsServer = (port: number) => {
            if (setup?.store)
              rt.tlsServers.push({
                router: label,
                server: j,
                address: `${s.ip}:${port}`,
                store: setup.store,
              });
          };
          if (placement === "workers") {
            const at = { key, router: label, index: j, ip: s.ip };
            tlsServer((await role.handOver(s, at, tls)).port);
            continue;
          }
          const server = new ServerStack(s, {
            ...layerContext,
            acmeHttp: s.tls ? undefined : role.acmeHttp,
          });
          // Layers that count in Redis have opened their connections: let them come up.
          await rt.redis.connected(REDIS_CONNECT_WAIT_MS);
          // CONNECT (where enabled) and Upgrade requests take their connections over once
          // routed; an engine that cannot hand a connection over ignores them.
          const tunnels = new Tunnels(CONNECT_TIMEOUT_MS, s.tunnelIdleTimeoutMs);
          rt.tunnels.push(tunnels);
          const toTunnel = (req: TunnelRequest) => router.tunnel(req, server, tunnels);
          const listen = LISTENERS[s.engine];
          const port = role.port(s, key);
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
                proxyProtocol: s.proxyProtocol && {
                  version: s.proxyProtocol,
                  from: new CidrSet(s.proxyProtocolFrom),
                },
                headersTimeoutMs: s.headersTimeoutMs,
                maxConnections: s.maxConnections,
                maxConnectionsPerClient: s.maxConnectionsPerClient,
                http2: s.http2,
                http2Settings: http2Settings(s),
                onConnect: s.connect ? toTunnel : undefined,
                onUpgrade: toTunnel,
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
          tlsServer(listener.port);
          listeners.push({ router: label, server: j, ip: s.ip, listener });
          rlog.info("listening", {
            engine: s.engine,
            address: `${s.ip}:${listener.port}`,
            tls: tls ? `${tls.store.current.names.size} names` : undefined,
          });
        }
      }
      await role.startWorkers(rt);
      for (const t of rt.tlsStores) t.start();
      // Every listener that answers challenges is up: ACME may order now.
      rt.acme?.start();
      await role.serveAdmin(rt);
    } catch (e) {
      await rt.shutdown(0);
      throw e;
    }
    rt.ready = true;
    return rt;
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
    const delay = graceMs > 0 && !this.role.isWorker ? this.config.admin.drainDelayMs : 0;
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
    this.redis.close();
    await this.admin?.close();
    this.threadMetrics?.close();
  }
}
