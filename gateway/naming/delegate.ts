// The delegation explainer: every step of resolving a name, as Linkerd's delegator shows
// it. Unlike binding, every alternate and union branch is followed, so the tree shows
// what each dentry would do. A node's `path` is the name at that step and its `dentry`
// the rule that produced that name (null at the root). Names a namer produces keep the
// dentry that led to the namer, as Linkerd's delegator shows them.

import { lookup, MAX_DEPTH, type NamingContext } from "./bind.js";
import type { Dentry } from "./dtab.js";
import { rewrite } from "./dtab.js";
import type { BoundName, Name } from "./name.js";
import type { NameTree } from "./name-tree.js";
import { Path } from "./path.js";
import type { Read } from "./var.js";

/** Bounds the size of a delegation tree (a dtab can describe exponentially many paths). */
export const MAX_DELEGATE_NODES = 5_000;

interface NodeBase {
  readonly path: Path;
  readonly dentry: Dentry | null;
}

export type DelegateNode =
  | (NodeBase & { readonly type: "delegate"; readonly delegate: DelegateNode })
  | (NodeBase & { readonly type: "alt"; readonly alt: readonly DelegateNode[] })
  | (NodeBase & { readonly type: "union"; readonly union: readonly WeightedNode[] })
  | (NodeBase & { readonly type: "leaf"; readonly bound: BoundName })
  | (NodeBase & { readonly type: "neg" | "fail" | "empty" })
  | (NodeBase & { readonly type: "exception"; readonly message: string })
  | {
      readonly type: "transformation";
      readonly path: Path;
      readonly name: string;
      readonly bound: BoundName;
      readonly tree: DelegateNode;
    };

export interface WeightedNode {
  readonly type: "weighted";
  readonly weight: number;
  readonly tree: DelegateNode;
}

export interface Delegation {
  readonly tree: DelegateNode;
  /** True when some namer had not answered yet; the tree shows those steps as exceptions. */
  readonly pending: boolean;
}

