// An interpreter binds service names for one router: its dtab (plus per-request
// dentries) over the configured namers, then its transformers.

import type {
  Activity,
  BoundName,
  Delegation,
  Dtab,
  NameTree,
  Path,
  Var,
} from "../naming/index.js";

export interface Interpreter {
  /** The bound tree of `path`, live: it changes when the dtab or a namer changes. */
  bind(local: Dtab, path: Path): Activity<NameTree<BoundName>>;
  /** The delegation explanation of `path` (Linkerd's delegator), live. */
  delegate(local: Dtab, path: Path): Var<Delegation | { readonly error: Error }>;
  close(): void;
}
