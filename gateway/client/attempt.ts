// One attempt of a request on one endpoint (the endpoint layer): it times the attempt,
// bounds it by requestAttemptTimeoutMs, and when the answer's status is known (or the
// attempt failed before one) reports the outcome, classified, to the balancer and to
// failure accrual; its end gives the endpoint's slot back. Everything else passes
// through to the handler above it (the service layer, or the response writer).

import { ProxyError } from "../http/errors.js";
import type { ResponseClass, ResponseClassifier } from "../policy/classifier.js";
import { type Expiring, requestTimers, type WheelEntry } from "../timer-wheel.js";
import type { UpstreamControl, UpstreamHandler, UpstreamRequest } from "./http1/connection.js";
import { ResponseLimitError } from "./http1/response-parser.js";
import { openSslErrorText } from "./upstream-tls-errors.js";

/** What an attempt needs of the request's service: its name (for messages) and classifier. */
export interface CallPolicy {
  readonly service: string;
  readonly classifier: ResponseClassifier;
}

/** What an attempt reports to (the client that dispatched it). */
export interface AttemptOwner {
  /** The outcome of an attempt on `endpoint`: latency to its answer and whether it succeeded. */
  observe(endpoint: AttemptEndpoint, latencyMs: number, ok: boolean, connectFailure: boolean): void;
  /**
   * An attempt failed before anything was sent (the connection could not be made): true
   * when the client sends the request again on another endpoint (a requeue).
   */
  requeue(attempt: Attempt, err: Error): boolean;
  /** The attempt is over (its slot on the endpoint and in the client's limits is free). */
  finished(attempt: Attempt): void;
  /** An attempt given up from above before its answer: no outcome, but a probe it was is over. */
  interrupted(endpoint: AttemptEndpoint): void;
  /** The endpoint's pool refused the attempt (maxWaiters): no outcome, counted as rejected. */
  rejected(endpoint: AttemptEndpoint): void;
  /** requestAttemptTimeoutMs cut an attempt (for metrics). */
  attemptTimedOut(): void;
}

export interface AttemptEndpoint {
  readonly key: string;
}

/** A handler above that wants to know each attempt made for it (to abort it, to avoid its endpoint). */
export interface AttemptListener {
  attempting(attempt: Attempt): void;
}

/** Errors that mean the connection was never made, so the request was not sent. */
export const CONNECT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

export class Attempt implements UpstreamHandler, UpstreamControl, Expiring {
  private control: UpstreamControl | undefined;
  private timer: WheelEntry | undefined;
  private start = 0;
  private reported = false;
  private over = false;
  /** Set when the attempt was given up before its connection was ready. */
  private cancelledWith: Error | undefined;
  /**
   * Given up from above (the client left, the deadline passed, a retry replaced it): the
   * outcome says nothing of the endpoint, so accrual and the balancer do not see it.
   */
  private interrupted = false;
  /** How the classifier saw the answer (once it came), so the layer above need not ask again. */
  answerClass: ResponseClass = "success";
  /** How many times the request was sent again after connection failures before this one. */
  requeues = 0;
  /** Set when the class is known only at the end: the latency to the head, reported then. */
  private headLatency: number | undefined;

  constructor(
    readonly owner: AttemptOwner,
    readonly endpoint: AttemptEndpoint,
    readonly req: UpstreamRequest,
    /** The handler above (the service layer or the response writer). */
    readonly next: UpstreamHandler,
    readonly call: CallPolicy,
    timeoutMs: number | undefined,
    /** Measure the latency (the balancer reads it); otherwise it is reported as 0. */
    private readonly timed: boolean,
  ) {
    if (timed) this.start = performance.now();
    if (timeoutMs !== undefined) this.timer = requestTimers.schedule(this, Date.now() + timeoutMs);
  }

  /** requestAttemptTimeoutMs passed (the wheel's call). */
  expire(): void {
    this.timer = undefined;
    this.owner.attemptTimedOut();
    this.cut(
      new ProxyError(
        "LINTEL_ATTEMPT_TIMEOUT",
        `${this.endpoint.key} did not answer ${this.call.service} within requestAttemptTimeoutMs`,
      ),
    );
  }

  // ---- UpstreamControl, for the handler above -------------------------------------------

  abort(err: Error): void {
    if (!this.reported) this.interrupted = true;
    this.cut(err);
  }

