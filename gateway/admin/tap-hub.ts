// The control thread's end of `lintel tap`: the open taps, each a queue of the matching
// requests every thread serving requests sends (the control thread's own tap point and
// the workers'), read by long polls on /admin/tap (./tap-route.ts). Opening or closing a
// tap sends the list of open taps to every thread; with none left, threads stop sending.

import { type RecentRequestView, requestView } from "../telemeters/recent-requests.js";
import type { RequestSummary } from "../telemeters/telemeter.js";
import type { TapBatch, TapFilter, TapPoint } from "../telemetry/tap-point.js";

/** A tap nobody polled for this long is closed (its client went away without saying so). */
export const TAP_LEASE_MS = 10_000;
/** Most lines a tap keeps for a client that polls slowly; beyond, they are dropped (and counted). */
const MAX_QUEUED = 1000;

/** The workers' side: the open taps go to every worker (and to any started later). */
export interface WorkerTaps {
  setTaps(filters: readonly TapFilter[]): void;
  /** Where the workers' batches go, with the worker's index. */
  onTapBatches(sink: (worker: number, batches: readonly TapBatch[]) => void): void;
}

/** A request as a tap's client reads it: the fields of a recent request's view. */
export type TapRequestLine = { readonly type: "request" } & RecentRequestView;

/** What one poll reads: the requests since the last poll, and how many were dropped. */
export interface TapPoll {
  readonly requests: readonly TapRequestLine[];
  readonly dropped: number;
}

interface Session {
  readonly filter: TapFilter;
  requests: TapRequestLine[];
  dropped: number;
  /** The waiting poll, woken when requests arrive or the tap closes. */
  wake: (() => void) | undefined;
  lastPoll: number;
  /** The rate bound over all threads (each thread bounds its own share too). */
  windowStart: number;
  inWindow: number;
}

function line(r: RequestSummary, worker: number | "control"): TapRequestLine {
  return { type: "request", ...requestView(r, worker) };
}

export class TapHub {
  private readonly sessions = new Map<number, Session>();
  private lastId = 0;
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * `own`: the control thread's tap point, when it serves requests itself; `workers`:
   * the pool, when there is one.
   */
  constructor(
    private readonly own: TapPoint | undefined,
    private readonly workers: WorkerTaps | undefined,
    private readonly now: () => number = Date.now,
  ) {
    own?.connect((batches) => this.receive("control", batches));
    workers?.onTapBatches((worker, batches) => this.receive(worker, batches));
  }

  /** Opens a tap; returns its id. */
  open(filter: Omit<TapFilter, "id">): number {
    const id = ++this.lastId;
    this.sessions.set(id, {
      filter: { ...filter, id },
      requests: [],
      dropped: 0,
      wake: undefined,
      lastPoll: this.now(),
      windowStart: 0,
      inWindow: 0,
    });
    this.changed();
    return id;
  }

  /** Closes a tap; false when none is open by that id. */
  close(id: number): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    this.sessions.delete(id);
    s.wake?.();
    this.changed();
    return true;
  }

  /**
   * What tap `id` caught since the last poll, waiting up to `waitMs` for something when
   * nothing is there yet; undefined when no tap is open by that id.
   */
  async poll(id: number, waitMs: number): Promise<TapPoll | undefined> {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    s.lastPoll = this.now();
    if (s.requests.length === 0 && s.dropped === 0) {
      // One poll waits at a time: an earlier one answers now, empty.
      s.wake?.();
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          if (s.wake === done) s.wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        s.wake = done;
      });
      s.lastPoll = this.now();
    }
    const out = { requests: s.requests, dropped: s.dropped };
    s.requests = [];
    s.dropped = 0;
    return out;
  }

  /** How many taps are open. */
  get size(): number {
    return this.sessions.size;
  }

  private receive(worker: number | "control", batches: readonly TapBatch[]): void {
    const now = this.now();
    for (const b of batches) {
      const s = this.sessions.get(b.tap);
      if (!s) continue;
      s.dropped += b.dropped;
      for (const r of b.requests) {
        if (now - s.windowStart >= 1000) {
          s.windowStart = now;
          s.inWindow = 0;
        }
        if (s.inWindow < s.filter.perSecond && s.requests.length < MAX_QUEUED) {
          s.inWindow++;
          s.requests.push(line(r, worker));
        } else s.dropped++;
      }
      s.wake?.();
    }
  }

  /** Sends the open taps to every thread; runs the lease sweep while any is open. */
  private changed(): void {
    const filters = [...this.sessions.values()].map((s) => s.filter);
    this.own?.set(filters);
    this.workers?.setTaps(filters);
    if (filters.length > 0 && this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), 1000);
      this.sweeper.unref();
    } else if (filters.length === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Closes the taps whose client stopped polling without closing them. */
  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) {
      if (s.wake === undefined && now - s.lastPoll > TAP_LEASE_MS) this.close(id);
    }
  }
}
