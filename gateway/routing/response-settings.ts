// A router's settings for the responses it passes on, made once when the router is
// built: the limits its upstream connections check as they parse (maxResponseKB,
// maxChunkKB) and the response writer's compression (compressionLevel). Each is
// undefined when not configured, so a router without them pays a branch, no more.

import type { ResponseLimits } from "../client/http1/response-parser.js";
import { ResponseCompression } from "./response-compression.js";

export interface ResponseSettings {
  /** maxResponseKB and maxChunkKB, in bytes; undefined when neither is set. */
  readonly limits: ResponseLimits | undefined;
  /** compressionLevel; undefined when unset or 0. */
  readonly compression: ResponseCompression | undefined;
}

/** The response settings of a router config entry. */
export function responseSettings(r: {
  readonly maxResponseKB?: number | undefined;
  readonly maxChunkKB?: number | undefined;
  readonly compressionLevel?: number | undefined;
}): ResponseSettings {
  const limits: ResponseLimits | undefined =
    r.maxResponseKB === undefined && r.maxChunkKB === undefined
      ? undefined
      : {
          maxBodyBytes:
            r.maxResponseKB === undefined ? Number.POSITIVE_INFINITY : r.maxResponseKB * 1024,
          maxChunkBytes:
            r.maxChunkKB === undefined ? Number.POSITIVE_INFINITY : r.maxChunkKB * 1024,
        };
  const level = r.compressionLevel ?? 0;
  return { limits, compression: level === 0 ? undefined : new ResponseCompression(level) };
}
