// The response layers: `compression` (gzip and brotli by Accept-Encoding) and
// `responseHeaders` (fields set, added, removed; HSTS on TLS).

import type { AnyPlugin } from "../../plugins/registry.js";
import { compressionLayer } from "./compression.js";
import { responseHeadersLayer } from "./response-headers.js";

export const RESPONSE_LAYERS: readonly AnyPlugin[] = [compressionLayer, responseHeadersLayer];
