// Shared shape of the address transformers: each bound name becomes one with the
// transformer's prefix in front of its id and its addresses mapped. The mapped name is
// cached per original so that rebinding yields the same object (no spurious changes).

import {
  type Addr,
  type Address,
  AddrNeg,
  AddrPending,
  addrBound,
  type BoundName,
  boundName,
  computed,
  leaf,
  ok,
  type Path,
  type Read,
  type Transformer,
  type Var,
} from "../naming/index.js";

/**
 * Builds a transformer that maps every bound address list with `f` (read gives live
 * inputs; undefined means an input is not known yet, so the addresses are pending).
 */
export function addressTransformer(
  name: string,
  prefix: Path,
  f: (addresses: readonly Address[], read: Read) => readonly Address[] | undefined,
): Transformer {
  const cache = new WeakMap<BoundName, BoundName>();
  return {
    name,
    transformLeaf(bound) {
      let out = cache.get(bound);
      if (!out) {
        const addr: Var<Addr> = computed((read) => {
          const a = read(bound.addr);
          if (a.kind !== "bound") return a;
          const mapped = f(a.addresses, read);
          if (mapped === undefined) return AddrPending;
          return mapped.length === 0 ? AddrNeg : addrBound(mapped);
        });
        out = boundName(prefix.concat(bound.id), addr, bound.residual);
        cache.set(bound, out);
      }
      return ok(leaf(out));
    },
  };
}
