// Power of two choices, shared by p2c, ewma and aperture: draw two distinct members of a
// set (by weight when weights differ) and keep the less loaded. The set keeps its arrays
// between picks, so drawing allocates nothing.

import type { BalancedEndpoint } from "./balancer.js";
import type { Load } from "./least-loaded.js";

/** Endpoints to draw from, as indexes into a balancer's list, with cumulative weights. */
export class WeightedSet {
  private members = new Int32Array(0);
  /** cumulative[p]: the weights of members 0..p summed. */
  private cumulative = new Float64Array(0);
  private count = 0;
  private firstWeight = 0;
  private uniform = true;
  /** Set when a draw met an unavailable member (the aperture then rebuilds its set). */
  stale = false;
  /** The last draw, as endpoint indexes; `second` is -1 when no other member has weight. */
  first = -1;
  second = -1;

  get size(): number {
    return this.count;
  }

  /** The endpoint index of member `p`. */
  member(p: number): number {
    return this.members[p]!;
  }

  /** Empties the set, with room for `capacity` members (arrays grow only here). */
  clear(capacity: number): void {
    if (this.members.length < capacity) {
      this.members = new Int32Array(capacity);
      this.cumulative = new Float64Array(capacity);
    }
    this.count = 0;
    this.uniform = true;
    this.stale = false;
  }

  add(index: number, weight: number): void {
    const p = this.count++;
    this.members[p] = index;
    this.cumulative[p] = p === 0 ? weight : this.cumulative[p - 1]! + weight;
    if (p === 0) this.firstWeight = weight;
    else if (weight !== this.firstWeight) this.uniform = false;
  }

  /** Draws two distinct members (at least two must be in the set) into `first`/`second`. */
  draw(random: () => number): void {
    const n = this.count;
    if (this.uniform) {
      const a = Math.floor(random() * n);
      let b = Math.floor(random() * (n - 1));
      if (b >= a) b++;
      this.first = this.members[a]!;
      this.second = this.members[b]!;
      return;
    }
    const total = this.cumulative[n - 1]!;
    const a = this.find(random() * total);
    const start = a > 0 ? this.cumulative[a - 1]! : 0;
    const weight = this.cumulative[a]! - start;
    this.first = this.members[a]!;
    // The second by weight among the others: a point on the line with `a`'s span cut out.
    let r = random() * (total - weight);
    if (r >= start) r += weight;
    const b = total - weight > 0 ? this.find(r) : a;
    this.second = b === a ? -1 : this.members[b]!;
  }

  /** The first member whose cumulative weight exceeds `r` (so zero weights are never hit). */
  private find(r: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/**
 * The less loaded of two members of `set`; when one of them is unavailable or `avoid`, the
 * other; when both are, draws again, `maxEffort` times in all. Undefined when every draw
 * failed: the caller then scans (and may use `avoid`, as the only one left).
 */
export function twoChoices<E extends BalancedEndpoint>(
  endpoints: readonly E[],
  set: WeightedSet,
  random: () => number,
  maxEffort: number,
  avoid: E | undefined,
  load: Load<E>,
): E | undefined {
  if (set.size === 1) {
    const e = endpoints[set.member(0)]!;
    if (!e.available) set.stale = true;
    return e.available && e !== avoid ? e : undefined;
  }
  for (let effort = 0; set.size > 1 && effort < maxEffort; effort++) {
    set.draw(random);
    const a = endpoints[set.first]!;
    if (!a.available) set.stale = true;
    const useA = a.available && a !== avoid;
    if (set.second < 0) {
      if (useA) return a;
      continue;
    }
    const b = endpoints[set.second]!;
    if (!b.available) set.stale = true;
    const useB = b.available && b !== avoid;
    if (useA && useB) return load(b, set.second) < load(a, set.first) ? b : a;
    if (useA) return a;
    if (useB) return b;
  }
  return undefined;
}
