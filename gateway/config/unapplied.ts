// Settings lintel reads and checks but does not apply yet. Each is reported rather than
// silently ignored: by `lintel check` and in the startup log. Where ignoring a setting
// would be unsafe (client TLS: traffic meant to be encrypted would go in the clear) it is
// an error, so lintel does not start.

import type { LintelConfig } from "./config-schema.js";

export interface Unapplied {
  readonly path: string;
  readonly message: string;
  readonly fatal: boolean;
}

export function unappliedSettings(config: LintelConfig): Unapplied[] {
  const out: Unapplied[] = [];
  const warn = (path: string, what: string, meanwhile = "it has no effect") =>
    out.push({ path, message: `${what} is not applied yet; ${meanwhile}`, fatal: false });
  const refuse = (path: string, what: string) =>
    out.push({
      path,
      message: `${what} is not supported yet; lintel will not start with it`,
      fatal: true,
    });

  const d = config.dns;
  if (
    d.servers ||
    d.timeoutMs !== 2000 ||
    d.tries !== 2 ||
    d.minTtlSecs !== 5 ||
    d.maxTtlSecs !== 300 ||
    d.negativeTtlSecs !== 30 ||
    d.staleIfErrorSecs !== 300 ||
    d.family !== "v4-preferred"
  ) {
    warn("dns", "the dns block", "names are resolved with the system resolver every 5 s");
  }
  config.telemetry.forEach((t, i) => {
    warn(`telemetry[${i}]`, `telemeter ${t.kind}`);
  });
  config.routers.forEach((r, i) => {
    const at = `routers[${i}]`;
    r.servers.forEach((s, j) => {
      const sat = `${at}.servers[${j}]`;
      if (s.timeoutMs !== undefined) warn(`${sat}.timeoutMs`, "the server timeout");
    });
    for (const key of ["maxResponseKB", "maxChunkKB", "compressionLevel"] as const) {
      if (r[key] !== undefined) warn(`${at}.${key}`, key);
    }
    const clients = r.client.kind === "io.l5d.static" ? r.client.configs : [r.client];
    clients.forEach((c, j) => {
      const cat = r.client.kind === "io.l5d.static" ? `${at}.client.configs[${j}]` : `${at}.client`;
      if (c.tls) refuse(`${cat}.tls`, "TLS origination");
      if (c.loadBalancer && c.loadBalancer.kind !== "p2c") {
        warn(`${cat}.loadBalancer`, `load balancer ${c.loadBalancer.kind}`, "p2c is used");
      }
      if (c.failureAccrual) warn(`${cat}.failureAccrual`, "failure accrual");
      if (c.failFast !== undefined) warn(`${cat}.failFast`, "failFast");
      if (c.requeueBudget) warn(`${cat}.requeueBudget`, "the requeue budget");
      if (c.requestAttemptTimeoutMs !== undefined)
        warn(`${cat}.requestAttemptTimeoutMs`, "requestAttemptTimeoutMs");
      if (c.hostConnectionPool?.minSize)
        warn(`${cat}.hostConnectionPool.minSize`, "hostConnectionPool.minSize");
      if (c.hostConnectionPool?.maxWaiters !== undefined) {
        warn(`${cat}.hostConnectionPool.maxWaiters`, "hostConnectionPool.maxWaiters");
      }
    });
    const services = r.service.kind === "io.l5d.static" ? r.service.configs : [r.service];
    services.forEach((s, j) => {
      const sat =
        r.service.kind === "io.l5d.static" ? `${at}.service.configs[${j}]` : `${at}.service`;
      if (s.totalTimeoutMs !== undefined) warn(`${sat}.totalTimeoutMs`, "totalTimeoutMs");
      if (s.retries) warn(`${sat}.retries`, "retries");
      if (s.responseClassifier) warn(`${sat}.responseClassifier`, "response classifiers");
    });
  });
  return out;
}
