// A worker thread's part of starting a runtime (see ../thread-role.ts): it serves the uws
// servers only, binding through the control thread's interpreters and Kubernetes
// watches, with the certificates, ports and ACME answers the control thread sends.

import type { LiveCertificates } from "../../tls/certificate-set.js";
import type { LintelConfig, ServerConfig } from "../config/config-schema.js";
import type { Interpreter } from "../interpreters/interpreter.js";
import type { KubeApi, KubeApiRef } from "../k8s/api.js";
import type { Logger } from "../log.js";
import { buildWorkerNaming, type NamingSetup } from "../routing/naming-setup.js";
import { tlsPolicy } from "../server/tls-listener.js";
import type { SharedArena } from "../shared-arena.js";
import type { HandedOver, Placement, ServerTlsSetup, ThreadRole } from "../thread-role.js";

/** What a worker thread's runtime gets from the control thread. */
export interface WorkerSide {
  readonly interpreters: (router: string) => Interpreter;
  /** The Kubernetes API as the control thread's watches serve it. */
  readonly kube: (ref?: KubeApiRef) => KubeApi;
  /** Waits (bounded) for the first lists of the watches the worker's kinds started. */
  readonly kubeSynced: (timeoutMs: number) => Promise<void>;
  /** The control thread's HTTP-01 answers, when the config orders from ACME. */
  readonly acmeHttp: ((token: string) => Promise<string | undefined>) | undefined;
  /** Ports chosen for servers configured with port 0, by server key. */
  readonly ports: Readonly<Record<string, number>>;
  readonly certificates: (server: string) => LiveCertificates | undefined;
  /** The control thread's shared memory. */
  readonly arena: SharedArena;
}

export class WorkerThread implements ThreadRole {
  readonly naming: NamingSetup;
  readonly isWorker = true;
  readonly acmeHttp: WorkerSide["acmeHttp"];
  readonly arena: SharedArena;

  constructor(
    private readonly config: LintelConfig,
    log: Logger,
    private readonly side: WorkerSide,
  ) {
    this.naming = buildWorkerNaming(config, log, side.interpreters, side.kube);
    this.acmeHttp = side.acmeHttp;
    this.arena = side.arena;
  }

  kube(ref?: KubeApiRef): KubeApi {
    return this.side.kube(ref);
  }

  async prepare(): Promise<void> {
    await this.side.kubeSynced(this.config.kubernetes.initialSyncTimeoutMs);
  }

  placement(s: ServerConfig): Placement {
    return s.engine === "uws" ? "here" : "elsewhere";
  }

  serverTls(s: ServerConfig, key: string, log: Logger): ServerTlsSetup {
    const remote = this.side.certificates(key);
    if (!remote) throw new Error("the control thread sent no certificates");
    return { tls: tlsPolicy(s.tls!, remote, log) };
  }

  port(s: ServerConfig, key: string): number {
    return this.side.ports[key] ?? s.port;
  }

  handOver(): Promise<HandedOver> {
    return Promise.reject(new Error("a worker thread hands no server over"));
  }

  async startWorkers(): Promise<void> {}

  async serveAdmin(): Promise<void> {}
}