  private cut(err: Error): void {
    if (this.control) this.control.abort(err);
    else if (!this.over) {
      // Still waiting for a connection: the pool starts it later and it is dropped then.
      this.cancelledWith = err;
      this.onError(err);
    }
  }

  resume(): void {
    this.control?.resume();
  }

  // ---- UpstreamHandler, for the connection below ------------------------------------------

  onStart(control: UpstreamControl): void {
    if (this.over) {
      control.abort(this.cancelledWith ?? new Error("the attempt was given up"));
      return;
    }
    this.control = control;
    this.next.onStart(this);
  }

  onHead(status: number, headers: string[]): void {
    // The attempt timeout bounds the wait for the answer, not its streaming.
    if (this.timer) {
      requestTimers.cancel(this.timer);
      this.timer = undefined;
    }
    const classifier = this.call.classifier;
    this.answerClass = classifier.classify(this.req.method, status, headers);
    // A class that comes with the trailers (gRPC) is reported then, with the head's latency.
    if (classifier.classifiesAtEnd?.(status, headers)) this.headLatency = this.latency();
    else this.report(this.answerClass === "success", false);
    this.next.onHead(status, headers);
  }

  onData(chunk: Buffer): boolean {
    return this.next.onData(chunk);
  }

  onEnd(trailers: string[] | undefined): void {
    const classifier = this.call.classifier;
    if (this.headLatency !== undefined && classifier.classifyEnd !== undefined) {
      this.answerClass = classifier.classifyEnd(trailers);
      this.report(this.answerClass === "success", false, this.headLatency);
    }
    this.finish();
    this.next.onEnd(trailers);
  }

  onError(err: Error): void {
    if (this.over) return;
    // The pool's own limit (maxWaiters) says nothing of the endpoint's health.
    if (err instanceof ProxyError && err.code === "LINTEL_OVERLOADED" && !this.reported) {
      this.reported = true;
      this.owner.rejected(this.endpoint);
    }
    const connectFailure = CONNECT_CODES.has((err as NodeJS.ErrnoException).code ?? "");
    // A response already counted stays counted; an attempt that died before one failed.
    // One over the router's maxResponseKB or maxChunkKB is an answer the router refuses:
    // the endpoint is not failing (else clients asking for a large resource would get it
    // marked dead by failure accrual).
    this.report(err instanceof ResponseLimitError, connectFailure);
    this.finish();
    if (connectFailure && this.control === undefined && this.owner.requeue(this, err)) return;
    this.next.onError(this.explained(err, connectFailure));
  }

  /** The error as the client's answer says it: what failed, where, for which service. */
  private explained(err: Error, connectFailure: boolean): ProxyError {
    if (err instanceof ProxyError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? "";
    const where = this.endpoint.key;
    const service = this.call.service;
    if (err instanceof ResponseLimitError) {
      // e.g. "the response of /svc/users from 10.0.0.5:8080 is over maxResponseKB (1024 KB): …"
      return new ProxyError(
        "LINTEL_RESPONSE_TOO_LARGE",
        `the response of ${service} from ${where} ${err.message}`,
      );
    }
    if (connectFailure) {
      return new ProxyError(
        "LINTEL_CONNECT",
        `cannot connect to ${where} for ${service}: ${code || err.message}`,
      );
    }
    if (code.startsWith("ERR_SSL_")) {
      // TLS broke after the handshake, e.g. TLS 1.3 upstreams refuse a client certificate only then.
      return new ProxyError(
        "LINTEL_UPSTREAM_TLS",
        `TLS to ${where} failed before answering for ${service}: ${openSslErrorText(err)}`,
      );
    }
    return new ProxyError(
      "LINTEL_UPSTREAM",
      `${where} failed before answering for ${service}: ${err.message}`,
    );
  }

  private report(ok: boolean, connectFailure: boolean, latency = this.latency()): void {
    if (this.reported) return;
    this.reported = true;
    if (this.interrupted) this.owner.interrupted(this.endpoint);
    else this.owner.observe(this.endpoint, latency, ok, connectFailure);
  }

  private latency(): number {
    return this.timed ? performance.now() - this.start : 0;
  }

  private finish(): void {
    if (this.over) return;
    this.over = true;
    if (this.timer) requestTimers.cancel(this.timer);
    this.owner.finished(this);
  }
}
