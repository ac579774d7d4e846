// A thread's span export: a bounded queue, sent in batches (when a batch is full, or on
// the interval), one POST at a time, so export never blocks or slows a request. A span
// that finds the queue full is dropped and counted, as are the spans of a batch the
// collector refused or never got; failures are logged at most once per LOG_EVERY_MS.

import http from "node:http";
import https from "node:https";
import type { Logger } from "../log.js";
import type { Counter } from "../telemetry/registry.js";
import type { FinishedSpan } from "./span.js";

/** Failures are logged at most this often (a collector down would otherwise flood the log). */
export const LOG_EVERY_MS = 30_000;
/** A POST that takes longer is given up (and its spans dropped): the queue must keep moving. */
const POST_TIMEOUT_MS = 5_000;

export interface ExportOptions {
  /** Where batches go (http or https). */
  readonly url: URL;
  /** Spans held at most; more are dropped. */
  readonly maxQueue: number;
  /** Spans per POST. */
  readonly batchSize: number;
  /** How often a partial batch is sent. */
  readonly intervalMs: number;
  /** The body and its content type for a batch. */
  readonly encode: (spans: readonly FinishedSpan[]) => string;
  readonly contentType: string;
  readonly log: Logger;
  /** Counts in the metrics as well as in `stats`. */
  readonly counters?: ExportCounters;
}

/** The same counts in the metrics registry, when the telemeter has one. */
export interface ExportCounters {
  readonly sent: Counter;
  readonly dropped: Counter;
  readonly failures: Counter;
}

/** The queue's counts on this thread (plain data: it crosses threads). */
export interface ExportStats {
  queued: number;
  sent: number;
  dropped: number;
  failures: number;
}

export class ExportQueue {
  private queue: FinishedSpan[] = [];
  private inFlight = false;
  private readonly timer: NodeJS.Timeout;
  private lastLog = -Infinity;
  private closed = false;
  private readonly agent: http.Agent;
  readonly stats: ExportStats = { queued: 0, sent: 0, dropped: 0, failures: 0 };

  constructor(private readonly o: ExportOptions) {
    this.agent =
      o.url.protocol === "https:"
        ? new https.Agent({ keepAlive: true, maxSockets: 1 })
        : new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.timer = setInterval(() => this.flush(), o.intervalMs);
    this.timer.unref();
  }

  /** Queues a span (never blocks): dropped and counted when the queue is full. */
  push(span: FinishedSpan): void {
    if (this.closed || this.queue.length >= this.o.maxQueue) {
      this.stats.dropped++;
      if (this.o.counters) this.o.counters.dropped.n++;
      return;
    }
    this.queue.push(span);
    this.stats.queued = this.queue.length;
    if (this.queue.length >= this.o.batchSize && !this.inFlight) setImmediate(() => this.flush());
  }

  /** Sends the next batch unless one is in flight; resolves when that POST is over. */
  flush(): Promise<void> {
    if (this.inFlight || this.queue.length === 0) return Promise.resolve();
    const batch =
      this.queue.length <= this.o.batchSize ? this.queue : this.queue.slice(0, this.o.batchSize);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.o.batchSize);
    this.stats.queued = this.queue.length;
    this.inFlight = true;
    return this.post(batch).then((err) => {
      this.inFlight = false;
      const counters = this.o.counters;
      if (err === undefined) {
        this.stats.sent += batch.length;
        if (counters) counters.sent.n += batch.length;
      } else {
        this.stats.failures++;
        if (counters) counters.failures.n++;
        this.stats.dropped += batch.length;
        if (counters) counters.dropped.n += batch.length;
        this.warn(err, batch.length);
      }
      if (this.queue.length >= this.o.batchSize) setImmediate(() => this.flush());
    });
  }

  private warn(err: string, n: number): void {
    const now = Date.now();
    if (now - this.lastLog < LOG_EVERY_MS) return;
    this.lastLog = now;
    this.o.log.warn("span export failed (spans dropped; logged at most every 30 s)", {
      url: this.o.url.href,
      error: err,
      spans: n,
      dropped: this.stats.dropped,
    });
  }

  /** POSTs one batch; resolves with the failure (undefined on a 2xx). */
  private post(batch: readonly FinishedSpan[]): Promise<string | undefined> {
    let body: Buffer;
    try {
      body = Buffer.from(this.o.encode(batch));
    } catch (e) {
      return Promise.resolve(`encoding failed: ${(e as Error).message}`);
    }
    const u = this.o.url;
    const lib = u.protocol === "https:" ? https : http;
    return new Promise((resolve) => {
      let over = false;
      const done = (err: string | undefined) => {
        if (over) return;
        over = true;
        resolve(err);
      };
      const req = lib.request(
        u,
        {
          method: "POST",
          agent: this.agent,
          headers: { "content-type": this.o.contentType, "content-length": body.length },
          timeout: POST_TIMEOUT_MS,
        },
        (res) => {
          res.resume();
          res.on("end", () =>
            done(
              res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300
                ? undefined
                : `the collector answered ${res.statusCode}`,
            ),
          );
          res.on("error", (e) => done(e.message));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${POST_TIMEOUT_MS} ms`)));
      req.on("error", (e) => done((e as NodeJS.ErrnoException).code ?? e.message));
      req.end(body);
    });
  }

  /** Stops the interval and sends what is queued (one last try, bounded). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (let i = 0; i < 10 && this.queue.length > 0 && !this.inFlight; i++) await this.flush();
    this.closed = true;
    this.agent.destroy();
  }
}