/** Explains how `path` resolves in `ctx`, reading namer state through `read`. */
export function delegatePath(ctx: NamingContext, path: Path, read: Read): Delegation {
  let nodes = 0;
  let pending = false;

  const exception = (p: Path, dentry: Dentry | null, message: string): DelegateNode => ({
    type: "exception",
    path: p,
    dentry,
    message,
  });

  // A name tree produced for `p` (by dentry `dentry` or a namer) turned into nodes; its path
  // leaves are resolved further.
  const fromTree = (
    p: Path,
    dentry: Dentry | null,
    tree: NameTree<Name | Path>,
    depth: number,
  ): DelegateNode => {
    if (++nodes > MAX_DELEGATE_NODES) {
      return exception(p, dentry, `delegation tree larger than ${MAX_DELEGATE_NODES} nodes`);
    }
    switch (tree.kind) {
      case "neg":
        return { type: "neg", path: p, dentry };
      case "fail":
        return { type: "fail", path: p, dentry };
      case "empty":
        return { type: "empty", path: p, dentry };
      case "leaf": {
        const v = tree.value;
        if (v instanceof Path) return resolve(v, dentry, depth);
        if (v.kind === "path") return resolve(v.path, dentry, depth);
        return transformed({ type: "leaf", path: p, dentry, bound: v }, read);
      }
      case "alt":
        return {
          type: "alt",
          path: p,
          dentry,
          alt: tree.trees.map((t) => fromTree(p, dentry, t, depth)),
        };
      case "union":
        return {
          type: "union",
          path: p,
          dentry,
          union: tree.trees.map((w) => ({
            type: "weighted" as const,
            weight: w.weight,
            tree: fromTree(p, dentry, w.tree, depth),
          })),
        };
    }
  };

  // What the name `p` (produced by `dentry`) resolves to.
  const resolve = (p: Path, dentry: Dentry | null, depth: number): DelegateNode => {
    if (depth >= MAX_DEPTH) {
      return exception(p, dentry, `deeper than ${MAX_DEPTH} lookups; the dtab loops`);
    }
    const matches = ctx.dtab.matching(p);
    let child: DelegateNode;
    // Binding asks the namers when the dtab's answer is neg: no dentry matched, or the one
    // that did says `~`. Explain the same thing.
    if (matches.length === 0 || (matches.length === 1 && matches[0]!.dst.kind === "neg")) {
      const found = lookup(ctx, p, read);
      if (found.status === "pending") {
        pending = true;
        child = exception(p, dentry, "a namer has not answered yet");
      } else if (found.status === "failed") {
        child = exception(p, dentry, found.error.message);
      } else {
        child = fromTree(p, dentry, found.value, depth + 1);
      }
    } else if (matches.length === 1) {
      child = fromTree(p, matches[0]!, rewrite(matches[0]!, p), depth + 1);
    } else {
      child = {
        type: "alt",
        path: p,
        dentry,
        alt: matches.map((d) => fromTree(p, d, rewrite(d, p), depth + 1)),
      };
    }
    return collapse({ type: "delegate", path: p, dentry, delegate: child });
  };

  // Interpreter transformers show as transformation nodes above each bound leaf, nested in
  // the order they apply: the second transforms what the first produced, and so on.
  const transformed = (node: DelegateNode & { type: "leaf" }, r: Read, from = 0): DelegateNode => {
    const transformers = ctx.transformers ?? [];
    if (from >= transformers.length) return node;
    const t = transformers[from]!;
    const before = node.bound;
    const s = t.transformLeaf(before, r);
    let after: DelegateNode;
    if (s.status === "ok") {
      after = mapLeaves(fromBound(before.id, node.dentry, s.value), (leaf) =>
        transformed(leaf, r, from + 1),
      );
    } else if (s.status === "failed") {
      after = exception(before.id, node.dentry, s.error.message);
    } else {
      pending = true;
      after = exception(before.id, node.dentry, "a transformer has not answered yet");
    }
    return { type: "transformation", path: node.path, name: t.name, bound: before, tree: after };
  };

  const fromBound = (p: Path, dentry: Dentry | null, tree: NameTree<BoundName>): DelegateNode => {
    switch (tree.kind) {
      case "leaf":
        return { type: "leaf", path: tree.value.id, dentry, bound: tree.value };
      case "alt":
        return {
          type: "alt",
          path: p,
          dentry,
          alt: tree.trees.map((t) => fromBound(p, dentry, t)),
        };
      case "union":
        return {
          type: "union",
          path: p,
          dentry,
          union: tree.trees.map((w) => ({
            type: "weighted" as const,
            weight: w.weight,
            tree: fromBound(p, dentry, w.tree),
          })),
        };
      default:
        return { type: tree.kind, path: p, dentry };
    }
  };

  return { tree: resolve(path, null, 0), pending };
}

function mapLeaves(
  n: DelegateNode,
  f: (leaf: DelegateNode & { type: "leaf" }) => DelegateNode,
): DelegateNode {
  switch (n.type) {
    case "leaf":
      return f(n);
    case "alt":
      return { ...n, alt: n.alt.map((c) => mapLeaves(c, f)) };
    case "union":
      return { ...n, union: n.union.map((w) => ({ ...w, tree: mapLeaves(w.tree, f) })) };
    default:
      return n;
  }
}

// Linkerd's simplification: a delegate whose child names the same path (a namer binding
// it, or several dentries as alternates) is shown as that child, keeping the dentry.
function collapse(node: DelegateNode & { type: "delegate" }): DelegateNode {
  const c = node.delegate;
  if (c.type === "neg" || c.type === "fail" || c.type === "empty") return node;
  if (c.type === "transformation" || !c.path.equals(node.path)) return node;
  if (
    c.type === "delegate" ||
    c.type === "alt" ||
    c.type === "union" ||
    c.type === "leaf" ||
    c.type === "exception"
  ) {
    return { ...c, dentry: node.dentry } as DelegateNode;
  }
  return node;
}
