// Dtab: an ordered list of delegation rules (dentries) `prefix => tree`.
// Lookup follows Finagle: every dentry whose prefix matches contributes, the
// last-defined first, as alternates; the unmatched rest of the path is appended.

import { alt, mapTree, type NameTree, Neg, showTree } from "./name-tree.js";
import { Path } from "./path.js";

/** A prefix element: a literal segment, or `*` which matches any one segment. */
export type PrefixElem = string | typeof ANY;
export const ANY: unique symbol = Symbol("*");

export class Prefix {
  static readonly empty = new Prefix([]);
  constructor(readonly elems: readonly PrefixElem[]) {}

  get size(): number {
    return this.elems.length;
  }

  matches(path: Path): boolean {
    const e = this.elems;
    if (e.length > path.size) return false;
    const segs = path.segments;
    for (let i = 0; i < e.length; i++) {
      const el = e[i]!;
      if (el !== ANY && el !== segs[i]) return false;
    }
    return true;
  }

  get show(): string {
    if (this.elems.length === 0) return "/";
    return this.elems.map((el) => (el === ANY ? "/*" : Path.fromTrusted([el]).show)).join("");
  }
}

export interface Dentry {
  readonly prefix: Prefix;
  readonly dst: NameTree<Path>;
}

export const showPathTree = (t: NameTree<Path>): string => showTree(t, (p) => p.show);

export function showDentry(d: Dentry): string {
  return `${d.prefix.show}=>${showPathTree(d.dst)}`;
}

export class Dtab {
  static readonly empty = new Dtab([]);
  constructor(readonly dentries: readonly Dentry[]) {}

  get size(): number {
    return this.dentries.length;
  }

  /** `;`-separated, as Finagle prints it (and as the parser reads it back). */
  get show(): string {
    return this.dentries.map(showDentry).join(";");
  }

  concat(other: Dtab): Dtab {
    if (other.size === 0) return this;
    if (this.size === 0) return other;
    return new Dtab([...this.dentries, ...other.dentries]);
  }

  /** The dentries matching `path`, the last-defined first. */
  matching(path: Path): Dentry[] {
    const out: Dentry[] = [];
    for (let i = this.dentries.length - 1; i >= 0; i--) {
      const d = this.dentries[i]!;
      if (d.prefix.matches(path)) out.push(d);
    }
    return out;
  }

  /** Finagle's Dtab.lookup: neg when nothing matches, else the rewritten trees as alternates. */
  lookup(path: Path): NameTree<Path> {
    const matches = this.matching(path);
    if (matches.length === 0) return Neg;
    const trees = matches.map((d) => rewrite(d, path));
    return trees.length === 1 ? trees[0]! : alt(...trees);
  }
}

/** Applies one dentry to a path it matches: the destination with the path's rest appended. */
export function rewrite(d: Dentry, path: Path): NameTree<Path> {
  const rest = path.drop(d.prefix.size);
  return rest.isEmpty ? d.dst : mapTree(d.dst, (p) => p.concat(rest));
}
