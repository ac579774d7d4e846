// io.l5d.ingress: names the service by the Kubernetes Ingresses (networking.k8s.io/v1) of
// this router's class, /svc/<namespace>/<port>/<service> (matching: ingress-rules.ts). The
// table is rebuilt when the watch reports a change; identify() only reads it.

import {
  boolean,
  def,
  host,
  type Infer,
  list,
  nonEmptyString,
  object,
  opt,
  port,
  refine,
  show,
} from "../config/schema.js";
import type { KubeWatch } from "../k8s/api.js";
import { Ingresses, type IngressView } from "../k8s/resources.js";
import type { Logger } from "../log.js";
import { definePlugin } from "../plugins/registry.js";
import type { IdentifierContext } from "../plugins/types.js";
import {
  type Identification,
  type Identifier,
  type RequestView,
  unidentified,
} from "./identifier.js";
import {
  buildIngressTable,
  type IngressTable,
  type IngressTableOptions,
  requestHost,
  requestPath,
  servesIngress,
} from "./ingress-rules.js";
import { IngressStatusPublisher } from "./ingress-status.js";

const schema = object({
  /** Watch only this namespace (default: every namespace). */
  namespace: opt(nonEmptyString("a namespace")),
  /** The API's address (Linkerd: a kubectl proxy); default: the process's Kubernetes API. */
  host: opt(host()),
  port: opt(port()),
  ignoreDefaultBackends: def(boolean(), false),
  /** The ingress class this router serves. */
  ingressClassAnnotation: def(nonEmptyString("an ingress class name"), "linkerd"),
  /** lintel: serve Ingresses that name no class, as Linkerd 1 did. */
  claimUnclassed: def(boolean(), true),
  /** lintel: `namespace/name` of the LoadBalancer Service in front of lintel, published. */
  publishService: opt(
    refine(nonEmptyString("a Service as namespace/name"), (s) =>
      /^[^/\s]+\/[^/\s]+$/.test(s)
        ? undefined
        : `expected a Service as namespace/name, got ${show(s)}`,
    ),
  ),
  /** lintel: the IPs or host names to publish instead. */
  publishAddresses: opt(list(host(), { minItems: 1 })),
});

type IngressConfig = Infer<typeof schema>;

export const ingressIdentifier = definePlugin({
  category: "identifier",
  kind: "io.l5d.ingress",
  schema,
  validate(config) {
    if (config.publishService !== undefined && config.publishAddresses !== undefined) {
      return [
        { field: "publishAddresses", message: "set publishService or publishAddresses, not both" },
      ];
    }
    return [];
  },
  create(config, ctx) {
    return new IngressIdentifier(config, ctx);
  },
});

/** The identifier; `close` stops its watch and its status writes. */
export class IngressIdentifier implements Identifier {
  private table: IngressTable | undefined;
  /** The problems of the last table, so each is logged once, not at every rebuild. */
  private logged: ReadonlySet<string> = new Set();
  private readonly log: Logger;
  private readonly tableOptions: IngressTableOptions;
  private readonly watch: KubeWatch<IngressView>;
  private readonly notLoaded: Identification;
  private readonly unsubscribe: () => void;
  private readonly status: IngressStatusPublisher | undefined;

  constructor(config: IngressConfig, ctx: IdentifierContext) {
    this.log = ctx.log;
    this.tableOptions = {
      dstPrefix: ctx.dstPrefix,
      ingressClass: config.ingressClassAnnotation,
      claimUnclassed: config.claimUnclassed,
      ignoreDefaultBackends: config.ignoreDefaultBackends,
    };
    // Only what the config gives, so that neither picks the process's default API.
    const ref: { host?: string; port?: number } = {};
    if (config.host !== undefined) ref.host = config.host;
    if (config.port !== undefined) ref.port = config.port;
    const kube = ctx.kube(ref);
    this.watch = kube.watch(
      Ingresses,
      config.namespace === undefined ? {} : { namespace: config.namespace },
    );
    this.notLoaded = unidentified(
      `Ingress rules are not loaded yet from the Kubernetes API (${kube.description})`,
    );
    this.unsubscribe = this.watch.subscribe(this.rebuild);
    this.rebuild();

    const writer = kube.writer;
    const source =
      config.publishService !== undefined
        ? { service: splitName(config.publishService) }
        : config.publishAddresses !== undefined
          ? { addresses: config.publishAddresses }
          : undefined;
    const choice = this.tableOptions;
    this.status =
      writer !== undefined && source !== undefined
        ? new IngressStatusPublisher({
            log: ctx.log,
            clock: ctx.clock,
            kube,
            writer,
            ingresses: this.watch,
            serves: (ing) => servesIngress(ing, choice),
            source,
          })
        : undefined;
  }

  identify(req: RequestView): Identification {
    const table = this.table;
    if (table === undefined) return this.notLoaded;
    const host = requestHost(req.header("host"));
    const path = requestPath(req.url);
    const route = table.match(host, path);
    if (route !== undefined) return route.identification;
    return unidentified(
      host === undefined
        ? `no Ingress rule matches path "${path}" (the request has no Host header)`
        : `no Ingress rule matches host "${host}" and path "${path}"`,
    );
  }

  close(): void {
    this.unsubscribe();
    this.status?.close();
  }

  private readonly rebuild = (): void => {
    if (!this.watch.synced) return;
    const table = buildIngressTable(this.watch.items.values(), this.tableOptions);
    for (const p of table.problems) if (!this.logged.has(p)) this.log.warn(p);
    this.logged = new Set(table.problems);
    this.table = table;
    this.log.debug("Ingress rules loaded", { ingresses: table.ingresses });
  };
}

function splitName(namespaced: string): { namespace: string; name: string } {
  const slash = namespaced.indexOf("/");
  return { namespace: namespaced.slice(0, slash), name: namespaced.slice(slash + 1) };
}
