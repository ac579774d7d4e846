// The Prometheus exposition of the admin server and the io.l5d.prometheus telemeter: a
// prom-client registry (one per format) whose collectors read the merged snapshot of
// every thread at scrape time, so requests pay nothing more; Prometheus text 0.0.4 by
// default, OpenMetrics 1.0.0 when the Accept header prefers it (or `?format=` says so).

import { Registry, type RegistryContentType } from "prom-client";
import type { MetricsSnapshot } from "../../telemetry/index.js";
import { type PromFamily, type PromType, prometheusFamilies } from "../metrics.js";

export const PROMETHEUS_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;
export const OPENMETRICS_CONTENT_TYPE: string = Registry.OPENMETRICS_CONTENT_TYPE;

export type ExpositionFormat = "prometheus" | "openmetrics";

/** A media range's weight: its `q` parameter, 1 without one, 0 when unreadable. */
function weight(params: readonly string[]): number {
  for (const p of params) {
    const [k, v] = p.split("=").map((x) => x.trim());
    if (k?.toLowerCase() === "q") {
      const q = Number(v);
      return Number.isFinite(q) && q >= 0 && q <= 1 ? q : 0;
    }
  }
  return 1;
}

/** The `version` parameter of a media range, unquoted, when it has one. */
function version(params: readonly string[]): string | undefined {
  for (const p of params) {
    const [k, v] = p.split("=").map((x) => x.trim());
    if (k?.toLowerCase() === "version") return v?.replace(/^"|"$/g, "");
  }
  return undefined;
}

/**
 * The format an Accept header asks for: OpenMetrics when it names
 * `application/openmetrics-text` (version 1.0.0 or none) with a weight at least that of
 * the text format (`text/plain` version 0.0.4 or none, `text/*`, `*\/*`); otherwise the
 * text format, which is also what no header gets. Prometheus itself asks for OpenMetrics
 * first (`application/openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,…`).
 */
export function negotiate(accept: string | undefined): ExpositionFormat {
  if (!accept) return "prometheus";
  let open = 0;
  let text = 0;
  for (const range of accept.split(",")) {
    const [type, ...params] = range.split(";");
    const media = type?.trim().toLowerCase();
    const q = weight(params);
    const v = version(params);
    if (media === "application/openmetrics-text" && (v === undefined || v === "1.0.0")) {
      open = Math.max(open, q);
    } else if (
      (media === "text/plain" && (v === undefined || v === "0.0.4")) ||
      media === "text/*" ||
      media === "*/*"
    ) {
      text = Math.max(text, q);
    }
  }
  return open > 0 && open >= text ? "openmetrics" : "prometheus";
}

/**
 * One metric family as prom-client's registry sees a metric: it reads the family of the
 * scrape under way (`source`) when the registry asks for its values.
 */
class SnapshotCollector {
  constructor(
    public name: string,
    readonly type: PromType,
    readonly help: string,
    private readonly source: (name: string) => PromFamily | undefined,
    /** The family's name (`name` loses `_total` once an OpenMetrics registry renders it). */
    readonly key: string,
  ) {}

  async get() {
    const f = this.source(this.key);
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: "sum" as const,
      values: f ? f.samples : [],
    };
  }

  reset(): void {}
}

/** A prom-client registry rendering `type` (its typings declare no constructor argument). */
function registry(type: RegistryContentType): Registry<RegistryContentType> {
  const r = new Registry<RegistryContentType>();
  r.setContentType(type);
  return r;
}

/** What a scrape answers with. */
export interface Exposition {
  readonly contentType: string;
  readonly body: string;
}

export class PrometheusExposition {
  private readonly registries: Readonly<Record<ExpositionFormat, Registry<RegistryContentType>>> = {
    prometheus: registry(Registry.PROMETHEUS_CONTENT_TYPE),
    openmetrics: registry(Registry.OPENMETRICS_CONTENT_TYPE),
  };
  /** The families of the scrape under way (scrapes take turns, see `render`). */
  private families = new Map<string, PromFamily>();
  private turn: Promise<unknown> = Promise.resolve();

  /** `read` gives every thread's metrics, merged; `prefix` is io.l5d.prometheus's. */
  constructor(
    private readonly read: () => MetricsSnapshot,
    private readonly prefix = "",
  ) {}

  /**
   * The exposition in the format `accept` asks for; `format` (`prometheus` or
   * `openmetrics`, from a `?format=` query) overrides the header, for scrapers that
   * cannot set it.
   */
  render(accept: string | undefined, format?: string | null): Promise<Exposition> {
    const chosen: ExpositionFormat =
      format === "openmetrics" || format === "prometheus" ? format : negotiate(accept);
    const next = this.turn.then(() => this.scrape(chosen));
    this.turn = next.catch(() => undefined);
    return next;
  }

  private async scrape(format: ExpositionFormat): Promise<Exposition> {
    this.families = prometheusFamilies(this.read(), this.prefix);
    const registry = this.registries[format];
    // Families come and go with scopes: collectors are made for new names and dropped
    // for names no longer there (or whose type changed).
    for (const m of registry.getMetricsAsArray() as unknown as SnapshotCollector[]) {
      const f = this.families.get(m.key);
      if (!f || f.type !== m.type) registry.removeSingleMetric(m.key);
    }
    for (const f of this.families.values()) {
      if (registry.getSingleMetric(f.name)) continue;
      const c = new SnapshotCollector(f.name, f.type, f.help, (n) => this.families.get(n), f.name);
      registry.registerMetric(c as unknown as Parameters<typeof registry.registerMetric>[0]);
    }
    const body = await registry.metrics();
    return {
      contentType: registry.contentType,
      // With no family at all prom-client starts with an empty line (before `# EOF`).
      body: body.startsWith("\n") ? body.slice(1) : body,
    };
  }
}
