// Edge protection as layer kinds (`serverLayer`): what a server's `layers` or a service
// entry's `layers` can hold. limits/: rate limits and per-client limits, access rules;
// auth/: JWT, basic authentication, external authorization; response/: compression and
// response header rules. Each kind is one module; each folder's index lists its kinds.

import type { AnyPlugin } from "../plugins/registry.js";
import { AUTH_LAYERS } from "./auth/index.js";
import { LIMIT_LAYERS } from "./limits/index.js";
import { RESPONSE_LAYERS } from "./response/index.js";

export const EDGE_LAYERS: readonly AnyPlugin[] = [
  ...LIMIT_LAYERS,
  ...AUTH_LAYERS,
  ...RESPONSE_LAYERS,
];
