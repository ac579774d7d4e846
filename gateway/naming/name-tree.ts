// NameTree: the result of looking a name up in a dtab, with exactly Finagle's cases:
// a leaf, alternates (first non-negative wins), a weighted union, and the three
// terminals neg (~, no binding), fail (!, stop) and empty ($, bound to nothing).

export type NameTree<T> =
  | { readonly kind: "leaf"; readonly value: T }
  | { readonly kind: "alt"; readonly trees: readonly NameTree<T>[] }
  | { readonly kind: "union"; readonly trees: readonly Weighted<T>[] }
  | { readonly kind: "neg" }
  | { readonly kind: "fail" }
  | { readonly kind: "empty" };

export interface Weighted<T> {
  readonly weight: number;
  readonly tree: NameTree<T>;
}

export const DEFAULT_WEIGHT = 1;

export const Neg: NameTree<never> = Object.freeze({ kind: "neg" });
export const Fail: NameTree<never> = Object.freeze({ kind: "fail" });
export const Empty: NameTree<never> = Object.freeze({ kind: "empty" });

export function leaf<T>(value: T): NameTree<T> {
  return { kind: "leaf", value };
}

export function alt<T>(...trees: NameTree<T>[]): NameTree<T> {
  return { kind: "alt", trees };
}

export function union<T>(...trees: Weighted<T>[]): NameTree<T> {
  return { kind: "union", trees };
}

export function weighted<T>(weight: number, tree: NameTree<T>): Weighted<T> {
  return { weight, tree };
}

export function mapTree<T, U>(tree: NameTree<T>, f: (value: T) => U): NameTree<U> {
  switch (tree.kind) {
    case "leaf":
      return leaf(f(tree.value));
    case "alt":
      return { kind: "alt", trees: tree.trees.map((t) => mapTree(t, f)) };
    case "union":
      return {
        kind: "union",
        trees: tree.trees.map((w) => ({ weight: w.weight, tree: mapTree(w.tree, f) })),
      };
    default:
      return tree;
  }
}

/**
 * Finagle's `simplified`: alternates drop neg branches and end at the first fail; unions
 * drop neg and fail branches; a single child stands for its parent; nothing left is neg.
 * Nested alternates are flattened (evaluation-equivalent).
 */
export function simplify<T>(tree: NameTree<T>): NameTree<T> {
  switch (tree.kind) {
    case "alt": {
      const kept: NameTree<T>[] = [];
      for (const t of tree.trees) {
        const s = simplify(t);
        if (s.kind === "neg") continue;
        if (s.kind === "alt") kept.push(...s.trees);
        else kept.push(s);
        if (s.kind === "fail") break;
      }
      if (kept.length === 0) return Neg;
      if (kept.length === 1) return kept[0]!;
      return { kind: "alt", trees: kept };
    }
    case "union": {
      const kept: Weighted<T>[] = [];
      for (const w of tree.trees) {
        const s = simplify(w.tree);
        if (s.kind !== "neg" && s.kind !== "fail") kept.push({ weight: w.weight, tree: s });
      }
      if (kept.length === 0) return Neg;
      if (kept.length === 1) return kept[0]!.tree;
      return { kind: "union", trees: kept };
    }
    default:
      return tree;
  }
}

/** A weight as the parser reads it back: plain decimal digits, never exponent notation. */
export function formatWeight(w: number): string {
  const s = String(w);
  if (!s.includes("e")) return s;
  if (w >= 1) return BigInt(Math.round(w)).toString();
  return w.toFixed(20).replace(/0+$/, "");
}

/** Prints a tree in dtab syntax; `showLeaf` prints a leaf value. */
export function showTree<T>(tree: NameTree<T>, showLeaf: (value: T) => string): string {
  const simple = (t: NameTree<T>): string => {
    switch (t.kind) {
      case "leaf":
        return showLeaf(t.value);
      case "neg":
        return "~";
      case "fail":
        return "!";
      case "empty":
        return "$";
      default:
        return `(${showAlt(t)})`;
    }
  };
  const showUnion = (t: NameTree<T>): string =>
    t.kind === "union"
      ? t.trees
          .map((w) =>
            w.weight === DEFAULT_WEIGHT
              ? simple(w.tree)
              : `${formatWeight(w.weight)} * ${simple(w.tree)}`,
          )
          .join(" & ")
      : simple(t);
  const showAlt = (t: NameTree<T>): string =>
    t.kind === "alt" ? t.trees.map(showUnion).join(" | ") : showUnion(t);
  return showAlt(tree);
}
