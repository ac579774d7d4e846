// The service layer of one request (Linkerd's `service` block): retries of the failures
// the response classifier calls retryable, under the service's retry budget and backoff,
// never to the endpoint that just failed when another is available; and one deadline
// for the whole request (totalTimeoutMs, the server's timeoutMs, and an l5d-ctx-deadline
// from a trusted peer, whichever comes first). It sits between the response writer
// (below: the attempts' handler; above: the writer's control) and the client.

import type { Attempt, AttemptEndpoint, AttemptListener } from "../client/attempt.js";
import type { Client } from "../client/client.js";
import type {
  UpstreamControl,
  UpstreamHandler,
  UpstreamRequest,
} from "../client/http1/connection.js";
import { ProxyError } from "../http/errors.js";
import { getHeader, setHeader } from "../http/headers.js";
import type { BackoffSequence } from "../policy/backoff.js";
import { type Expiring, requestTimers, type WheelEntry } from "../timer-wheel.js";
import type { ClientSpan, RequestTrace } from "../tracing/tracer.js";
import type { BodyReplay } from "./body-replay.js";
import type { ServicePolicy } from "./service-policy.js";

/** A request is retried at most this many times, whatever the budget. */
const MAX_RETRIES = 25;

/** Errors a retry cannot mend: the deadline passed, or the answer is over the router's limits. */
const NOT_RETRIED = new Set(["LINTEL_TIMEOUT", "LINTEL_RESPONSE_TOO_LARGE"]);

/** Ends the span of an attempt whose connection failed before sending (sent again elsewhere). */
const REQUEUED = new Error("the connection failed: the request was sent to another endpoint");

/** Aborts an attempt whose answer is discarded for a retry. */
const RETRYING = new Error("the answer is retryable: the request is sent again");

/** An answer held back until its end says whether it is retried. */
interface HeldAnswer {
  readonly status: number;
  readonly headers: string[];
  readonly chunks: Buffer[];
  bytes: number;
  readonly timer: NodeJS.Timeout;
}

export class ServiceCall implements UpstreamHandler, UpstreamControl, AttemptListener, Expiring {
  private current: Attempt | undefined;
  /** The endpoint of the last attempt: a retry goes elsewhere when it can. */
  private lastEndpoint: AttemptEndpoint | undefined;
  private backoff: BackoffSequence | undefined;
  private retries = 0;
  /** Attempts sent so far (the first one takes the body as it streams). */
  private sent = 0;
  /** The attempt in flight was aborted by this call to retry. */
  private discarding = false;
  /** The response head went to the writer: no retry from here on. */
  private answered = false;
  private over = false;
  private deadlineTimer: WheelEntry | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The attempt in flight's span, when the request's trace is sampled. */
  private span: ClientSpan | undefined;
  /** An answer held until its class is known at its end (see ServicePolicy.holdForClass). */
  private held: HeldAnswer | undefined;

  constructor(
    private readonly client: Client,
    private readonly policy: ServicePolicy,
    private readonly req: UpstreamRequest,
    /** How the request body is sent again (undefined: it may not be). */
    private readonly replay: BodyReplay | undefined,
    /** The response writer. */
    private readonly writer: UpstreamHandler,
    /** When the whole request must be answered (ms since the epoch), or undefined. */
    private readonly deadline: number | undefined,
    /** The request's trace (each attempt gets a client span and sends its context). */
    private readonly trace?: RequestTrace,
  ) {}

  start(): void {
    this.writer.onStart(this);
    // The client may have left already: the writer aborted at once.
    if (this.over) return;
    this.policy.budget.deposit();
    if (this.deadline !== undefined) {
      const left = this.deadline - Date.now();
      if (left <= 0) {
        this.expire();
        return;
      }
      this.deadlineTimer = requestTimers.schedule(this, this.deadline);
    }
    this.send();
  }

  private send(): void {
    const replay = this.replay;
    let req = this.req;
    if (replay !== undefined) {
      const body = this.sent++ === 0 ? replay.first() : replay.again();
      // mayRetry made sure a body that cannot be sent again is never retried.
      req = { ...req, body: body ?? null };
    }
    this.client.dispatch(req, this, this.policy, this.lastEndpoint);
  }

