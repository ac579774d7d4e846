// A worker's interpreter: binding is done by the control thread (which owns the namers,
// DNS and file watches); the worker asks for a name when its binding cache first
// observes it and stops asking when the cache lets go.

import type { Interpreter } from "../interpreters/interpreter.js";
import {
  type Activity,
  type BoundName,
  Cell,
  constant,
  type Delegation,
  type Dtab,
  type NameTree,
  type Path,
  PENDING,
  type State,
  type Var,
} from "../naming/index.js";
import type { FromWorker, WireState } from "./protocol.js";
import type { TreeDecoder } from "./tree-codec.js";

/** The bindings a worker has asked the control thread for, by subscription number. */
export class RemoteBindings {
  private readonly subs = new Map<number, Cell<State<NameTree<BoundName>>>>();
  private nextSub = 1;

  constructor(
    readonly decoder: TreeDecoder,
    private readonly post: (m: FromWorker) => void,
  ) {}

  interpreter(router: string): Interpreter {
    return {
      bind: (local: Dtab, path: Path): Activity<NameTree<BoundName>> => {
        const sub = this.nextSub++;
        return new Cell<State<NameTree<BoundName>>>(PENDING, (cell) => {
          this.subs.set(sub, cell);
          this.post({ type: "bind", sub, router, dtab: local.show, path: path.show });
          return () => {
            this.subs.delete(sub);
            this.post({ type: "unbind", sub });
          };
        });
      },
      delegate: (): Var<Delegation | { readonly error: Error }> =>
        constant({ error: new Error("delegation is answered by the control thread") }),
      close: () => {},
    };
  }

  /** A new state for subscription `sub` (ignored once it was unbound). */
  bound(sub: number, state: WireState): void {
    this.subs.get(sub)?.set(this.decoder.decode(state));
  }
}
