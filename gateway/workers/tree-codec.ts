// Bound name trees and address sets across the thread boundary. The control thread
// numbers each live address set (a Var<Addr>) so a worker keeps one Cell per set, and
// so one bound name stays the same object in the worker while its tree changes (clients
// are kept per bound name).

import {
  type Addr,
  AddrNeg,
  AddrPending,
  addrBound,
  addrFailed,
  type BoundName,
  boundName,
  Cell,
  type NameTree,
  readPath,
  type State,
  type Var,
} from "../naming/index.js";
import type { WireAddr, WireState, WireTree } from "./protocol.js";

export function encodeAddr(a: Addr): WireAddr {
  switch (a.kind) {
    case "failed":
      return { kind: "failed", error: a.error.message };
    case "bound":
      return { kind: "bound", addresses: a.addresses };
    default:
      return { kind: a.kind };
  }
}

export function decodeAddr(a: WireAddr): Addr {
  switch (a.kind) {
    case "pending":
      return AddrPending;
    case "neg":
      return AddrNeg;
    case "failed":
      return addrFailed(a.error);
    case "bound":
      return addrBound(a.addresses);
  }
}

/** Encodes a bound tree; `addrId` numbers each address set it meets. */
export function encodeState(
  s: State<NameTree<BoundName>>,
  addrId: (v: Var<Addr>) => number,
): WireState {
  switch (s.status) {
    case "pending":
      return { status: "pending" };
    case "failed":
      return { status: "failed", error: s.error.message };
    case "ok":
      return { status: "ok", tree: encodeTree(s.value, addrId) };
  }
}

function encodeTree(t: NameTree<BoundName>, addrId: (v: Var<Addr>) => number): WireTree {
  switch (t.kind) {
    case "leaf":
      return {
        kind: "leaf",
        id: t.value.id.show,
        residual: t.value.residual.show,
        addr: addrId(t.value.addr),
      };
    case "alt":
      return { kind: "alt", trees: t.trees.map((x) => encodeTree(x, addrId)) };
    case "union":
      return {
        kind: "union",
        trees: t.trees.map((w) => ({ weight: w.weight, tree: encodeTree(w.tree, addrId) })),
      };
    default:
      return { kind: t.kind };
  }
}

/** The worker's side: address sets by number, and bound names kept stable. */
export class TreeDecoder {
  private readonly addrs = new Map<number, Cell<Addr>>();
  private readonly names = new Map<string, BoundName>();

  /** The Cell of address set `id`, created pending until its first value arrives. */
  addr(id: number): Cell<Addr> {
    let c = this.addrs.get(id);
    if (!c) {
      c = new Cell<Addr>(AddrPending);
      this.addrs.set(id, c);
    }
    return c;
  }

  setAddr(id: number, value: WireAddr): void {
    this.addr(id).set(decodeAddr(value));
  }

  /** Forgets address set `id` and the bound names that used it. */
  dropAddr(id: number): void {
    this.addrs.delete(id);
    const prefix = `${id} `;
    for (const k of this.names.keys()) if (k.startsWith(prefix)) this.names.delete(k);
  }

  decode(s: WireState): State<NameTree<BoundName>> {
    switch (s.status) {
      case "pending":
        return { status: "pending" };
      case "failed":
        return { status: "failed", error: new Error(s.error) };
      case "ok":
        return { status: "ok", value: this.tree(s.tree) };
    }
  }

  private tree(t: WireTree): NameTree<BoundName> {
    switch (t.kind) {
      case "leaf":
        return { kind: "leaf", value: this.bound(t.id, t.residual, t.addr) };
      case "alt":
        return { kind: "alt", trees: t.trees.map((x) => this.tree(x)) };
      case "union":
        return {
          kind: "union",
          trees: t.trees.map((w) => ({ weight: w.weight, tree: this.tree(w.tree) })),
        };
      default:
        return { kind: t.kind };
    }
  }

  private bound(id: string, residual: string, addr: number): BoundName {
    const key = `${addr} ${id} ${residual}`;
    let b = this.names.get(key);
    if (!b) {
      b = boundName(readPath(id), this.addr(addr), readPath(residual));
      this.names.set(key, b);
    }
    return b;
  }
}
