// What an identifier sees of a request and what it answers: a service name
// (dstPrefix + something taken from the request), or the reason it could not.

import type { Path } from "../naming/index.js";

/** The parts of an HTTP request identifiers may read. Header names are lower-case. */
export interface RequestView {
  readonly method: string;
  /** Origin-form request target: path and query, e.g. `/users/1?x=y`. */
  readonly url: string;
  /** "1.1" or "1.0". */
  readonly httpVersion: string;
  header(name: string): string | undefined;
}

export type Identification =
  | {
      readonly ok: true;
      readonly dst: Path;
      /** The request target to forward when the identifier consumed part of it. */
      readonly url?: string;
    }
  | { readonly ok: false; readonly reason: string };

export interface Identifier {
  identify(req: RequestView): Identification;
}

export function identified(dst: Path, url?: string): Identification {
  return url === undefined ? { ok: true, dst } : { ok: true, dst, url };
}

export function unidentified(reason: string): Identification {
  return { ok: false, reason };
}

/**
 * Identifications by a key an identifier takes from the request (a header's value): a hot
 * service name is made once, and with it its printable form the binding cache keys on.
 * Bounded per identifier and thread: past `max` names, the oldest is dropped.
 */
export class IdentificationMemo {
  private readonly memo = new Map<string, Identification>();
  /**
   * The keys in the order they came, in a ring: the oldest is the next slot. (Taking the
   * first key of the Map instead costs time in proportion to the keys deleted before it.)
   */
  private readonly order: string[] = [];
  private next = 0;

  constructor(
    private readonly make: (key: string) => Identification,
    private readonly max = 1024,
  ) {}

  get(key: string): Identification {
    let id = this.memo.get(key);
    if (id === undefined) {
      id = this.make(key);
      if (this.memo.size >= this.max) this.memo.delete(this.order[this.next]!);
      this.order[this.next] = key;
      this.next = (this.next + 1) % this.max;
      this.memo.set(key, id);
    }
    return id;
  }
}

/** Splits the path part of a request target into its non-empty segments. */
export function urlSegments(url: string): string[] {
  const q = url.indexOf("?");
  const p = q < 0 ? url : url.slice(0, q);
  return p.split("/").filter((s) => s.length > 0);
}

/** Tries identifiers in order; the first that identifies wins (Linkerd's identifier list). */
export function firstMatch(identifiers: readonly Identifier[]): Identifier {
  if (identifiers.length === 1) return identifiers[0]!;
  return {
    identify(req) {
      const reasons: string[] = [];
      for (const id of identifiers) {
        const r = id.identify(req);
        if (r.ok) return r;
        reasons.push(r.reason);
      }
      return unidentified(reasons.join("; "));
    },
  };
}
