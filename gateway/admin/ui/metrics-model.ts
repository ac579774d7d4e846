// Linkerd-named metrics (/admin/metrics.json, already merged over every thread) read as
// the dashboard shows them: per router, its servers, services and clients, each with its
// totals, latency quantiles and the rates between two readings.

/** The flat metrics.json object. */
export type Metrics = Readonly<Record<string, number>>;

export type EntityKind = "server" | "service" | "client";

/** Every server, service and client has a `requests` counter; that finds them. */
const ENTITY = /^rt\/([^/]+)\/(server|service|client)\/(.+)\/requests$/;

export interface EntityRow {
  readonly router: string;
  readonly kind: EntityKind;
  /** As Linkerd names it in metrics: `127.0.0.1/4140`, `svc/users`, `$/inet/127.1/8080`. */
  readonly id: string;
  /** As a user writes it: `127.0.0.1:4140`, `/svc/users`, `/$/inet/127.1/8080`. */
  readonly shown: string;
  readonly requests: number;
  /** Requests per second since the last reading; undefined on the first. */
  readonly rps: number | undefined;
  /** Successes over successes and failures, since the last reading when there were any, else overall; undefined before any. */
  readonly successRate: number | undefined;
  readonly p50: number | undefined;
  readonly p95: number | undefined;
  readonly p99: number | undefined;
  /** Servers: requests in flight; clients: open connections. */
  readonly load: number | undefined;
  /** Services: retries; clients: requeues after a connection failure. */
  readonly retries: number | undefined;
  /** Clients: endpoints failure accrual holds dead, of those the balancer has. */
  readonly dead: number | undefined;
  readonly endpoints: number | undefined;
  readonly removals: number | undefined;
}

export interface RouterView {
  readonly label: string;
  readonly servers: readonly EntityRow[];
  readonly services: readonly EntityRow[];
  readonly clients: readonly EntityRow[];
}

interface Reading {
  readonly at: number;
  readonly requests: number;
  readonly success: number;
  readonly failures: number;
}

function shown(kind: EntityKind, id: string): string {
  if (kind !== "server") return `/${id}`;
  const cut = id.lastIndexOf("/");
  const ip = id.slice(0, cut);
  return `${ip.includes(":") ? `[${ip}]` : ip}:${id.slice(cut + 1)}`;
}

/** Turns successive readings into rows; keeps the previous reading of each entity. */
export class MetricsModel {
  private readonly last = new Map<string, Reading>();
  /** When the previous reading was taken; an entity new since then started from zero. */
  private lastAt: number | undefined;

  read(m: Metrics, at: number): RouterView[] {
    const routers = new Map<
      string,
      { servers: EntityRow[]; services: EntityRow[]; clients: EntityRow[] }
    >();
    for (const key of Object.keys(m)) {
      const match = ENTITY.exec(key);
      if (!match) continue;
      const [, router, kind, id] = match as unknown as [string, string, EntityKind, string];
      let r = routers.get(router);
      if (!r) {
        r = { servers: [], services: [], clients: [] };
        routers.set(router, r);
      }
      r[`${kind}s`].push(this.row(m, router, kind, id, at));
    }
    this.lastAt = at;
    const byShown = (a: EntityRow, b: EntityRow) =>
      a.shown < b.shown ? -1 : a.shown > b.shown ? 1 : 0;
    return [...routers]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([label, r]) => ({
        label,
        servers: r.servers.sort(byShown),
        services: r.services.sort(byShown),
        clients: r.clients.sort(byShown),
      }));
  }

  private row(m: Metrics, router: string, kind: EntityKind, id: string, at: number): EntityRow {
    const p = `rt/${router}/${kind}/${id}/`;
    const now: Reading = {
      at,
      requests: m[`${p}requests`] ?? 0,
      success: m[`${p}success`] ?? 0,
      failures: m[`${p}failures`] ?? 0,
    };
    const before =
      this.last.get(p) ??
      (this.lastAt === undefined
        ? undefined
        : { at: this.lastAt, requests: 0, success: 0, failures: 0 });
    this.last.set(p, now);
    const seconds = before ? (at - before.at) / 1000 : 0;
    const rps =
      before && seconds > 0 ? Math.max(0, now.requests - before.requests) / seconds : undefined;
    return {
      router,
      kind,
      id,
      shown: shown(kind, id),
      requests: now.requests,
      rps,
      successRate: successRate(before, now),
      // A histogram with no samples reads 0: show nothing rather than a 0 ms latency.
      p50: now.requests > 0 ? m[`${p}request_latency_ms.p50`] : undefined,
      p95: now.requests > 0 ? m[`${p}request_latency_ms.p95`] : undefined,
      p99: now.requests > 0 ? m[`${p}request_latency_ms.p99`] : undefined,
      load:
        kind === "server" ? m[`${p}load`] : kind === "client" ? m[`${p}connections`] : undefined,
      retries:
        kind === "service"
          ? m[`${p}retries/total`]
          : kind === "client"
            ? m[`${p}retries/requeues`]
            : undefined,
      dead: m[`${p}failure_accrual/dead`],
      endpoints: m[`${p}loadbalancer/size`],
      removals: m[`${p}failure_accrual/removals`],
    };
  }
}

function successRate(before: Reading | undefined, now: Reading): number | undefined {
  const ok = now.success - (before?.success ?? 0);
  const failed = now.failures - (before?.failures ?? 0);
  if (ok + failed > 0) return ok / (ok + failed);
  const all = now.success + now.failures;
  return all > 0 ? now.success / all : undefined;
}
