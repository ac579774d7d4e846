// The gRPC response classifier kinds of Linkerd 1 (io.l5d.h2.grpc.*). A gRPC call's
// outcome is its grpc-status: in the head of a trailers-only answer (then known at once,
// and retryable), otherwise in the trailers (then known at the stream's end: failure
// accrual and the balancer hear of it then; a retry is no longer possible). A status in
// `successStatusCodes` (default [0], OK) is a success; the kind decides which of the others
// may be retried. An HTTP error status without grpc-status, or an error before any answer,
// is a failure, retried as the kind retries UNAVAILABLE.

import { def, integer, list, object } from "../config/schema.js";
import { getHeader } from "../http/headers.js";
import { type AnyPlugin, definePlugin } from "../plugins/registry.js";
import type { ResponseClass, ResponseClassifier } from "./classifier.js";

/** gRPC's UNAVAILABLE: the service could not be reached; safe to try elsewhere. */
const UNAVAILABLE = 14;

function grpcClassifier(
  retryable: (code: number) => boolean,
  success: ReadonlySet<number>,
): ResponseClassifier {
  const byCode = (code: number): ResponseClass =>
    success.has(code) ? "success" : retryable(code) ? "retryable" : "failure";
  const ofStatus = (value: string | undefined): ResponseClass =>
    value === undefined ? "failure" : byCode(Number(value));
  return {
    classify(_method, status, headers) {
      if (status === 0 || status >= 500) return retryable(UNAVAILABLE) ? "retryable" : "failure";
      const code = headers === undefined ? undefined : getHeader(headers, "grpc-status");
      if (code !== undefined) return byCode(Number(code));
      return status >= 400 ? "failure" : "success";
    },
    classifiesAtEnd: (status, headers) =>
      status < 400 && getHeader(headers, "grpc-status") === undefined,
    // No grpc-status at all: the call ended without one, which gRPC reads as a failure.
    classifyEnd: (trailers) => ofStatus(trailers && getHeader(trailers, "grpc-status")),
  };
}

const fields = { successStatusCodes: def(list(integer({ min: 0, max: 16 })), [0]) };

function grpcKind(kind: string, retryable: (code: number) => boolean): AnyPlugin {
  return definePlugin({
    category: "responseClassifier",
    kind,
    schema: object(fields),
    create: (c) => grpcClassifier(retryable, new Set(c.successStatusCodes)),
  });
}

export const GRPC_CLASSIFIERS: readonly AnyPlugin[] = [
  // Linkerd's default for gRPC: UNAVAILABLE may be retried, nothing else.
  grpcKind("io.l5d.h2.grpc.default", (code) => code === UNAVAILABLE),
  grpcKind("io.l5d.h2.grpc.compliant", (code) => code === UNAVAILABLE),
  grpcKind("io.l5d.h2.grpc.alwaysRetryable", () => true),
  grpcKind("io.l5d.h2.grpc.neverRetryable", () => false),
  definePlugin({
    category: "responseClassifier",
    kind: "io.l5d.h2.grpc.retryableStatusCodes",
    schema: object({
      ...fields,
      retryableStatusCodes: def(list(integer({ min: 0, max: 16 })), []),
    }),
    create: (c) => {
      const retryable = new Set(c.retryableStatusCodes);
      return grpcClassifier((code) => retryable.has(code), new Set(c.successStatusCodes));
    },
  }),
];
