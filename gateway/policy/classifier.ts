// Response classifiers (a kind: io.l5d.http.nonRetryable5XX (the default),
// retryableRead5XX, retryableIdempotent5XX, retryableAll5XX, allSuccessful, or a
// plugin's): whether a response (or an error before one) is a success, a failure, or a
// failure that may be retried. Failure accrual, retries and metrics read it.

export type ResponseClass = "success" | "failure" | "retryable";

export interface ResponseClassifier {
  /**
   * The class of an attempt of `method` that answered `status` (0: it failed before any
   * answer, e.g. the connection was reset) with the response `headers` (flat, lower-case).
   */
  classify(method: string, status: number, headers?: readonly string[]): ResponseClass;
  /**
   * For answers whose class comes at their end (gRPC puts grpc-status in the trailers):
   * whether this head leaves the class open. Retries can only act on a head's class.
   */
  classifiesAtEnd?(status: number, headers: readonly string[]): boolean;
  /** The class from the trailers of an answer `classifiesAtEnd` left open. */
  classifyEnd?(trailers: readonly string[] | undefined): ResponseClass;
}
