// The claims a `jwt` layer verified, for the layers after it (a rate limit keyed by
// `sub`, say): kept on the request (`req.claims`) and read as text with jwtClaim.

import type { ArrivingRequest } from "../../routing/server-stack/layer.js";

export type Claims = Readonly<Record<string, unknown>>;

/** Records the claims verified for `req` (the last jwt layer to verify wins). */
export function setJwtClaims(req: ArrivingRequest, claims: Claims): void {
  req.claims = claims;
}

/** The verified claims of `req`'s token, undefined when no jwt layer verified one. */
export function jwtClaims(req: ArrivingRequest): Claims | undefined {
  return req.claims;
}

/**
 * One verified claim as text: `name` is a claim (`sub`) or a dotted path into nested
 * claims (`realm_access.roles`); a string as it is, a number or boolean written out, a
 * list of strings joined with `,`, anything else as JSON. Undefined when absent.
 */
export function jwtClaim(req: ArrivingRequest, name: string): string | undefined {
  const claims = req.claims;
  return claims === undefined ? undefined : claimText(claims, name);
}

/** `name` (a claim or a dotted path) of `claims` as text; see jwtClaim. */
export function claimText(claims: Claims, name: string): string | undefined {
  let v = own(claims, name);
  if (v === undefined && name.includes(".")) {
    v = claims;
    for (const part of name.split(".")) {
      if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
      v = own(v as Claims, part);
    }
  }
  switch (typeof v) {
    case "string":
      return v;
    case "number":
    case "boolean":
      return String(v);
    case "object":
      if (v === null) return undefined;
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.join(",");
      return JSON.stringify(v);
    default:
      return undefined;
  }
}

/** An own property only: a claim named `__proto__` or `constructor` is just absent. */
function own(o: Claims, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}
