// Builds the naming side of every router from a decoded config: the DNS resolver, the
// `/$/` namers, the configured namers mounted at `/#/<prefix>` (with their transformers),
// and per router its identifier chain and interpreter.

import { systemClock } from "../clock.js";
import type { LintelConfig, RouterConfig } from "../config/config-schema.js";
import type { PluginConfig } from "../config/plugin-schema.js";
import { firstMatch, type Identifier } from "../identifiers/identifier.js";
import type { Interpreter } from "../interpreters/interpreter.js";
import type { KubeApi, KubeApiRef } from "../k8s/api.js";
import { KubeApis } from "../k8s/kube-apis.js";
import type { Logger } from "../log.js";
import { createDnsResolver, type DnsResolver, type HostResolver } from "../namers/dns.js";
import { createGlobalNamer } from "../namers/global.js";
import {
  CONFIGURED_NAMER_ROOT,
  globalLookup,
  type MountedNamer,
  namerLookup,
  TRANSFORMER_ROOT,
  withTransformers,
} from "../namers/mount.js";
import type { Path, Transformer } from "../naming/index.js";
import type { NamerInstance, PluginContext } from "../plugins/types.js";

export interface RouterNaming {
  readonly label: string;
  readonly dstPrefix: Path;
  readonly identifier: Identifier;
  readonly interpreter: Interpreter;
  readonly bindingTimeoutMs: number;
  /** Stops the interpreter's and identifiers' watches. */
  close(): void;
}

export interface NamingSetup {
  readonly resolver: HostResolver;
  readonly routers: ReadonlyMap<string, RouterNaming>;
  /** The Kubernetes API endpoints the kinds use (the control thread's own clients). */
  readonly kube: KubeApis | undefined;
  /** The configured namers by prefix (`io.l5d.k8s`), for their admin state. */
  readonly namers: ReadonlyMap<string, NamerInstance>;
  close(): void;
}

export interface NamingOptions {
  readonly log: Logger;
  readonly resolver?: HostResolver;
  readonly kube?: KubeApis;
}

export function routerLabel(r: RouterConfig): string {
  return r.label ?? r.protocol;
}

export function buildNaming(config: LintelConfig, opts: NamingOptions): NamingSetup {
  const { log } = opts;
  let resolver = opts.resolver;
  let ownResolver: DnsResolver | undefined;
  if (!resolver) {
    resolver = ownResolver = createDnsResolver(config.dns, {
      log: log.child({ component: "dns" }),
    });
  }
  const global = createGlobalNamer(resolver);
  const globalNamers = globalLookup(global);
  const kube =
    opts.kube ?? new KubeApis(config.kubernetes, { log, clock: systemClock, random: Math.random });
  const services = {
    clock: systemClock,
    random: Math.random,
    kube: (ref?: KubeApiRef) => kube.get(ref),
  };

  const transformer = (pc: PluginConfig<"transformer">): Transformer =>
    pc.plugin.create(pc.config, {
      ...services,
      log: log.child({ transformer: pc.kind }),
      prefix: TRANSFORMER_ROOT.concat(pc.prefix!),
      globalNamers,
      resolver,
    });

  const namerInstances = new Map<string, NamerInstance>();
  const mounted: MountedNamer[] = config.namers.map((pc) => {
    const prefix = CONFIGURED_NAMER_ROOT.concat(pc.prefix!);
    const instance = pc.plugin.create(pc.config, {
      ...services,
      log: log.child({ namer: pc.kind }),
      prefix,
      resolver,
    });
    namerInstances.set(pc.prefix!.show.slice(1), instance);
    return { prefix, namer: withTransformers(instance, (pc.transformers ?? []).map(transformer)) };
  });
  const namers = namerLookup(mounted, global);

  const routers = routerNamings(config, log, services, (r, label, rlog) =>
    r.interpreter.plugin.create(r.interpreter.config, {
      ...services,
      log: rlog,
      label,
      routerDtab: r.dtab.dtab,
      namers,
      transformers: (r.interpreter.transformers ?? []).map(transformer),
    }),
  );

  return {
    resolver,
    routers,
    kube,
    namers: namerInstances,
    close() {
      for (const r of routers.values()) r.close();
      for (const n of namerInstances.values()) n.close?.();
      kube.close();
      ownResolver?.close();
    },
  };
}

/** Each router's identifiers, with the interpreter `interpreterOf` gives it. */
function routerNamings(
  config: LintelConfig,
  log: Logger,
  services: Omit<PluginContext, "log">,
  interpreterOf: (r: RouterConfig, label: string, log: Logger) => Interpreter,
): Map<string, RouterNaming> {
  const routers = new Map<string, RouterNaming>();
  for (const r of config.routers) {
    const label = routerLabel(r);
    const rlog = log.child({ router: label });
    const identifiers = r.identifier.map((pc) =>
      pc.plugin.create(pc.config, { ...services, log: rlog, dstPrefix: r.dstPrefix }),
    );
    const interpreter = interpreterOf(r, label, rlog);
    routers.set(label, {
      label,
      dstPrefix: r.dstPrefix,
      identifier: firstMatch(identifiers),
      interpreter,
      bindingTimeoutMs: r.bindingTimeoutMs,
      close() {
        interpreter.close();
        for (const i of identifiers) i.close?.();
      },
    });
  }
  return routers;
}

/**
 * A worker thread's naming: its own identifiers, and interpreters that ask the control
 * thread (which owns the namers, DNS and file watches). Nothing here resolves names.
 */
export function buildWorkerNaming(
  config: LintelConfig,
  log: Logger,
  interpreters: (router: string) => Interpreter,
  kube: (ref?: KubeApiRef) => KubeApi,
): NamingSetup {
  const services = { clock: systemClock, random: Math.random, kube };
  const routers = routerNamings(config, log, services, (_r, label) => interpreters(label));
  return {
    resolver: {
      watch: () => {
        throw new Error("a worker resolves nothing itself; the control thread does");
      },
    },
    routers,
    kube: undefined,
    namers: new Map(),
    close() {
      for (const r of routers.values()) r.close();
    },
  };
}
