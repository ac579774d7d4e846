// Settings lintel reads and checks but does not apply yet. Each is reported rather than
// silently ignored: by `lintel check` and in the startup log. A setting whose being
// ignored would be unsafe is reported as fatal, so lintel does not start.

import type { LintelConfig } from "./config-schema.js";

export interface Unapplied {
  readonly path: string;
  readonly message: string;
  /** Ignoring it would be unsafe (e.g. traffic meant to be encrypted sent in the clear). */
  readonly fatal: boolean;
}

export function unappliedSettings(config: LintelConfig): Unapplied[] {
  const out: Unapplied[] = [];
  const warn = (path: string, what: string, meanwhile = "it has no effect") =>
    out.push({ path, message: `${what} is not applied yet; ${meanwhile}`, fatal: false });

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
      if (c.loadBalancer && c.loadBalancer.kind !== "p2c") {
        warn(`${cat}.loadBalancer`, `load balancer ${c.loadBalancer.kind}`, "p2c is used");
      }
      if (c.failureAccrual) warn(`${cat}.failureAccrual`, "failure accrual");
      if (c.failFast !== undefined) warn(`${cat}.failFast`, "failFast");
      if (c.requeueBudget) warn(`${cat}.requeueBudget`, "the requeue budget");
      if (c.requestAttemptTimeoutMs !== undefined)
        warn(`${cat}.requestAttemptTimeoutMs`, "requestAttemptTimeoutMs");
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
