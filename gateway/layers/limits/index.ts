// Limits and access rules: rate limits and the stores they count in (one count per
// process or per cluster), requests in progress per client, allow/deny by address.

import type { AnyPlugin } from "../../plugins/registry.js";
import { accessLayer } from "./access-rules.js";
import { concurrencyLimitLayer } from "./concurrency-limit.js";
import { rateLimitLayer } from "./rate-limit.js";
import { localStore, redisStore } from "./stores.js";

export const LIMIT_LAYERS: readonly AnyPlugin[] = [
  rateLimitLayer,
  localStore,
  redisStore,
  concurrencyLimitLayer,
  accessLayer,
];
