// Builds the naming side of every router from a decoded config: the DNS resolver, the
// `/$/` namers, the configured namers mounted at `/#/<prefix>` (with their transformers),
// and per router its identifier chain and interpreter.

import type { LintelConfig, RouterConfig } from "../config/config-schema.js";
import type { PluginConfig } from "../config/plugin-schema.js";
import { firstMatch, type Identifier } from "../identifiers/identifier.js";
import type { Interpreter } from "../interpreters/interpreter.js";
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
import type { NamerInstance } from "../plugins/types.js";

export interface RouterNaming {
  readonly label: string;
  readonly dstPrefix: Path;
  readonly identifier: Identifier;
  readonly interpreter: Interpreter;
  readonly bindingTimeoutMs: number;
}

export interface NamingSetup {
  readonly resolver: HostResolver;
  readonly routers: ReadonlyMap<string, RouterNaming>;
  close(): void;
}

export interface NamingOptions {
  readonly log: Logger;
  readonly resolver?: HostResolver;
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

  const transformer = (pc: PluginConfig<"transformer">): Transformer =>
    pc.plugin.create(pc.config, {
      log: log.child({ transformer: pc.kind }),
      prefix: TRANSFORMER_ROOT.concat(pc.prefix!),
      globalNamers,
      resolver,
    });

  const namerInstances: NamerInstance[] = [];
  const mounted: MountedNamer[] = config.namers.map((pc) => {
    const prefix = CONFIGURED_NAMER_ROOT.concat(pc.prefix!);
    const instance = pc.plugin.create(pc.config, { log: log.child({ namer: pc.kind }), prefix });
    namerInstances.push(instance);
    return { prefix, namer: withTransformers(instance, (pc.transformers ?? []).map(transformer)) };
  });
  const namers = namerLookup(mounted, global);

  const routers = routerNamings(config, log, (r, label, rlog) =>
    r.interpreter.plugin.create(r.interpreter.config, {
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
    close() {
      for (const r of routers.values()) r.interpreter.close();
      for (const n of namerInstances) n.close?.();
      ownResolver?.close();
    },
  };
}

/** Each router's identifiers, with the interpreter `interpreterOf` gives it. */
function routerNamings(
  config: LintelConfig,
  log: Logger,
  interpreterOf: (r: RouterConfig, label: string, log: Logger) => Interpreter,
): Map<string, RouterNaming> {
  const routers = new Map<string, RouterNaming>();
  for (const r of config.routers) {
    const label = routerLabel(r);
    const rlog = log.child({ router: label });
    const identifier = firstMatch(
      r.identifier.map((pc) => pc.plugin.create(pc.config, { log: rlog, dstPrefix: r.dstPrefix })),
    );
    routers.set(label, {
      label,
      dstPrefix: r.dstPrefix,
      identifier,
      interpreter: interpreterOf(r, label, rlog),
      bindingTimeoutMs: r.bindingTimeoutMs,
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
): NamingSetup {
  const routers = routerNamings(config, log, (_r, label) => interpreters(label));
  return {
    resolver: {
      watch: () => {
        throw new Error("a worker resolves nothing itself; the control thread does");
      },
    },
    routers,
    close() {},
  };
}
