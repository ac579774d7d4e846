// The paths the admin server answers itself. Telemeters add pages of their own
// (io.l5d.recentRequests, plugins) but may not take one of these, except the Prometheus
// text's, which an io.l5d.prometheus telemeter takes over to apply its prefix.

/** Where the admin server serves the metrics as Prometheus text (io.l5d.prometheus's default path). */
export const PROMETHEUS_PATH = "/admin/metrics/prometheus";

/** The admin UI's pages (each the same HTML; its script draws the one asked for). */
export const UI_PAGES: readonly string[] = ["/", "/dtab", "/certificates"];
/** The UI's one script bundle and its stylesheet. */
export const UI_SCRIPT_PATH = "/ui/lintel.js";
export const UI_STYLE_PATH = "/ui/lintel.css";
/** What the UI lays itself out by: routers, namers with state, telemeters' pages. */
export const UI_INDEX_PATH = "/admin/ui.json";

/** `lintel tap`'s page (long-polled) and `lintel stat`'s (counts and latency buckets). */
export const TAP_PATH = "/admin/tap";
export const REQUEST_STATS_PATH = "/admin/requestStats.json";

/** Paths that never need the admin token: load balancers and kubelets probe them. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(["/admin/ping", "/admin/ready"]);

const OWN_PATHS: ReadonlySet<string> = new Set([
  "/admin/ping",
  "/admin/ready",
  "/config.json",
  "/delegator.json",
  "/admin/metrics.json",
  "/admin/kubernetes.json",
  "/admin/certificates.json",
  "/admin/clients.json",
  "/admin/shutdown",
  TAP_PATH,
  REQUEST_STATS_PATH,
  UI_INDEX_PATH,
  UI_SCRIPT_PATH,
  UI_STYLE_PATH,
  ...UI_PAGES,
]);

/** Paths under these are the admin server's too. */
const OWN_PREFIXES: readonly string[] = ["/namer_state/"];

/** Whether `path` is one the admin server answers itself, so no telemeter may serve it. */
export function isAdminServerPath(path: string): boolean {
  return OWN_PATHS.has(path) || OWN_PREFIXES.some((p) => path.startsWith(p));
}
