// Request ids for l5d-reqid: 64 random bits as 16 hex digits, cut from a pool of random
// bytes refilled in bulk (one getrandom call per 512 requests, not one per request).

import { randomFillSync } from "node:crypto";

const POOL = Buffer.alloc(8 * 512);
let offset = POOL.length;

export function newRequestId(): string {
  if (offset >= POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const id = POOL.toString("hex", offset, offset + 8);
  offset += 8;
  return id;
}
