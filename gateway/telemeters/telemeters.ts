// A thread's telemeters, made from the config's `telemetry` list: their one observer of
// finished requests (none when no telemeter observes; the runtime joins it with the
// thread's tap point, ../telemetry/tap-point.ts, for the routers), each telemeter's state
// for the admin pages, and the admin routes (control thread), which gather that state
// from every thread serving requests.

import { isAdminServerPath } from "../admin/paths.js";
import type { LintelConfig } from "../config/config-schema.js";
import type { PluginConfig } from "../config/plugin-schema.js";
import type { DecodeContext } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { PluginContexts } from "../plugins/types.js";
import type { MetricsSnapshot } from "../telemetry/index.js";
import { type SpanSink, Tracer } from "../tracing/tracer.js";
import { prometheusTelemeter } from "./prometheus.js";
import { RECENT_REQUESTS_PATH, recentRequestsTelemeter } from "./recent-requests.js";
import type {
  AdminAnswer,
  RequestObserver,
  RequestSummary,
  Telemeter,
  TelemeterAdminRequest,
  ThreadState,
} from "./telemeter.js";

/** How long an admin page waits for a worker's answer before answering without it. */
export const WORKER_TELEMETRY_TIMEOUT_MS = 1000;

/** What the workers answer for a telemeter's `threads()` (the pool). */
export interface WorkerTelemetrySource {
  telemeterStates(telemeter: number, timeoutMs: number): Promise<ThreadState[]>;
}

/** An admin page as the admin server serves it. */
export type AdminRouteHandler = (
  method: string,
  url: URL,
  headers?: TelemeterAdminRequest["headers"],
) => Promise<AdminAnswer>;

interface Made {
  readonly kind: string;
  /** Where it is in the config, `telemetry[i]`. */
  readonly index: number;
  readonly telemeter: Telemeter;
  readonly log: Logger;
}

/** The telemeters that observe requests, as one observer (a failing one is logged, once). */
class Observers implements RequestObserver {
  private readonly chosen: Uint8Array;
  private readonly failed: Uint8Array;

  constructor(
    private readonly made: readonly Made[],
    readonly tracer: Tracer | undefined,
  ) {
    this.chosen = new Uint8Array(made.length);
    this.failed = new Uint8Array(made.length);
  }

  sample(): boolean {
    let any = false;
    for (let i = 0; i < this.made.length; i++) {
      const t = this.made[i]!.telemeter;
      let yes: boolean;
      try {
        yes = t.sample === undefined || t.sample();
      } catch (e) {
        this.fault(i, e);
        yes = false;
      }
      this.chosen[i] = yes ? 1 : 0;
      if (yes) any = true;
    }
    return any;
  }

  observe(request: RequestSummary): void {
    for (let i = 0; i < this.made.length; i++) {
      if (this.chosen[i] === 0) continue;
      try {
        this.made[i]!.telemeter.observe!(request);
      } catch (e) {
        this.fault(i, e);
      }
    }
  }

  /** A telemeter's bug must not break the request path: logged the first time only. */
  private fault(i: number, e: unknown): void {
    if (this.failed[i]) return;
    this.failed[i] = 1;
    this.made[i]!.log.error("telemeter failed observing a request (further failures not logged)", {
      error: (e as Error)?.stack ?? String(e),
    });
  }
}

export class Telemeters {
  private readonly made: Made[] = [];
  /** What routers call when they finish a request; undefined when no telemeter observes. */
  readonly observer: RequestObserver | undefined;

  constructor(configs: readonly PluginConfig<"telemeter">[], ctx: PluginContexts["telemeter"]) {
    try {
      for (const [index, pc] of configs.entries()) {
        const log = ctx.log.child({ telemeter: pc.kind });
        this.made.push({
          kind: pc.kind,
          index,
          telemeter: pc.plugin.create(pc.config, { ...ctx, log }),
          log,
        });
      }
    } catch (e) {
      void this.close();
      throw new Error(`telemetry[${this.made.length}]: ${(e as Error).message}`);
    }
    const observing = this.made.filter((m) => m.telemeter.observe !== undefined);
    const sinks: SpanSink[] = [];
    for (const m of this.made) if (m.telemeter.spans) sinks.push(m.telemeter.spans);
    const tracer = sinks.length > 0 ? new Tracer(sinks, ctx.random) : undefined;
    this.observer = observing.length > 0 || tracer ? new Observers(observing, tracer) : undefined;
  }

