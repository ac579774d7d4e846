// Writes made while the event loop handles one batch of I/O leave together at its end.
// A socket write on loopback or a LAN wakes the peer's thread when it sleeps; sent one at a
// time between the reads of a batch, every write paid that wake-up (perf showed the
// kernel's wake-up path as the largest single cost of a proxied request). Held until the
// check phase (setImmediate), the batch's writes go out back to back, and a socket written
// more than once in the batch (a head, then a chunk) gets one writev.

import type { Writable } from "node:stream";

const held: Writable[] = [];
let scheduled = false;

function releaseAll(): void {
  scheduled = false;
  // uncork() on a socket already released (or destroyed) does nothing.
  for (let i = 0; i < held.length; i++) held[i]!.uncork();
  held.length = 0;
}

/**
 * Writes larger than this go out at once: they cost their copy and their syscall, not
 * the wake-up, and held they would pile up in memory.
 */
const MAX_HELD_WRITE = 16 * 1024;

/**
 * Holds the socket's next write of `bytes` (and any after it) until the end of this turn
 * of the event loop; a large one goes out now, with what was held before it.
 */
export function holdWrites(socket: Writable, bytes: number): void {
  if (bytes > MAX_HELD_WRITE) {
    releaseWrites(socket);
    return;
  }
  if (socket.writableCorked > 0) return;
  socket.cork();
  held.push(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(releaseAll);
  }
}

/** Sends what the socket holds now (before destroying it, so what was written leaves). */
export function releaseWrites(socket: Writable): void {
  while (socket.writableCorked > 0) socket.uncork();
}
