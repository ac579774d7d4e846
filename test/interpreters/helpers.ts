// Shared setup for the interpreter tests (not a test file itself): writes a temp config,
// loads it with the real loader and builds the naming side with a fake DNS.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../gateway/log.js";
import type { DelegateNode } from "../../gateway/naming/index.js";
import { buildNaming, type NamingSetup } from "../../gateway/routing/naming-setup.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import { type FakeDns, fakeDns, fakeResolver } from "../namers/helpers.js";

export interface Built {
  readonly naming: NamingSetup;
  readonly dns: FakeDns;
}

/** Writes `yaml` as dir/lintel.yaml, loads it and builds the naming (fake DNS, refresh 20 ms). */
export async function buildFromYaml(
  dir: string,
  yaml: string,
  answers: Record<string, readonly string[] | Error> = {},
): Promise<Built> {
  const file = join(dir, "lintel.yaml");
  writeFileSync(file, yaml);
  const loaded = await loadLintelConfig(file, { env: {} });
  if (!loaded.ok) {
    throw new Error(
      `config does not load: ${loaded.errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`,
    );
  }
  const dns = fakeDns(answers);
  const resolver = fakeResolver(dns.lookup);
  return { naming: buildNaming(loaded.config, { log: silentLogger, resolver }), dns };
}

/** The ids of every bound leaf of a delegation tree, in order. */
export function delegatedLeaves(n: DelegateNode): string[] {
  switch (n.type) {
    case "leaf":
      return [n.bound.id.show];
    case "delegate":
      return delegatedLeaves(n.delegate);
    case "alt":
      return n.alt.flatMap(delegatedLeaves);
    case "union":
      return n.union.flatMap((w) => delegatedLeaves(w.tree));
    case "transformation":
      return delegatedLeaves(n.tree);
    default:
      return [];
  }
}
