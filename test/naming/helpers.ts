// Shared helpers for the naming tests (not a test file itself: vitest only picks up *.test.ts).
// Trees are compared through plain "shapes" instead of toEqual on the raw objects, because
// Path caches its printed form in a private field and two equal paths can differ in it.

import {
  type Addr,
  ANY,
  addrBound,
  address,
  type BoundName,
  boundName,
  constant,
  type DelegateNode,
  type Dentry,
  type Dtab,
  leaf,
  type Name,
  NameParseError,
  type NamerLookup,
  type NameTree,
  Neg,
  ok,
  type Path,
  type Prefix,
  type Read,
  type State,
  type Var,
} from "../../gateway/naming/index.js";

export type Shape = string | { alt: Shape[] } | { union: Array<[number, Shape]> };

/** A tree as plain data: leaves through `showLeaf`, terminals as `~`, `!`, `$`. */
export function shape<T>(t: NameTree<T>, showLeaf: (v: T) => string): Shape {
  switch (t.kind) {
    case "leaf":
      return showLeaf(t.value);
    case "neg":
      return "~";
    case "fail":
      return "!";
    case "empty":
      return "$";
    case "alt":
      return { alt: t.trees.map((x) => shape(x, showLeaf)) };
    case "union":
      return { union: t.trees.map((w) => [w.weight, shape(w.tree, showLeaf)] as [number, Shape]) };
  }
}

/** Leaves printed with Path.show (readable expectations). */
export const pathShape = (t: NameTree<Path>): Shape => shape(t, (p) => p.show);

/** Leaves as their raw segments (independent of Path.show, for round-trip checks). */
export const segShape = (t: NameTree<Path>): Shape => shape(t, (p) => JSON.stringify(p.segments));

/** Prefix elements with `*` as the marker "<ANY>". */
export const prefixShape = (p: Prefix): string[] =>
  p.elems.map((e) => (e === ANY ? "<ANY>" : (e as string)));

export const dentryShape = (d: Dentry) => ({ prefix: prefixShape(d.prefix), dst: segShape(d.dst) });

export const dtabShape = (d: Dtab) => d.dentries.map(dentryShape);

/** A bound name as `id` or `id (residual /r)`. */
export const showBound = (b: BoundName): string =>
  b.residual.isEmpty ? b.id.show : `${b.id.show} (residual ${b.residual.show})`;

export const boundShape = (t: NameTree<BoundName>): Shape => shape(t, showBound);

/** The shape of an ok state's tree, or a marker for pending / failed. */
export function stateShape(
  s: State<NameTree<BoundName>>,
): Shape | { pending: true } | { failed: string } {
  if (s.status === "pending") return { pending: true };
  if (s.status === "failed") return { failed: s.error.message };
  return boundShape(s.value);
}

/** Runs `fn`, which must throw a NameParseError, and returns that error. */
export function parseError(fn: () => unknown): NameParseError {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    if (e instanceof NameParseError) return e;
    throw e;
  }
  throw new Error(`expected a NameParseError, but parsing returned ${String(result)}`);
}

// ---- a fake namer -------------------------------------------------------------------------

export interface FakeNamers {
  readonly lookup: NamerLookup;
  /** Every path the namers were asked about, in order (shown). */
  readonly calls: string[];
  /** The address Var used for the bound id `id` (stable, so sameBound holds across binds). */
  addrOf(id: string): Var<Addr>;
}

export type Special = State<NameTree<Name>> | ((path: Path, read: Read) => State<NameTree<Name>>);

/**
 * Namers for tests. `/#/fs/<svc>/<rest...>` is bound (id `/#/fs/<svc>`, residual `<rest>`) when
 * `svc` is in `known`, else neg. `specials` answers exact paths (by their shown form) first:
 * a fixed state or a function of (path, read). Every other path is neg.
 */
export function fakeNamers(
  known: readonly string[],
  specials: Record<string, Special> = {},
): FakeNamers {
  const calls: string[] = [];
  const addrs = new Map<string, Var<Addr>>();
  const addrOf = (id: string): Var<Addr> => {
    let v = addrs.get(id);
    if (v === undefined) {
      v = constant(addrBound([address("10.0.0.1", 8000 + addrs.size)]));
      addrs.set(id, v);
    }
    return v;
  };
  const lookup: NamerLookup = (path, read) => {
    calls.push(path.show);
    const special = specials[path.show];
    if (special !== undefined) return typeof special === "function" ? special(path, read) : special;
    const s = path.segments;
    if (s.length >= 3 && s[0] === "#" && s[1] === "fs" && known.includes(s[2]!)) {
      const id = path.take(3);
      return ok(leaf(boundName(id, addrOf(id.show), path.drop(3))));
    }
    return ok(Neg);
  };
  return { lookup, calls, addrOf };
}

// ---- delegation trees ----------------------------------------------------------------------

/** Every node of a delegation tree, depth first, the root first. */
export function allNodes(root: DelegateNode): DelegateNode[] {
  const out: DelegateNode[] = [];
  const stack: DelegateNode[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    out.push(n);
    switch (n.type) {
      case "delegate":
        stack.push(n.delegate);
        break;
      case "alt":
        for (let i = n.alt.length - 1; i >= 0; i--) stack.push(n.alt[i]!);
        break;
      case "union":
        for (let i = n.union.length - 1; i >= 0; i--) stack.push(n.union[i]!.tree);
        break;
      case "transformation":
        stack.push(n.tree);
        break;
      default:
        break;
    }
  }
  return out;
}
