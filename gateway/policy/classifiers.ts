// The HTTP response classifier kinds of Linkerd 1 (io.l5d.http.*): which answers are
// failures (5XX, or an error before any answer: status 0) and for which methods a failure
// may be retried.

import { object } from "../config/schema.js";
import { type AnyPlugin, definePlugin } from "../plugins/registry.js";
import type { ResponseClass, ResponseClassifier } from "./classifier.js";

/** Linkerd's ReadOnly methods. */
const READ = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);
/** Linkerd's Idempotent methods (RFC 2616): the read ones, PUT and DELETE. */
const IDEMPOTENT = new Set([...READ, "PUT", "DELETE"]);

const failed = (status: number) => status === 0 || (status >= 500 && status <= 599);

/** 5XX and errors are failures, retryable when `retryable(method)`. */
function serverErrors(retryable: (method: string) => boolean): ResponseClassifier {
  return {
    classify: (method: string, status: number): ResponseClass =>
      !failed(status) ? "success" : retryable(method) ? "retryable" : "failure",
  };
}

const NON_RETRYABLE_5XX = serverErrors(() => false);

/** Linkerd 1's default: 5XX and errors are failures, none retried. */
export const DEFAULT_CLASSIFIER: ResponseClassifier = NON_RETRYABLE_5XX;

/**
 * Every answer is a success whatever its status; an error before any answer stays a
 * (non-retryable) failure, as in Linkerd (its allSuccessful falls back to
 * ClassifiedRetries.Default, which fails a Throw), so accrual still sees refused connections.
 */
const ALL_SUCCESSFUL: ResponseClassifier = {
  classify: (_method: string, status: number): ResponseClass =>
    status === 0 ? "failure" : "success",
};

function classifierKind(kind: string, classifier: ResponseClassifier) {
  return definePlugin({
    category: "responseClassifier",
    kind,
    schema: object({}),
    create: () => classifier,
  });
}

/**
 * The kinds. The caller, not these, applies the rest of Linkerd's rules: an upstream
 * response with `l5d-retryable: true` makes a failure retryable; a request with a chunked
 * body is never retried; the class goes back downstream in `l5d-success-class` (1.0 / 0.0).
 */
const HTTP_CLASSIFIERS: readonly [string, ResponseClassifier][] = [
  ["nonRetryable5XX", NON_RETRYABLE_5XX],
  ["retryableRead5XX", serverErrors((m) => READ.has(m))],
  ["retryableIdempotent5XX", serverErrors((m) => IDEMPOTENT.has(m))],
  ["retryableAll5XX", serverErrors(() => true)],
  ["allSuccessful", ALL_SUCCESSFUL],
];

/** Each under Linkerd's http name, and its h2 name (the same rules on HTTP/2 answers). */
export const RESPONSE_CLASSIFIERS: readonly AnyPlugin[] = HTTP_CLASSIFIERS.flatMap(([name, c]) => [
  classifierKind(`io.l5d.http.${name}`, c),
  classifierKind(`io.l5d.h2.${name}`, c),
]);
