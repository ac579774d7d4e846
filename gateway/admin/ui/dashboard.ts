// The dashboard (/): per router, its servers, services and clients with request rates,
// success rates, latency and connections, read from /admin/metrics.json every second.

import { getJson } from "./api.js";
import { byId, type El, h } from "./dom.js";
import { bytes, count, duration, ms, NONE, percent, rate } from "./format.js";
import { type EntityRow, type Metrics, MetricsModel, type RouterView } from "./metrics-model.js";
import { showError } from "./status.js";

/** How often the dashboard reads the metrics. */
const POLL_MS = 1000;

interface Column {
  readonly title: string;
  readonly stat: string;
  readonly value: (r: EntityRow) => string;
}

const common: readonly Column[] = [
  { title: "Requests", stat: "requests", value: (r) => count(r.requests) },
  { title: "Req/s", stat: "rps", value: (r) => rate(r.rps) },
  { title: "Success", stat: "success", value: (r) => percent(r.successRate) },
  { title: "p50 ms", stat: "p50", value: (r) => ms(r.p50) },
  { title: "p95 ms", stat: "p95", value: (r) => ms(r.p95) },
  { title: "p99 ms", stat: "p99", value: (r) => ms(r.p99) },
];

const columns: Readonly<Record<"servers" | "services" | "clients", readonly Column[]>> = {
  servers: [...common, { title: "In flight", stat: "load", value: (r) => count(r.load) }],
  services: [...common, { title: "Retries", stat: "retries", value: (r) => count(r.retries) }],
  clients: [
    ...common,
    { title: "Connections", stat: "connections", value: (r) => count(r.load) },
    { title: "Requeues", stat: "retries", value: (r) => count(r.retries) },
    {
      title: "Failure accrual",
      stat: "accrual",
      value: (r) =>
        r.endpoints === undefined
          ? NONE
          : `${count(r.dead)} dead of ${count(r.endpoints)} (${count(r.removals)} removals)`,
    },
  ],
};

const HEADINGS = { servers: "Server", services: "Service", clients: "Client" } as const;

function table(kind: keyof typeof columns, rows: readonly EntityRow[]): El {
  const cols = columns[kind];
  return h(
    "table",
    { "data-kind": kind },
    h("caption", {}, `${HEADINGS[kind]}s`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, HEADINGS[kind]),
        ...cols.map((c) => h("th", { scope: "col" }, c.title)),
      ),
    ),
    h(
      "tbody",
      {},
      ...rows.map((r) =>
        h(
          "tr",
          { "data-id": r.shown },
          h("th", { scope: "row" }, r.shown),
          ...cols.map((c) => h("td", { "data-stat": c.stat }, c.value(r))),
        ),
      ),
    ),
  );
}

function routerSection(r: RouterView): El {
  const id = `router-${r.label}`;
  const tables: El[] = [];
  if (r.servers.length > 0) tables.push(table("servers", r.servers));
  if (r.services.length > 0) tables.push(table("services", r.services));
  if (r.clients.length > 0) tables.push(table("clients", r.clients));
  if (tables.length === 0) tables.push(h("p", {}, "No requests yet."));
  return h(
    "section",
    { "aria-labelledby": id, "data-router": r.label },
    h("h2", { id }, `Router ${r.label}`),
    ...tables,
  );
}

function processLine(m: Metrics): El {
  const item = (name: string, value: string) => h("div", {}, h("dt", {}, name), h("dd", {}, value));
  const live = m["process/workers_live"];
  const workers = m["process/workers"];
  return h(
    "dl",
    { class: "facts" },
    item("Uptime", duration((m["process/uptime_ms"] ?? Number.NaN) / 1000)),
    item("Workers", workers ? `${count(live)} of ${count(workers)} live` : "none (one thread)"),
    item("Worker restarts", count(m["process/worker_restarts"])),
    item("Memory (RSS)", bytes(m["process/rss_bytes"])),
  );
}

export function startDashboard(): void {
  const model = new MetricsModel();
  const out = byId("content");
  const updated = h("p", { class: "updated", "aria-live": "off" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    clearTimeout(timer);
    try {
      const m = await getJson<Metrics>("/admin/metrics.json");
      const routers = model.read(m, performance.now());
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; rates are per second over the last reading.`;
      out.replaceChildren(
        processLine(m),
        ...(routers.length > 0
          ? routers.map(routerSection)
          : [h("p", {}, "No router has metrics yet.")]),
        updated,
      );
      showError(undefined);
    } catch (e) {
      showError(e);
    }
    timer = setTimeout(tick, POLL_MS);
  };
  void tick();
}
