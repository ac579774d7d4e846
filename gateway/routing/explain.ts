// Explains a name for people (the CLI and the admin delegator): the delegation tree and
// the binding the router would use, once namers and address lookups have answered (or
// the timeout passed, in which case what is still unknown shows as pending).

import type { Interpreter } from "../interpreters/interpreter.js";
import {
  type BoundName,
  computed,
  type DelegateNode,
  type Delegation,
  type Dtab,
  type NameTree,
  type Path,
  type Read,
  type State,
} from "../naming/index.js";

export interface Explanation {
  readonly delegation: Delegation | { readonly error: Error };
  readonly bound: State<NameTree<BoundName>>;
  /** False when the timeout passed with something still pending. */
  readonly settled: boolean;
}

function boundLeaves(tree: NameTree<BoundName>, out: BoundName[]): BoundName[] {
  if (tree.kind === "leaf") out.push(tree.value);
  else if (tree.kind === "alt") for (const t of tree.trees) boundLeaves(t, out);
  else if (tree.kind === "union") for (const w of tree.trees) boundLeaves(w.tree, out);
  return out;
}

function delegateLeaves(n: DelegateNode, out: BoundName[]): BoundName[] {
  switch (n.type) {
    case "leaf":
      out.push(n.bound);
      break;
    case "transformation":
      out.push(n.bound);
      delegateLeaves(n.tree, out);
      break;
    case "delegate":
      delegateLeaves(n.delegate, out);
      break;
    case "alt":
      for (const c of n.alt) delegateLeaves(c, out);
      break;
    case "union":
      for (const w of n.union) delegateLeaves(w.tree, out);
      break;
  }
  return out;
}

export function explain(
  interpreter: Interpreter,
  local: Dtab,
  path: Path,
  timeoutMs: number,
): Promise<Explanation> {
  const delegation = interpreter.delegate(local, path);
  const binding = interpreter.bind(local, path);
  const view = computed((read: Read): Explanation => {
    const d = read(delegation);
    const b = read(binding);
    let settled = b.status !== "pending" && !("pending" in d && d.pending);
    const leaves = [
      ...("tree" in d ? delegateLeaves(d.tree, []) : []),
      ...(b.status === "ok" ? boundLeaves(b.value, []) : []),
    ];
    for (const leaf of leaves) if (read(leaf.addr).kind === "pending") settled = false;
    return { delegation: d, bound: b, settled };
  });
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      const result = view.sample();
      stop();
      if (timer) clearTimeout(timer);
      resolve(result);
    };
    const stop = view.observe((e) => {
      if (e.settled) finish();
    });
    if (view.sample().settled) return finish();
    timer = setTimeout(finish, timeoutMs);
  });
}
