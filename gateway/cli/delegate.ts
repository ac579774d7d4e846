// `lintel delegate CONFIG --router LABEL PATH [--dtab DENTRIES] [--json]`: shows how a
// router resolves a name, step by step, and what it binds to. Exit 0 when the name
// binds to at least one address, 1 otherwise.

import { formatConfigError } from "../config/load.js";
import { createLogger } from "../log.js";
import {
  type BoundName,
  type Dtab,
  Dtab as DtabClass,
  NameParseError,
  type NameTree,
  type Path,
  readDtab,
  readPath,
} from "../naming/index.js";
import { delegationJson } from "../routing/delegate-json.js";
import { explanationText } from "../routing/delegate-text.js";
import { explain } from "../routing/explain.js";
import { buildNaming } from "../routing/naming-setup.js";
import { loadLintelConfig } from "../setup.js";

export interface DelegateArgs {
  readonly config: string;
  readonly router?: string;
  readonly path: string;
  readonly dtab?: string;
  readonly json: boolean;
  readonly timeoutMs?: number;
}

function parseOr<T>(
  what: string,
  text: string,
  parse: (s: string) => T,
  out: (s: string) => void,
): T | undefined {
  try {
    return parse(text);
  } catch (e) {
    if (!(e instanceof NameParseError)) throw e;
    out(
      `invalid ${what}: ${e.reason} at column ${e.position.column}\n  ${e.caret.split("\n").join("\n  ")}`,
    );
    return undefined;
  }
}

function hasAddress(tree: NameTree<BoundName>): boolean {
  switch (tree.kind) {
    case "leaf": {
      const a = tree.value.addr.sample();
      return a.kind === "bound" && a.addresses.length > 0;
    }
    case "alt":
      return tree.trees.some(hasAddress);
    case "union":
      return tree.trees.some((w) => hasAddress(w.tree));
    default:
      return false;
  }
}

export async function delegateCommand(
  args: DelegateArgs,
  out: (s: string) => void,
): Promise<number> {
  const loaded = await loadLintelConfig(args.config);
  if (!loaded.ok) {
    out(`${args.config}: invalid config`);
    for (const e of loaded.errors) out(`  ${formatConfigError(e)}`);
    return 1;
  }
  const path: Path | undefined = parseOr("path", args.path, readPath, out);
  if (!path) return 1;
  const local: Dtab | undefined =
    args.dtab === undefined ? DtabClass.empty : parseOr("dtab", args.dtab, readDtab, out);
  if (!local) return 1;

  // Its warnings are for the person at the terminal: text, whatever LINTEL_LOG_FORMAT says.
  const naming = buildNaming(loaded.config, {
    log: createLogger({ level: "warn", format: "text" }),
  });
  try {
    const labels = [...naming.routers.keys()];
    const label = args.router ?? (labels.length === 1 ? labels[0] : undefined);
    if (label === undefined) {
      out(`this config has several routers; pick one with --router (${labels.join(", ")})`);
      return 1;
    }
    const router = naming.routers.get(label);
    if (!router) {
      out(`no router labelled "${label}"; routers: ${labels.join(", ")}`);
      return 1;
    }
    const e = await explain(
      router.interpreter,
      local,
      path,
      args.timeoutMs ?? Math.min(router.bindingTimeoutMs, 10_000),
    );
    const binds = e.bound.status === "ok" && hasAddress(e.bound.value);
    if (args.json) {
      out(JSON.stringify(delegationJson(e, path), null, 2));
    } else {
      out(explanationText(e));
    }
    return binds ? 0 : 1;
  } finally {
    naming.close();
  }
}
