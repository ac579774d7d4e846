// Puts configured namers together: each is mounted at `/#/<prefix>`, tried in config
// order (a namer answering neg passes to the next one that matches), then the `/$/`
// namers. A namer may carry its own transformers, applied to what it binds.

import {
  type Activity,
  type BoundName,
  boundStateEquals,
  computed,
  type Name,
  type Namer,
  type NamerLookup,
  type NameTree,
  ok,
  Path,
  type State,
  type Transformer,
  transformLeaves,
  VarCache,
} from "../naming/index.js";

export interface MountedNamer {
  /** Full prefix, e.g. /#/io.l5d.fs. */
  readonly prefix: Path;
  readonly namer: Namer;
}

export const CONFIGURED_NAMER_ROOT = Path.of("#");
export const TRANSFORMER_ROOT = Path.of("%");

export function namerLookup(mounted: readonly MountedNamer[], global: Namer): NamerLookup {
  return (path, read) => {
    for (const m of mounted) {
      if (!path.startsWith(m.prefix)) continue;
      const s = read(m.namer.lookup(path.drop(m.prefix.size)));
      if (s.status !== "ok" || s.value.kind !== "neg") return s;
    }
    return read(global.lookup(path));
  };
}

/** The `/$/` namers alone (what io.l5d.replace and io.l5d.const bind through). */
export function globalLookup(global: Namer): NamerLookup {
  return (path, read) => read(global.lookup(path));
}

function isFullyBound(tree: NameTree<Name>): tree is NameTree<BoundName> {
  switch (tree.kind) {
    case "leaf":
      return tree.value.kind === "bound";
    case "alt":
      return tree.trees.every(isFullyBound);
    case "union":
      return tree.trees.every((w) => isFullyBound(w.tree));
    default:
      return true;
  }
}

/** A namer whose bound results pass through `transformers` (Linkerd's namer `transformers`). */
export function withTransformers(namer: Namer, transformers: readonly Transformer[]): Namer {
  if (transformers.length === 0) return namer;
  const cache = new VarCache<string, State<NameTree<Name>>>();
  return {
    lookup(path: Path): Activity<NameTree<Name>> {
      return cache.get(path.show, () =>
        computed((read) => {
          const s = read(namer.lookup(path));
          if (s.status !== "ok" || !isFullyBound(s.value)) return s;
          let tree: NameTree<BoundName> = s.value;
          for (const t of transformers) {
            const next = t.transformTree
              ? t.transformTree(tree, read)
              : transformLeaves(tree, t, read);
            if (next.status !== "ok") return next;
            tree = next.value;
          }
          return ok(tree as NameTree<Name>);
        }, boundStateEquals),
      );
    },
  };
}
