// Reusable memory for response bytes. A body chunk from the upstream is a view of the
// read buffer the upstream side reuses, so it is copied before it is written; copying
// into a fresh allocation each time costs far more than the copy itself (the new pages
// are faulted in, then collected): a 64 KiB response spent about half of its time there.
// Buffers of two sizes are kept and reused once the socket has written them; small
// writes use Node's shared slab and larger ones a fresh allocation.

/** Sizes below this come from Node's slab (Buffer.allocUnsafe pools them). */
const SLAB_LIMIT = 4096;
const CLASSES = [32 * 1024, 288 * 1024] as const;
/** Buffers kept per size class, per thread. */
const KEEP = 16;

const free: Buffer[][] = CLASSES.map(() => []);

/** A buffer of at least `n` bytes; give it back with `release` once written. */
export function takeBuffer(n: number): Buffer {
  if (n < SLAB_LIMIT) return Buffer.allocUnsafe(n);
  for (let c = 0; c < CLASSES.length; c++) {
    if (n <= CLASSES[c]!) return free[c]!.pop() ?? Buffer.allocUnsafeSlow(CLASSES[c]!);
  }
  return Buffer.allocUnsafeSlow(n);
}

/** Whether `buf` came from a size class (so it goes back once written). */
export function isPooled(buf: Buffer): boolean {
  return buf.length === CLASSES[0] || buf.length === CLASSES[1];
}

/** Keeps `buf` for reuse if it came from a size class (the socket is done with it). */
export function releaseBuffer(buf: Buffer): void {
  for (let c = 0; c < CLASSES.length; c++) {
    if (buf.length === CLASSES[c]) {
      if (free[c]!.length < KEEP) free[c]!.push(buf);
      return;
    }
  }
}
