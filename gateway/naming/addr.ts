// Addresses: what a bound name resolves to. Addr mirrors Finagle's Addr states;
// an Address is one endpoint (an IP literal and a port) with a weight and metadata.

export interface Address {
  readonly host: string;
  readonly port: number;
  /** Relative share of traffic (io.l5d.fs `* weight`); 1 unless said otherwise. */
  readonly weight: number;
  readonly meta: Readonly<Record<string, string | number | boolean>>;
}

export type Addr =
  | { readonly kind: "pending" }
  | { readonly kind: "neg" }
  | { readonly kind: "failed"; readonly error: Error }
  | { readonly kind: "bound"; readonly addresses: readonly Address[] };

export const AddrPending: Addr = Object.freeze({ kind: "pending" });
export const AddrNeg: Addr = Object.freeze({ kind: "neg" });

export function addrBound(addresses: readonly Address[]): Addr {
  return { kind: "bound", addresses };
}

export function addrFailed(error: Error | string): Addr {
  return { kind: "failed", error: typeof error === "string" ? new Error(error) : error };
}

export function address(
  host: string,
  port: number,
  weight = 1,
  meta: Address["meta"] = {},
): Address {
  return { host, port, weight, meta };
}

export function addressKey(a: Address): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

function sameAddress(a: Address, b: Address): boolean {
  if (a.host !== b.host || a.port !== b.port || a.weight !== b.weight) return false;
  const ak = Object.keys(a.meta);
  if (ak.length !== Object.keys(b.meta).length) return false;
  return ak.every((k) => a.meta[k] === b.meta[k]);
}

/** Equality used to avoid publishing an address set that did not change. */
export function addrEquals(a: Addr, b: Addr): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case "bound": {
      const bs = (b as typeof a).addresses;
      if (a.addresses.length !== bs.length) return false;
      const keyed = new Map(bs.map((x) => [addressKey(x), x]));
      return a.addresses.every((x) => {
        const y = keyed.get(addressKey(x));
        return y !== undefined && sameAddress(x, y);
      });
    }
    case "failed":
      return a.error.message === (b as typeof a).error.message;
    default:
      return true;
  }
}
