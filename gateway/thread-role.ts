// What differs between the two kinds of thread a runtime runs in. The control thread
// owns discovery, ACME, the certificates of files and Secrets, the admin server, and the
// workers it starts for the uws servers; a worker thread serves its share of the uws
// servers with what the control thread sends it. Runtime.start builds routers and
// listeners the same way in both and asks the role only where they differ.

import type { CertificateStore } from "../tls/certificate-store.js";
import type { ServerConfig } from "./config/config-schema.js";
import type { KubeApi, KubeApiRef } from "./k8s/api.js";
import type { Logger } from "./log.js";
import type { NamingSetup } from "./routing/naming-setup.js";
import type { Runtime } from "./runtime.js";
import type { ListenerTls } from "./server/tls-listener.js";
import type { SharedArena } from "./shared-arena.js";

/** A TLS server's listener settings, and the store of certificates this thread loads for it. */
export interface ServerTlsSetup {
  readonly tls: ListenerTls;
  /** Set when this thread loads the certificates (started, shown and stopped with it). */
  readonly store?: CertificateStore;
}

/** Who listens for a server: this thread, the workers it starts, or another thread. */
export type Placement = "here" | "workers" | "elsewhere";

/** A server handed to the workers: its key, where it listens. */
export interface HandedOver {
  readonly key: string;
  readonly router: string;
  readonly index: number;
  readonly ip: string;
  readonly port: number;
}

export interface ThreadRole {
  readonly naming: NamingSetup;
  /** Memory shared by every thread of the process (made by the control thread). */
  readonly arena: SharedArena;
  /** The Kubernetes API the kinds of this thread use. */
  kube(ref?: KubeApiRef): KubeApi;
  /** A worker does not wait for load balancers at shutdown: its control thread has. */
  readonly isWorker: boolean;
  /** The ACME HTTP-01 answers plain-HTTP servers give, when the config orders from ACME. */
  readonly acmeHttp: ((token: string) => Promise<string | undefined>) | undefined;
  /** Before the routers: ACME, certificate sources, the first lists of Kubernetes watches. */
  prepare(rt: Runtime): Promise<void>;
  placement(s: ServerConfig): Placement;
  /** The TLS of a server this thread listens for or hands over. */
  serverTls(s: ServerConfig, key: string, log: Logger): ServerTlsSetup;
  /** The port to listen on (the one chosen for a server configured with port 0). */
  port(s: ServerConfig, key: string): number;
  /** Takes a server for the workers (control thread); returns where they will listen. */
  handOver(
    s: ServerConfig,
    server: Omit<HandedOver, "port">,
    tls: ListenerTls | undefined,
  ): Promise<HandedOver>;
  /** After this thread's listeners: the workers and their listeners (control thread). */
  startWorkers(rt: Runtime): Promise<void>;
  /** Once everything serves: the admin server (control thread). */
  serveAdmin(rt: Runtime): Promise<void>;
}
