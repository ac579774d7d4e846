// Binding a name with Finagle's semantics: look the path up in the whole dtab (the
// last-defined matching dentry first, as alternates), rewrite, and look the result up
// again from the bottom; when no dentry matches, ask the namers. Alternates fall through
// on neg only, fail stops, empty wins, union branches that bind survive. The result
// has no alternates left: a leaf, a union, or neg / fail / empty.

import type { Dtab } from "./dtab.js";
import type { BoundName, Name } from "./name.js";
import { sameName } from "./name.js";
import { type NameTree, Neg, simplify, type Weighted } from "./name-tree.js";
import { Path } from "./path.js";
import { failed, ok, PENDING, type Read, type State } from "./var.js";

/** Finagle's limit on nested lookups while binding one name. */
export const MAX_DEPTH = 100;
/** Bounds the work of pathological dtabs (unions of unions of loops) that stay under MAX_DEPTH. */
export const MAX_LOOKUPS = 10_000;

/** Resolves a path no dentry matched: the configured namers, then the `/$/` namers. */
export type NamerLookup = (path: Path, read: Read) => State<NameTree<Name>>;

/** Post-processes bound names (Linkerd's transformers): ports, host filters, replacements. */
export interface Transformer {
  /** Shown in delegation trees, e.g. `io.l5d.port`. */
  readonly name: string;
  /** The tree one bound name becomes. */
  transformLeaf(bound: BoundName, read: Read): State<NameTree<BoundName>>;
  /** Whole-tree transformation; defaults to transforming every leaf. */
  transformTree?(tree: NameTree<BoundName>, read: Read): State<NameTree<BoundName>>;
}

export interface NamingContext {
  readonly dtab: Dtab;
  readonly namers: NamerLookup;
  readonly transformers?: readonly Transformer[];
}

export class BindingError extends Error {
  constructor(
    readonly code: "LINTEL_BIND_DEPTH" | "LINTEL_BIND_TOO_COMPLEX",
    message: string,
  ) {
    super(message);
    this.name = "BindingError";
  }
}

/** Looks a path up: the dtab first, the namers when no dentry matches. */
export function lookup(ctx: NamingContext, path: Path, read: Read): State<NameTree<Name>> {
  const t = ctx.dtab.lookup(path);
  if (t.kind !== "neg") return ok(t as NameTree<Name>);
  return ctx.namers(path, read);
}

// Dtab lookups yield trees of Paths; namers yield trees of Names. Both are bound the same way.
type Unbound = NameTree<Name | Path>;

/** Binds `path` once, reading namer state through `read` (which records dependencies). */
export function bindPath(ctx: NamingContext, path: Path, read: Read): State<NameTree<BoundName>> {
  let lookups = 0;
  // Running out of lookups fails the whole binding, even inside a union (where an
  // ordinary failed branch would just be dropped).
  let exhausted: State<never> | undefined;
  const bindTree = (tree: Unbound, depth: number): State<NameTree<BoundName>> => {
    if (exhausted) return exhausted;
    switch (tree.kind) {
      case "neg":
      case "fail":
      case "empty":
        return ok(tree);
      case "leaf": {
        const v = tree.value;
        if (!(v instanceof Path) && v.kind === "bound") return ok({ kind: "leaf", value: v });
        const next = v instanceof Path ? v : v.path;
        if (depth >= MAX_DEPTH) {
          return failed(
            new BindingError(
              "LINTEL_BIND_DEPTH",
              `binding ${path.show} went deeper than ${MAX_DEPTH} lookups (at ${next.show}); the dtab loops`,
            ),
          );
        }
        if (++lookups > MAX_LOOKUPS) {
          exhausted = failed(
            new BindingError(
              "LINTEL_BIND_TOO_COMPLEX",
              `binding ${path.show} took more than ${MAX_LOOKUPS} lookups; simplify the dtab`,
            ),
          );
          return exhausted;
        }
        const found = lookup(ctx, next, read);
        if (found.status !== "ok") return found;
        return bindTree(found.value, depth + 1);
      }
      case "alt": {
        for (const t of tree.trees) {
          const s = bindTree(t, depth);
          if (s.status !== "ok") return s;
          if (s.value.kind === "neg") continue;
          return s;
        }
        return ok(Neg);
      }
      case "union": {
        const branches = tree.trees;
        if (branches.length === 0) return ok(Neg);
        if (branches.length === 1) return bindTree(branches[0]!.tree, depth);
        const oks: Weighted<BoundName>[] = [];
        let firstFailure: State<never> | undefined;
        for (const w of branches) {
          const s = bindTree(w.tree, depth);
          if (s.status === "ok") oks.push({ weight: w.weight, tree: s.value });
          else if (s.status === "failed" && firstFailure === undefined) firstFailure = s;
        }
        if (exhausted) return exhausted;
        if (oks.length > 0) return ok(simplify({ kind: "union", trees: oks }));
        return firstFailure ?? PENDING;
      }
    }
  };
  const bound = bindTree({ kind: "leaf", value: path }, 0);
  if (bound.status !== "ok" || !ctx.transformers?.length) return bound;
  let tree = bound.value;
  for (const t of ctx.transformers) {
    const s = t.transformTree ? t.transformTree(tree, read) : transformLeaves(tree, t, read);
    if (s.status !== "ok") return s;
    tree = s.value;
  }
  return ok(tree);
}

/** Applies a transformer to every leaf of a bound tree. */
export function transformLeaves(
  tree: NameTree<BoundName>,
  t: Transformer,
  read: Read,
): State<NameTree<BoundName>> {
  switch (tree.kind) {
    case "leaf":
      return t.transformLeaf(tree.value, read);
    case "alt":
    case "union": {
      const parts =
        tree.kind === "alt" ? tree.trees.map((x) => ({ weight: 1, tree: x })) : tree.trees;
      const out: Weighted<BoundName>[] = [];
      for (const w of parts) {
        const s = transformLeaves(w.tree, t, read);
        if (s.status !== "ok") return s;
        out.push({ weight: w.weight, tree: s.value });
      }
      return ok(
        simplify(
          tree.kind === "alt"
            ? { kind: "alt", trees: out.map((w) => w.tree) }
            : { kind: "union", trees: out },
        ),
      );
    }
    default:
      return ok(tree);
  }
}

/** Structural equality of name trees, so a rebind that changes nothing is not an event. */
export function boundTreeEquals<N extends Name>(a: NameTree<N>, b: NameTree<N>): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case "leaf":
      return sameName(a.value, (b as typeof a).value);
    case "alt": {
      const bt = (b as typeof a).trees;
      return a.trees.length === bt.length && a.trees.every((t, i) => boundTreeEquals(t, bt[i]!));
    }
    case "union": {
      const bt = (b as typeof a).trees;
      return (
        a.trees.length === bt.length &&
        a.trees.every((w, i) => w.weight === bt[i]!.weight && boundTreeEquals(w.tree, bt[i]!.tree))
      );
    }
    default:
      return true;
  }
}

export function boundStateEquals<N extends Name>(
  a: State<NameTree<N>>,
  b: State<NameTree<N>>,
): boolean {
  if (a === b) return true;
  if (a.status !== b.status) return false;
  if (a.status === "ok") return boundTreeEquals(a.value, (b as typeof a).value);
  if (a.status === "failed") return a.error.message === (b as typeof a).error.message;
  return true;
}
