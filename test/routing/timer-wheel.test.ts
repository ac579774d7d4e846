// The timing wheel behind request timeouts: never early, at most a tick late, cancels,
// timeouts longer than a turn of the ring, and timeouts that cancel others as they fire.

import { afterEach, describe, expect, it } from "vitest";
import { type Expiring, TimerWheel } from "../../gateway/timer-wheel.js";

let now = 1_000_000;
const wheels: TimerWheel[] = [];
afterEach(() => {
  // Fire or drop what a test left, so no interval outlives it.
  for (const w of wheels.splice(0)) {
    now += 1e9;
    w.turn();
  }
});

function wheel(): TimerWheel {
  const w = new TimerWheel(() => now);
  wheels.push(w);
  return w;
}

function recorder(log: string[], name: string, also?: () => void): Expiring {
  return {
    expire() {
      log.push(`${name}@${now}`);
      also?.();
    },
  };
}

/** Moves the fake clock forward in 1 ms steps, turning the wheel at each. */
function advance(w: TimerWheel, ms: number): void {
  for (let i = 0; i < ms; i++) {
    now++;
    w.turn();
  }
}

describe("TimerWheel", () => {
  it("fires at the time or within a tick after it, never before", () => {
    const w = wheel();
    const log: string[] = [];
    const start = now;
    w.schedule(recorder(log, "a"), start + 25);
    w.schedule(recorder(log, "b"), start + 3);
    advance(w, 2);
    expect(log).toEqual([]);
    advance(w, 60);
    expect(log.map((l) => l.split("@")[0])).toEqual(["b", "a"]);
    const at = (name: string) => Number(log.find((l) => l.startsWith(name))!.split("@")[1]);
    expect(at("b") - start).toBeGreaterThanOrEqual(3);
    expect(at("b") - start).toBeLessThanOrEqual(13);
    expect(at("a") - start).toBeGreaterThanOrEqual(25);
    expect(at("a") - start).toBeLessThanOrEqual(35);
    expect(w.pending).toBe(0);
  });

  it("does not fire a cancelled timeout", () => {
    const w = wheel();
    const log: string[] = [];
    const e = w.schedule(recorder(log, "a"), now + 20);
    w.schedule(recorder(log, "b"), now + 20);
    w.cancel(e);
    w.cancel(e);
    expect(w.pending).toBe(1);
    advance(w, 40);
    expect(log.map((l) => l.split("@")[0])).toEqual(["b"]);
  });

  it("keeps a timeout longer than a turn of the ring for its own turn", () => {
    const w = wheel();
    const log: string[] = [];
    const start = now;
    w.schedule(recorder(log, "long"), start + 12_345);
    advance(w, 12_000);
    expect(log).toEqual([]);
    advance(w, 400);
    expect(log).toHaveLength(1);
    const at = Number(log[0]!.split("@")[1]) - start;
    expect(at).toBeGreaterThanOrEqual(12_345);
    expect(at).toBeLessThanOrEqual(12_355);
  });

  it("fires one in the past at the next turn", () => {
    const w = wheel();
    const log: string[] = [];
    w.schedule(recorder(log, "late"), now - 100);
    advance(w, 10);
    expect(log).toHaveLength(1);
  });

  it("copes with a timeout that cancels the next one in its slot as it fires", () => {
    const w = wheel();
    const log: string[] = [];
    const at = now + 15;
    // Lists run newest first: the canceller fires first and cancels the entry after it.
    w.schedule(recorder(log, "first"), at);
    const second = w.schedule(recorder(log, "second"), at);
    w.schedule(
      recorder(log, "canceller", () => w.cancel(second)),
      at,
    );
    advance(w, 30);
    expect(log.map((l) => l.split("@")[0]).sort()).toEqual(["canceller", "first"]);
    expect(w.pending).toBe(0);
  });

  it("catches up after a long pause of the event loop", () => {
    const w = wheel();
    const log: string[] = [];
    for (let i = 1; i <= 5; i++) w.schedule(recorder(log, `t${i}`), now + i * 100);
    now += 10_000;
    w.turn();
    expect(log).toHaveLength(5);
  });
});
