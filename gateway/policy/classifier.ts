// Response classifiers (a kind: io.l5d.http.nonRetryable5XX (the default),
// retryableRead5XX, retryableIdempotent5XX, retryableAll5XX, allSuccessful, or a
// plugin's): whether a response (or an error before one) is a success, a failure, or a
// failure that may be retried. Failure accrual, retries and metrics read it.

export type ResponseClass = "success" | "failure" | "retryable";

export interface ResponseClassifier {
  /**
   * The class of an attempt of `method` that answered `status` (0: it failed before any
   * answer, e.g. the connection was reset).
   */
  classify(method: string, status: number): ResponseClass;
}
