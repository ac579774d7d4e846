// The shared GCRA table: a burst, then the steady rate; keys apart; evictions when a
// group is full; and one count for the threads of a process (a real worker thread
// taking from the same table as this one).

import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { GcraTable } from "../../../gateway/layers/limits/gcra-table.js";
import { SharedArena } from "../../../gateway/shared-arena.js";

const rates = { emissionMs: 100, burst: 5 }; // 10 a second, 5 at once

describe("the GCRA table", () => {
  it("lets a burst through, then one request per emission interval", () => {
    const t = new GcraTable(new SharedArena(1 << 20), "a", 64);
    const now = 1_000_000;
    const first = [0, 1, 2, 3, 4, 5].map(() => t.take("k", now, rates));
    expect(first).toEqual([true, true, true, true, true, false]);
    // Over: the next one comes an interval after the last allowed one's slot.
    expect(t.retryAfterMs).toBe(100);
    expect(t.take("k", now + 99, rates)).toBe(false);
    expect(t.take("k", now + 100, rates)).toBe(true);
    expect(t.remaining).toBe(0);
    // Idle for the whole bucket: full again.
    expect(t.take("k", now + 100 + 500, rates)).toBe(true);
    expect(t.remaining).toBe(4);
    expect(t.take("other", now, rates)).toBe(true);
    expect(t.remaining).toBe(4);
  });

  it("evicts the oldest key of a full group, and counts it", () => {
    const t = new GcraTable(new SharedArena(1 << 20), "small", 8);
    expect(t.capacity).toBe(8);
    const now = 5_000;
    for (let i = 0; i < 8; i++) expect(t.take(`k${i}`, now + i, rates)).toBe(true);
    expect(t.evictions).toBe(0);
    expect(t.take("k8", now + 8, rates)).toBe(true);
    expect(t.evictions).toBe(1);
    // Expired keys' slots are free again: no eviction for them.
    expect(t.take("k9", now + 10_000, rates)).toBe(true);
    expect(t.evictions).toBe(1);
  });

  it("is one count for every table of the same name in the arena", () => {
    const arena = new SharedArena(1 << 20);
    const a = new GcraTable(arena, "same", 64);
    const b = new GcraTable(new SharedArena(arena.buffer), "same", 64);
    const c = new GcraTable(arena, "different", 64);
    const now = 42_000;
    for (let i = 0; i < 3; i++) expect(a.take("k", now, rates)).toBe(true);
    expect([b.take("k", now, rates), b.take("k", now, rates), b.take("k", now, rates)]).toEqual([
      true,
      true,
      false,
    ]);
    expect(c.take("k", now, rates)).toBe(true);
  });

  it("counts exactly across threads taking at the same time", async () => {
    const arena = new SharedArena(1 << 20);
    const burst = { emissionMs: 1e9, burst: 3000 };
    const now = 1_000;
    // The worker takes 2000 while this thread takes 2000: 3000 in all may pass.
    const worker = new Worker(
      `
      const { workerData, parentPort } = require("node:worker_threads");
      parentPort.once("message", async () => {
        const { GcraTable } = await import(workerData.table);
        const { SharedArena } = await import(workerData.arena);
        const t = new GcraTable(new SharedArena(workerData.buffer), "threads", 64);
        let ok = 0;
        for (let i = 0; i < 2000; i++) if (t.take("k", ${now}, ${JSON.stringify(burst)})) ok++;
        parentPort.postMessage(ok);
      });
      parentPort.postMessage("ready");
      `,
      {
        eval: true,
        workerData: {
          buffer: arena.buffer,
          table: new URL("../../../dist/gateway/layers/limits/gcra-table.js", import.meta.url).href,
          arena: new URL("../../../dist/gateway/shared-arena.js", import.meta.url).href,
        },
      },
    );
    try {
      await new Promise((r) => worker.once("message", r));
      const t = new GcraTable(arena, "threads", 64);
      const theirs = new Promise<number>((r) => worker.once("message", r));
      worker.postMessage("go");
      let mine = 0;
      for (let i = 0; i < 2000; i++) if (t.take("k", now, burst)) mine++;
      expect(mine + (await theirs)).toBe(3000);
    } finally {
      await worker.terminate();
    }
  });
});
