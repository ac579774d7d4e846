// Authentication layers (`serverLayer` kinds), each one module: `jwt` (JSON Web Tokens
// verified with keys from a JWKS URL or files), `basicAuth` (an htpasswd file of bcrypt
// hashes) and `extAuth` (a sub-request to an auth service). Shared: what they do to the
// request going upstream (request-headers), their caches, metrics and bounded fetches.
// Other layers read what a jwt layer verified with jwtClaim.

import type { AnyPlugin } from "../../plugins/registry.js";
import { basicAuthLayer } from "./basic-auth.js";
import { extAuthLayer } from "./ext-auth.js";
import { jwtLayer } from "./jwt.js";

export { type Claims, jwtClaim, jwtClaims } from "./claims.js";

export const AUTH_LAYERS: readonly AnyPlugin[] = [jwtLayer, basicAuthLayer, extAuthLayer];
