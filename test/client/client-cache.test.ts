// The client cache: bounded by `bindingCache.clients`, the least recently used closed
// first (a tenth at a time), every eviction and idle expiry counted.

import { afterEach, describe, expect, it } from "vitest";
import type { Client } from "../../gateway/client/client.js";
import { ClientCache } from "../../gateway/client/client-cache.js";
import type { BoundName } from "../../gateway/naming/index.js";
import { readPath } from "../../gateway/naming/index.js";
import { Counter } from "../../gateway/telemetry/index.js";

interface FakeClient {
  readonly bound: BoundName;
  lastUsed: number;
  closed: boolean;
  close(): Promise<void>;
}

const caches: ClientCache[] = [];
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close();
});

/** The same bound name (the same address Var) for the same `i`, as a binding keeps it. */
const bounds = new Map<number, BoundName>();
function bound(i: number): BoundName {
  let b = bounds.get(i);
  if (!b) {
    const id = readPath(`/$/inet/10.0.${Math.floor(i / 250)}.${i % 250}/80`);
    b = { id, addr: {} } as unknown as BoundName;
    bounds.set(i, b);
  }
  return b;
}

describe("the client cache", () => {
  it("stays within its capacity, closing the least recently used, and counts it", () => {
    let now = 0;
    const made: FakeClient[] = [];
    const counters = { misses: new Counter(), evicts: new Counter(), expires: new Counter() };
    const cache = new ClientCache(
      (b) => {
        const c: FakeClient = {
          bound: b,
          lastUsed: now,
          closed: false,
          close: async () => {
            c.closed = true;
          },
        };
        made.push(c);
        return c as unknown as Client;
      },
      100,
      3_600_000,
      counters,
    );
    caches.push(cache);
    for (let i = 0; i < 1000; i++) {
      now = i;
      cache.get(bound(i));
      // Client 0 stays in use throughout: it is never the least recently used.
      (cache.get(bound(0)) as unknown as FakeClient).lastUsed = now;
    }
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(counters.misses.n).toBe(1000);
    expect(counters.evicts.n).toBe(1000 - cache.size);
    expect(made[0]!.closed).toBe(false);
    const open = made.filter((c) => !c.closed);
    expect(open).toHaveLength(cache.size);
    // What is left are the newest clients (and client 0).
    const oldestOpen = Math.min(...open.filter((c) => c !== made[0]).map((c) => c.lastUsed));
    expect(oldestOpen).toBeGreaterThanOrEqual(1000 - 100);
  });
});