  /** The deadline passed (the wheel calls it). */
  expire(): void {
    this.deadlineTimer = undefined;
    if (this.over || this.answered) return;
    const err = new ProxyError(
      "LINTEL_TIMEOUT",
      `${this.policy.service} did not answer within its deadline (totalTimeoutMs, timeoutMs or l5d-ctx-deadline)`,
    );
    this.policy.stats.timeouts.n++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.current) {
      this.discarding = false;
      this.current.abort(err);
    } else this.fail(err);
  }

  // ---- UpstreamControl: the writer's hold on the request ---------------------------------

  abort(err: Error): void {
    if (this.over) return;
    if (this.current) this.current.abort(err);
    else this.fail(err);
  }

  resume(): void {
    this.current?.resume();
  }

  // ---- each attempt -----------------------------------------------------------------------------

  attempting(attempt: Attempt): void {
    this.current = attempt;
    this.lastEndpoint = attempt.endpoint;
    if (this.trace !== undefined) {
      // A requeue (the connection failed before anything was sent) ends the last span.
      this.span?.end(REQUEUED);
      // The head the router built for this request (its own array): rewritten per attempt.
      this.span = this.trace.attempt(
        attempt.req.headers as string[],
        attempt.endpoint.key,
        this.req.method,
        this.req.path,
      );
    }
  }

  onStart(_control: UpstreamControl): void {
    // The attempt is already known (attempting); it is the control.
  }

  onHead(status: number, headers: string[]): void {
    this.span?.head(status);
    if (this.over) return;
    let cls = this.current
      ? this.current.answerClass
      : this.policy.classifier.classify(this.req.method, status);
    // The upstream may say a failure can be tried again (Linkerd's l5d-retryable).
    if (cls === "failure" && getHeader(headers, "l5d-retryable") === "true") cls = "retryable";
    if (cls === "retryable" && this.mayRetry()) {
      this.discarding = true;
      this.current?.abort(RETRYING);
      return;
    }
    const hold = this.policy.holdForClass;
    if (
      hold !== undefined &&
      this.policy.classifier.classifiesAtEnd?.(status, headers) === true &&
      this.couldRetry()
    ) {
      // Its class (a gRPC status in the trailers) comes with its end: wait a little for it.
      const timer = setTimeout(() => this.release(), hold.timeoutMs);
      this.held = { status, headers, chunks: [], bytes: 0, timer };
      return;
    }
    this.answer(status, headers, cls === "success");
  }

  /** The answer goes to the writer: no retry from here on. */
  private answer(status: number, headers: string[], success: boolean): void {
    this.answered = true;
    if (this.deadlineTimer) requestTimers.cancel(this.deadlineTimer);
    // Linkerd's hint to the next hop: 1.0 success, 0.0 failure (replacing one from upstream).
    setHeader(headers, "l5d-success-class", success ? "1.0" : "0.0");
    this.writer.onHead(status, headers);
  }

  /**
   * A held answer goes on as it is: its class came too late (taken as a success until its
   * end says), its body is over the buffer, or it ended and is not retried.
   */
  private release(success = true): void {
    const held = this.dropHeld();
    if (held === undefined) return;
    this.answer(held.status, held.headers, success);
    for (const chunk of held.chunks) this.writer.onData(chunk);
  }

  /** Stops holding an answer, and gives it back (undefined: none was held). */
  private dropHeld(): HeldAnswer | undefined {
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      clearTimeout(held.timer);
    }
    return held;
  }

  onData(chunk: Buffer): boolean {
    const held = this.held;
    if (held === undefined) return this.writer.onData(chunk);
    // A copy: the connection may reuse the bytes it read into.
    held.chunks.push(Buffer.from(chunk));
    held.bytes += chunk.length;
    if (held.bytes > this.policy.holdForClass!.responseBytes) this.release();
    return true;
  }

  onEnd(trailers: string[] | undefined): void {
    this.span?.end(undefined);
    if (this.over) return;
    if (this.held !== undefined) {
      // The attempt reported its class from the trailers (Attempt.onEnd) before this.
      const cls = this.current?.answerClass;
      if (cls === "retryable" && this.mayRetry()) {
        this.dropHeld();
        this.current = undefined;
        this.retryLater();
        return;
      }
      this.release(cls === "success");
    }
    this.over = true;
    this.current = undefined;
    this.writer.onEnd(trailers);
  }

  onError(err: Error): void {
    this.span?.end(err);
    if (this.over) return;
    // Nothing of a held answer reached the client: it may be retried, or answered.
    this.dropHeld();
    this.current = undefined;
    if (this.discarding) {
      this.discarding = false;
      this.retryLater();
      return;
    }
    if (
      !this.answered &&
      !(err instanceof ProxyError && NOT_RETRIED.has(err.code)) &&
      this.policy.classifier.classify(this.req.method, 0) === "retryable" &&
      this.mayRetry()
    ) {
      this.retryLater();
      return;
    }
    this.fail(err);
  }

  /** Whether a retry could be sent, short of the budget (which mayRetry draws on). */
  private couldRetry(): boolean {
    if (this.retries >= MAX_RETRIES) return false;
    // A body that streamed through (or is still streaming) cannot be sent again.
    if (this.req.body !== null && (this.replay === undefined || this.replay.again() === undefined))
      return false;
    return this.deadline === undefined || Date.now() < this.deadline;
  }

  /** Whether to retry now; a yes takes a retry from the budget. */
  private mayRetry(): boolean {
    if (!this.couldRetry()) return false;
    if (!this.policy.budget.tryWithdraw()) {
      this.policy.stats.budgetExhausted.n++;
      return false;
    }
    this.retries++;
    this.policy.stats.retries.n++;
    return true;
  }

  private retryLater(): void {
    this.backoff ??= this.policy.backoff.sequence();
    const wait = this.backoff.next();
    if (wait <= 0) {
      this.send();
      return;
    }
    this.retryTimer = setTimeout(() => this.retryNow(), wait);
  }

  private retryNow(): void {
    this.retryTimer = undefined;
    if (!this.over) this.send();
  }

  private fail(err: Error): void {
    if (this.over) return;
    this.over = true;
    if (this.deadlineTimer) requestTimers.cancel(this.deadlineTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.writer.onError(err);
  }
}
