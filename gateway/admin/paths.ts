// The paths the admin server answers itself. Telemeters add pages of their own
// (io.l5d.recentRequests, plugins) but may not take one of these, except the Prometheus
// text's, which an io.l5d.prometheus telemeter takes over to apply its prefix.

/** Where the admin server serves the metrics as Prometheus text (io.l5d.prometheus's default path). */
export const PROMETHEUS_PATH = "/admin/metrics/prometheus";

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
]);

/** Paths under these are the admin server's too. */
const OWN_PREFIXES: readonly string[] = ["/namer_state/"];

/** Whether `path` is one the admin server answers itself, so no telemeter may serve it. */
export function isAdminServerPath(path: string): boolean {
  return OWN_PATHS.has(path) || OWN_PREFIXES.some((p) => path.startsWith(p));
}
