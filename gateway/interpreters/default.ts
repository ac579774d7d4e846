// The `default` interpreter: the router's dtab (after an optional dtab source such as
// io.l5d.fs's file) plus per-request dentries, over the configured namers, then the
// interpreter's transformers. Bindings are live: they recompute when an input changes.

import { object } from "../config/schema.js";
import {
  type Activity,
  type BoundName,
  bindPath,
  boundStateEquals,
  computed,
  type Delegation,
  type Dtab,
  delegatePath,
  type NameTree,
  type Path,
  type Read,
  type State,
  type Var,
} from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import type { InterpreterContext } from "../plugins/types.js";
import type { Interpreter } from "./interpreter.js";

export class DtabInterpreter implements Interpreter {
  constructor(
    private readonly ctx: InterpreterContext,
    /** Dentries that come before the router's dtab (a watched file, a control plane). */
    private readonly source?: Activity<Dtab>,
    private readonly onClose?: () => void,
  ) {}

  private dtab(local: Dtab, read: Read): State<Dtab> {
    const base = this.ctx.routerDtab.concat(local);
    if (!this.source) return { status: "ok", value: base };
    const s = read(this.source);
    return s.status === "ok" ? { status: "ok", value: s.value.concat(base) } : s;
  }

  bind(local: Dtab, path: Path): Activity<NameTree<BoundName>> {
    return computed((read) => {
      const d = this.dtab(local, read);
      if (d.status !== "ok") return d;
      return bindPath(
        { dtab: d.value, namers: this.ctx.namers, transformers: this.ctx.transformers },
        path,
        read,
      );
    }, boundStateEquals);
  }

  delegate(local: Dtab, path: Path): Var<Delegation | { readonly error: Error }> {
    return computed((read) => {
      const d = this.dtab(local, read);
      if (d.status === "failed") return { error: d.error };
      if (d.status === "pending") return { error: new Error("the dtab has not loaded yet") };
      return delegatePath(
        { dtab: d.value, namers: this.ctx.namers, transformers: this.ctx.transformers },
        path,
        read,
      );
    });
  }

  close(): void {
    this.onClose?.();
  }
}

export const defaultInterpreter = definePlugin({
  category: "interpreter",
  kind: "default",
  schema: object({}),
  create: (_config, ctx) => new DtabInterpreter(ctx),
});
