// lintel's `kubernetes` block: where the Kubernetes API is when a kind does not say
// (Linkerd 1 kinds give a kubectl proxy's `host`/`port`; lintel can also run in-cluster
// with its service account, or from a kubeconfig file), and how long startup waits for
// the first lists.

import {
  def,
  filePath,
  host,
  type Infer,
  integer,
  nonEmptyString,
  object,
  oneOf,
  opt,
  port,
  refine,
} from "./schema.js";

export const kubernetesBlock = refine(
  object({
    /** auto: in-cluster inside a pod, else a kubectl proxy at host:port (Linkerd's default). */
    mode: def(oneOf(["auto", "inCluster", "kubeconfig", "proxy"]), "auto"),
    host: def(host(), "localhost"),
    port: def(port(), 8001),
    kubeconfig: opt(filePath("a kubeconfig file")),
    context: opt(nonEmptyString("a kubeconfig context name")),
    /** In-cluster: the service account token and CA (the kubelet's projected volume). */
    tokenFile: opt(filePath("a token file")),
    caFile: opt(filePath("a CA certificate file")),
    /** Startup waits this long for the first list of each watch before serving. */
    initialSyncTimeoutMs: def(integer({ min: 0 }), 10_000),
  }),
  (k) => {
    if (k.mode === "kubeconfig" && !k.kubeconfig)
      return "mode kubeconfig needs kubeconfig: the file";
    if (k.mode !== "kubeconfig" && k.kubeconfig)
      return "kubeconfig is set but mode is not kubeconfig";
    return undefined;
  },
);

export type KubernetesConfig = Infer<typeof kubernetesBlock>;
