// The ring io.l5d.recentRequests keeps each thread's last requests in.

import { describe, expect, it } from "vitest";
import { RingBuffer } from "../../gateway/telemeters/ring-buffer.js";

describe("RingBuffer", () => {
  it("starts empty", () => {
    const r = new RingBuffer<number>(3);
    expect(r.size).toBe(0);
    expect(r.newestFirst()).toEqual([]);
  });

  it("holds fewer items than its capacity, newest first", () => {
    const r = new RingBuffer<number>(3);
    r.push(1);
    r.push(2);
    expect(r.size).toBe(2);
    expect(r.newestFirst()).toEqual([2, 1]);
  });

  it("keeps the last `capacity` items, overwriting the oldest, across many wraps", () => {
    const r = new RingBuffer<number>(3);
    for (let i = 1; i <= 3; i++) r.push(i);
    expect(r.newestFirst()).toEqual([3, 2, 1]);
    r.push(4);
    expect(r.newestFirst()).toEqual([4, 3, 2]);
    for (let i = 5; i <= 100; i++) {
      r.push(i);
      expect(r.newestFirst()).toEqual([i, i - 1, i - 2]);
      expect(r.size).toBe(3);
    }
  });

  it("with capacity 1 keeps the last item only", () => {
    const r = new RingBuffer<string>(1);
    r.push("a");
    r.push("b");
    expect(r.newestFirst()).toEqual(["b"]);
    expect(r.size).toBe(1);
  });

  it("hands out a copy: pushing later does not change a list already taken", () => {
    const r = new RingBuffer<number>(2);
    r.push(1);
    const taken = r.newestFirst();
    r.push(2);
    r.push(3);
    expect(taken).toEqual([1]);
  });

  it("clears", () => {
    const r = new RingBuffer<number>(2);
    r.push(1);
    r.push(2);
    r.push(3);
    r.clear();
    expect(r.size).toBe(0);
    expect(r.newestFirst()).toEqual([]);
    r.push(4);
    expect(r.newestFirst()).toEqual([4]);
  });

  it("refuses a capacity that is not a whole number of at least 1", () => {
    expect(() => new RingBuffer(0)).toThrow(RangeError);
    expect(() => new RingBuffer(1.5)).toThrow(RangeError);
    expect(() => new RingBuffer(-1)).toThrow(RangeError);
  });
});
