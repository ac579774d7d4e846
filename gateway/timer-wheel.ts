// Request timeouts without a Node timer each: a hashed timing wheel (slots of TICK_MS
// around a ring of SLOTS) that one interval per thread turns while anything is scheduled.
// Scheduling and cancelling are a few field writes, where setTimeout + clearTimeout cost
// about 0.3 µs per request; a timeout fires at its time or up to TICK_MS later, never
// early. Timeouts longer than a turn of the ring wait in their slot for later turns.

/** What a timeout calls when it expires. */
export interface Expiring {
  expire(): void;
}

/** One scheduled timeout; pass it to `cancel`. */
export class WheelEntry {
  next: WheelEntry | undefined = undefined;
  prev: WheelEntry | undefined = undefined;
  /** The slot it waits in, or -1 once fired or cancelled. */
  slot = -1;
  constructor(
    readonly owner: Expiring,
    /** When it expires, ms since the epoch. */
    readonly at: number,
  ) {}
}

const TICK_MS = 10;
const SLOTS = 512;

export class TimerWheel {
  private readonly heads: (WheelEntry | undefined)[] = new Array(SLOTS).fill(undefined);
  private size = 0;
  private ticker: NodeJS.Timeout | undefined;
  /** The last tick whose slot was run. */
  private lastTick = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Calls `owner.expire()` at `at` (ms since the epoch), or up to TICK_MS later. */
  schedule(owner: Expiring, at: number): WheelEntry {
    const e = new WheelEntry(owner, at);
    if (this.size === 0) this.start();
    // Never into a slot already run: one in the past goes into the next tick's.
    const tick = Math.max(Math.ceil(at / TICK_MS), this.lastTick + 1);
    const slot = tick % SLOTS;
    e.slot = slot;
    const head = this.heads[slot];
    e.next = head;
    if (head) head.prev = e;
    this.heads[slot] = e;
    this.size++;
    return e;
  }

  cancel(e: WheelEntry): void {
    if (e.slot < 0) return;
    this.unlink(e);
    if (this.size === 0) this.stop();
  }

  /** Timeouts scheduled and not yet fired or cancelled. */
  get pending(): number {
    return this.size;
  }

  private unlink(e: WheelEntry): void {
    if (e.prev) e.prev.next = e.next;
    else this.heads[e.slot] = e.next;
    if (e.next) e.next.prev = e.prev;
    e.next = e.prev = undefined;
    e.slot = -1;
    this.size--;
  }

  private start(): void {
    this.lastTick = Math.floor(this.now() / TICK_MS);
    this.ticker = setInterval(() => this.turn(), TICK_MS);
    this.ticker.unref();
  }

  private stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  /** Runs the slots of every tick since the last turn (at most one whole ring). */
  turn(): void {
    const now = this.now();
    const tick = Math.floor(now / TICK_MS);
    const from = Math.max(this.lastTick + 1, tick - SLOTS + 1);
    this.lastTick = tick;
    for (let t = from; t <= tick; t++) {
      const slot = t % SLOTS;
      let e = this.heads[slot];
      while (e) {
        const next = e.next;
        // Entries for a later turn of the ring stay.
        if (e.at > now) {
          e = next;
          continue;
        }
        this.unlink(e);
        e.owner.expire();
        // What it did may have cancelled the next entry: then start the slot again.
        e = next && next.slot < 0 ? this.heads[slot] : next;
      }
    }
    if (this.size === 0) this.stop();
  }
}

/** The data plane's request timeouts on this thread. */
export const requestTimers = new TimerWheel();
