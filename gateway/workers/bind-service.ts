// The control thread's side of a worker's bindings: each `bind` a worker asks for is
// bound by the router's real interpreter and observed; the tree, and every address set it
// refers to, go to the worker as they change, until the worker unbinds or goes away.

import { type Addr, Dtab, readDtab, readPath, type Var } from "../naming/index.js";
import type { NamingSetup } from "../routing/naming-setup.js";
import type { ToWorker } from "./protocol.js";
import { encodeAddr, encodeState } from "./tree-codec.js";

interface AddrWatch {
  readonly id: number;
  refs: number;
  readonly stop: () => void;
}

interface Subscription {
  readonly stop: () => void;
  /** The address sets its current tree refers to. */
  addrs: Set<Var<Addr>>;
}

/** One worker's subscriptions and numbered address sets. */
export class WorkerBindings {
  private readonly subs = new Map<number, Subscription>();
  private readonly addrs = new Map<Var<Addr>, AddrWatch>();
  private nextAddr = 1;

  constructor(
    private readonly naming: NamingSetup,
    private readonly post: (m: ToWorker) => void,
  ) {}

  bind(sub: number, router: string, dtab: string, path: string): void {
    const r = this.naming.routers.get(router);
    if (!r || this.subs.has(sub)) return;
    let act: ReturnType<typeof r.interpreter.bind>;
    try {
      act = r.interpreter.bind(dtab === "" ? Dtab.empty : readDtab(dtab), readPath(path));
    } catch (e) {
      this.post({ type: "bound", sub, state: { status: "failed", error: (e as Error).message } });
      return;
    }
    const entry: Subscription = { stop: () => {}, addrs: new Set() };
    this.subs.set(sub, entry);
    const send = (s: ReturnType<typeof act.sample>) => {
      if (this.subs.get(sub) !== entry) return;
      const seen = new Set<Var<Addr>>();
      const state = encodeState(s, (v) => {
        seen.add(v);
        return this.acquire(v, entry.addrs.has(v));
      });
      for (const v of entry.addrs) if (!seen.has(v)) this.release(v);
      entry.addrs = seen;
      this.post({ type: "bound", sub, state });
    };
    (entry as { stop: () => void }).stop = act.observe(send);
    send(act.sample());
  }

  unbind(sub: number): void {
    const entry = this.subs.get(sub);
    if (!entry) return;
    this.subs.delete(sub);
    entry.stop();
    for (const v of entry.addrs) this.release(v);
  }

  /** The worker is gone: stop observing everything it asked for. */
  close(): void {
    for (const sub of [...this.subs.keys()]) this.unbind(sub);
  }

  /** The number of address set `v`, observed (and sent) from its first use on. */
  private acquire(v: Var<Addr>, alreadyHeld: boolean): number {
    let w = this.addrs.get(v);
    if (!w) {
      const id = this.nextAddr++;
      // Its value goes before the tree that refers to it.
      this.post({ type: "addr", addr: id, value: encodeAddr(v.sample()) });
      const stop = v.observe((a) => this.post({ type: "addr", addr: id, value: encodeAddr(a) }));
      w = { id, refs: 0, stop };
      this.addrs.set(v, w);
    }
    if (!alreadyHeld) w.refs++;
    return w.id;
  }

  private release(v: Var<Addr>): void {
    const w = this.addrs.get(v);
    if (!w || --w.refs > 0) return;
    this.addrs.delete(v);
    w.stop();
    this.post({ type: "addr-drop", addr: w.id });
  }
}
