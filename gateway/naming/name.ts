// Names: a leaf of a name tree is either a path still to be resolved, or a bound
// name (an id that identifies the destination, the residual path, and live addresses).

import type { Addr } from "./addr.js";
import type { NameTree } from "./name-tree.js";
import type { Path } from "./path.js";
import type { Activity, Var } from "./var.js";

export interface PathName {
  readonly kind: "path";
  readonly path: Path;
}

export interface BoundName {
  readonly kind: "bound";
  /** Identifies the destination (the client key), e.g. /#/io.l5d.fs/users. */
  readonly id: Path;
  /** What was left of the name after the namer consumed its part. */
  readonly residual: Path;
  readonly addr: Var<Addr>;
}

export type Name = PathName | BoundName;

export function pathName(path: Path): PathName {
  return { kind: "path", path };
}

export function boundName(id: Path, addr: Var<Addr>, residual: Path): BoundName {
  return { kind: "bound", id, residual, addr };
}

/**
 * A namer turns the part of a path after its prefix into a name tree: bound names,
 * paths to resolve further (rewriting namers), or neg when it does not know the name.
 * Lookups of one path should return the same Activity each time.
 */
export interface Namer {
  lookup(path: Path): Activity<NameTree<Name>>;
}

/**
 * Two bound names are the same destination when id, residual and address source match;
 * two path names when their paths are equal.
 */
export function sameName(a: Name, b: Name): boolean {
  if (a === b) return true;
  if (a.kind === "path") return b.kind === "path" && a.path.equals(b.path);
  return (
    b.kind === "bound" && a.addr === b.addr && a.id.equals(b.id) && a.residual.equals(b.residual)
  );
}
