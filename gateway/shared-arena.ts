// Memory every thread of the process sees: one SharedArrayBuffer the control thread makes
// and hands to each worker it starts, from which kinds take named regions (a rate limit's
// table, so a limit means the same whatever the worker count). A region is found by its
// name in a small directory at the start of the arena, under a lock, so every thread that
// asks for the same name gets the same bytes however the threads interleave. The arena is
// reserved, not touched: the operating system gives it pages only as regions are written.

/** Directory: [lock, next free byte, entries] then entries of [hash a, hash b, offset, bytes]. */
const DIRECTORY_BYTES = 64 * 1024;
const HEADER_INTS = 4;
const ENTRY_INTS = 4;
const MAX_ENTRIES = (DIRECTORY_BYTES / 4 - HEADER_INTS) / ENTRY_INTS;
/** Regions start on 8-byte boundaries, so Float64Array and BigInt64Array views fit. */
const ALIGN = 8;

export const DEFAULT_ARENA_BYTES = 64 * 1024 * 1024;

export class SharedArena {
  readonly buffer: SharedArrayBuffer;
  private readonly dir: Int32Array;

  /** A new arena of `bytes`, or a view of one another thread made. */
  constructor(from: SharedArrayBuffer | number = DEFAULT_ARENA_BYTES) {
    this.buffer = typeof from === "number" ? new SharedArrayBuffer(from) : from;
    this.dir = new Int32Array(this.buffer, 0, DIRECTORY_BYTES / 4);
  }

  /**
   * The region named `name`, of `bytes`, zeroed when first made: the same memory in every
   * thread. Throws when the arena is full, or when the name was taken with another size.
   */
  region(name: string, bytes: number): { readonly offset: number; readonly bytes: number } {
    const [a, b] = nameHash(name);
    const dir = this.dir;
    lock(dir);
    try {
      const count = dir[2]!;
      for (let i = 0; i < count; i++) {
        const at = HEADER_INTS + i * ENTRY_INTS;
        if (dir[at] !== a || dir[at + 1] !== b) continue;
        if (dir[at + 3] !== bytes)
          throw new Error(`shared region ${name} exists with ${dir[at + 3]} bytes, not ${bytes}`);
        return { offset: dir[at + 2]!, bytes };
      }
      if (count >= MAX_ENTRIES) throw new Error(`the shared arena has no room for ${name}`);
      const offset = Math.max(dir[1]!, DIRECTORY_BYTES);
      const end = offset + Math.ceil(bytes / ALIGN) * ALIGN;
      if (end > this.buffer.byteLength) {
        throw new Error(
          `the shared arena (${this.buffer.byteLength} bytes) has no room for ${name} (${bytes} bytes)`,
        );
      }
      const at = HEADER_INTS + count * ENTRY_INTS;
      dir[at] = a;
      dir[at + 1] = b;
      dir[at + 2] = offset;
      dir[at + 3] = bytes;
      dir[1] = end;
      dir[2] = count + 1;
      return { offset, bytes };
    } finally {
      Atomics.store(dir, 0, 0);
    }
  }
}

/** Takes the lock in `ints[0]`: held for a few reads and writes, so spinning is cheap. */
export function lock(ints: Int32Array, at = 0): void {
  while (Atomics.compareExchange(ints, at, 0, 1) !== 0) {
    // Another thread holds it for a handful of instructions.
  }
}

/** Two 32-bit FNV-1a hashes of `s` with different offsets: 64 bits to tell names apart. */
export function nameHash(s: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  // Never both zero: a zero pair marks an empty slot in the tables built on regions.
  return [a | 0, b | 1];
}