  /** This thread's state of the telemeter at `telemetry[index]` (undefined if it keeps none). */
  threadState(index: number): unknown {
    return this.made[index]?.telemeter.threadState?.();
  }

  /**
   * The admin pages of every telemeter, by path. `own`: the control thread serves some
   * requests itself (so its state counts); `workers`: the pool, when there is one. Throws
   * when two telemeters claim a path, or one claims a page of the admin server's own.
   */
  adminRoutes(env: {
    readonly metrics: () => MetricsSnapshot;
    readonly own: boolean;
    readonly workers: WorkerTelemetrySource | undefined;
  }): Map<string, AdminRouteHandler> {
    const routes = new Map<string, AdminRouteHandler>();
    const owners = new Map<string, Made>();
    for (const m of this.made) {
      for (const route of m.telemeter.adminRoutes ?? []) {
        const where = `telemetry[${m.index}] (${m.kind})`;
        if (!route.path.startsWith("/"))
          throw new Error(`${where}: admin path ${JSON.stringify(route.path)} must start with /`);
        if (isAdminServerPath(route.path))
          throw new Error(`${where}: ${route.path} is one of the admin server's own pages`);
        const other = owners.get(route.path);
        if (other) {
          throw new Error(
            `${where}: ${route.path} is already served by telemetry[${other.index}] (${other.kind})`,
          );
        }
        owners.set(route.path, m);
        const threads = () => this.threads(m, env.own, env.workers);
        routes.set(route.path, async (method, url, headers) =>
          route.serve({ method, url, headers, metrics: env.metrics, threads }),
        );
      }
    }
    return routes;
  }

  private async threads(
    m: Made,
    own: boolean,
    workers: WorkerTelemetrySource | undefined,
  ): Promise<ThreadState[]> {
    const fromWorkers = workers
      ? workers.telemeterStates(m.index, WORKER_TELEMETRY_TIMEOUT_MS)
      : Promise.resolve([]);
    const out: ThreadState[] = [];
    if (own) {
      try {
        out.push({ worker: "control", state: m.telemeter.threadState?.() });
      } catch (e) {
        out.push({ worker: "control", error: `the telemeter failed: ${(e as Error).message}` });
      }
    }
    out.push(...(await fromWorkers));
    return out;
  }

  /** Stops every telemeter (at shutdown). */
  async close(): Promise<void> {
    await Promise.all(
      this.made.map(async (m) => {
        try {
          await m.telemeter.close?.();
        } catch (e) {
          m.log.warn("telemeter failed to close", { error: (e as Error).message });
        }
      }),
    );
  }
}

/**
 * The admin paths the built-in telemeters of a config would serve, checked before
 * anything starts: two of them on one path, or one on a page of the admin server's own
 * (io.l5d.prometheus's schema checks its path). Plugins' paths are checked at startup.
 */
export function checkTelemetry(config: LintelConfig, cx: DecodeContext): void {
  const seen = new Map<string, number>();
  config.telemetry.forEach((t, i) => {
    let path: string;
    let where: string;
    if (t.plugin === prometheusTelemeter) {
      path = (t.config as { path: string }).path;
      where = `telemetry[${i}].path`;
    } else if (t.plugin === recentRequestsTelemeter) {
      path = RECENT_REQUESTS_PATH;
      where = `telemetry[${i}]`;
    } else return;
    const other = seen.get(path);
    if (other !== undefined) cx.report(where, `${path} is already served by telemetry[${other}]`);
    else seen.set(path, i);
  });
}
