// Limits and access rules: rate limits (one count per process or per cluster), requests
// in progress per client, allow/deny by the client's address.

import type { AnyPlugin } from "../../plugins/registry.js";
import { accessLayer } from "./access-rules.js";
import { concurrencyLimitLayer } from "./concurrency-limit.js";
import { rateLimitLayer } from "./rate-limit.js";

export const LIMIT_LAYERS: readonly AnyPlugin[] = [
  rateLimitLayer,
  concurrencyLimitLayer,
  accessLayer,
];
