// A sum over a sliding time window in constant memory (Finagle's WindowedAdder): a ring
// of slices, each counting window/slices ms; a value leaves the sum when the ring comes
// back round to its slice, between (slices − 1)/slices × window and window after it came.

export class WindowedSum {
  private readonly slots: Float64Array;
  private readonly sliceMs: number;
  /** The slice (now / sliceMs) the newest slot counts. */
  private newest = Number.NEGATIVE_INFINITY;
  private total = 0;

  constructor(windowMs: number, slices: number) {
    this.slots = new Float64Array(slices);
    this.sliceMs = windowMs / slices;
  }

  add(n: number, now: number): void {
    this.roll(now);
    this.slots[this.newest % this.slots.length]! += n;
    this.total += n;
  }

  sum(now: number): number {
    this.roll(now);
    return this.total;
  }

  reset(): void {
    this.slots.fill(0);
    this.total = 0;
  }

  /** Empties the slots of the slices that ended since the last call. */
  private roll(now: number): void {
    const slice = Math.floor(now / this.sliceMs);
    // Same slice, or the clock stepped back: keep counting into the newest slot.
    if (slice <= this.newest) return;
    const n = this.slots.length;
    if (slice - this.newest >= n) {
      this.reset();
    } else {
      for (let s = this.newest + 1; s <= slice; s++) {
        const i = s % n;
        this.total -= this.slots[i]!;
        this.slots[i] = 0;
      }
    }
    this.newest = slice;
  }
}
