// Every Kubernetes API endpoint the config's kinds use, one client each: a kind's
// Linkerd `host`/`port` names a kubectl proxy; without them the `kubernetes` block
// decides (in-cluster, kubeconfig, or the proxy at its host/port).

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../clock.js";
import type { KubernetesConfig } from "../config/kubernetes-schema.js";
import type { Logger } from "../log.js";
import type { KubeApiRef } from "./api.js";
import { KubeClient, type KubeClientStatus } from "./client.js";
import {
  type ApiEndpoint,
  endpointKey,
  openConnection,
  SERVICE_ACCOUNT_DIR,
} from "./connection.js";
import type { ReflectorTiming } from "./reflector.js";

export interface KubeApisOptions {
  readonly log: Logger;
  readonly clock: Clock;
  readonly random: () => number;
  readonly env?: NodeJS.ProcessEnv;
  readonly timing?: ReflectorTiming;
}

/** The endpoint a kind's `host`/`port` (or their absence) means under the `kubernetes` block. */
export function resolveEndpoint(
  ref: KubeApiRef | undefined,
  cfg: KubernetesConfig,
  env: NodeJS.ProcessEnv,
): ApiEndpoint {
  if (ref?.host !== undefined || ref?.port !== undefined) {
    return { mode: "proxy", host: ref.host ?? "localhost", port: ref.port ?? 8001 };
  }
  const tokenFile = cfg.tokenFile ?? join(SERVICE_ACCOUNT_DIR, "token");
  const caFile = cfg.caFile ?? join(SERVICE_ACCOUNT_DIR, "ca.crt");
  switch (cfg.mode) {
    case "inCluster":
      return { mode: "inCluster", tokenFile, caFile };
    case "kubeconfig":
      return { mode: "kubeconfig", path: cfg.kubeconfig!, context: cfg.context };
    case "proxy":
      return { mode: "proxy", host: cfg.host, port: cfg.port };
    case "auto":
      return env.KUBERNETES_SERVICE_HOST && existsSync(tokenFile)
        ? { mode: "inCluster", tokenFile, caFile }
        : { mode: "proxy", host: cfg.host, port: cfg.port };
  }
}

export class KubeApis {
  private readonly clients = new Map<string, KubeClient>();

  constructor(
    private readonly cfg: KubernetesConfig,
    private readonly opts: KubeApisOptions,
  ) {}

  /** The shared client for `ref`; opening it checks its settings (throws KubeConfigError). */
  get(ref?: KubeApiRef): KubeClient {
    const env = this.opts.env ?? process.env;
    const endpoint = resolveEndpoint(ref, this.cfg, env);
    const key = endpointKey(endpoint);
    let c = this.clients.get(key);
    if (!c) {
      const log = this.opts.log.child({ component: "k8s" });
      c = new KubeClient(openConnection(endpoint, { env, log }), {
        clock: this.opts.clock,
        random: this.opts.random,
        log,
        timing: this.opts.timing,
      });
      this.clients.set(key, c);
      log.info("using the Kubernetes API", { server: c.description, auth: c.status().auth });
    }
    return c;
  }

  get used(): boolean {
    return this.clients.size > 0;
  }

  status(): KubeClientStatus[] {
    return [...this.clients.values()].map((c) => c.status());
  }

  /**
   * Waits for the first list of every watch in use, up to the block's
   * initialSyncTimeoutMs; logs those still not listed (they keep trying).
   */
  async waitForSync(): Promise<void> {
    const timeout = this.cfg.initialSyncTimeoutMs;
    for (const c of this.clients.values()) {
      for (const s of await c.waitForSync(timeout)) {
        this.opts.log.warn("serving before this Kubernetes watch listed its objects", {
          server: c.description,
          resource: s.resource,
          namespace: s.namespace,
          error: s.lastError?.message,
        });
      }
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
