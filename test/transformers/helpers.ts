// Shared setup for the transformer tests (not a test file itself).

import { silentLogger } from "../../gateway/log.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { globalLookup } from "../../gateway/namers/mount.js";
import {
  type Addr,
  addrBound,
  address,
  type BoundName,
  boundName,
  Cell,
  Path,
  readPath,
  type Transformer,
} from "../../gateway/naming/index.js";
import type { Plugin } from "../../gateway/plugins/registry.js";
import type { TransformerContext } from "../../gateway/plugins/types.js";
import { decode, type FakeDns, fakeDns, fakeResolver } from "../namers/helpers.js";
import { noServices } from "../support/plugin-services.js";

export interface TransformerEnv {
  readonly dns: FakeDns;
  readonly ctx: (prefix: string) => TransformerContext;
  make<Config>(plugin: Plugin<"transformer", Config>, raw: unknown, prefix?: string): Transformer;
}

/** A transformer context with a fake DNS behind its resolver and the `/$/` namers. */
export function transformerEnv(
  answers: Record<string, readonly string[] | Error> = {},
): TransformerEnv {
  const dns = fakeDns(answers);
  const resolver = fakeResolver(dns.lookup);
  const globalNamers = globalLookup(createGlobalNamer(resolver));
  const ctx = (prefix: string): TransformerContext => ({
    ...noServices,
    log: silentLogger,
    prefix: readPath(prefix),
    globalNamers,
    resolver,
  });
  return {
    dns,
    ctx,
    make: (plugin, raw, prefix = `/%/${plugin.kind}`) =>
      plugin.create(decode(plugin, raw), ctx(prefix)),
  };
}

/** A bound name whose addresses live in a Cell the test controls. */
export function cellBound(
  id: string,
  addresses: Parameters<typeof address>[],
  residual = "/",
): { name: BoundName; cell: Cell<Addr> } {
  const cell = new Cell<Addr>(addrBound(addresses.map((a) => address(...a))));
  const name = boundName(readPath(id), cell, residual === "/" ? Path.empty : readPath(residual));
  return { name, cell };
}
