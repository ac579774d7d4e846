// What a limit counts a request by: the client's address (through trusted proxies), the
// service name, a header's value, or a claim of the token a jwt layer verified.

import { getHeader } from "../../http/headers.js";
import { type ArrivingRequest, clientAddress } from "../../routing/server-stack/layer.js";

/** What a request is counted by. */
export type RateKey =
  | { readonly by: "client" }
  | { readonly by: "service" }
  | { readonly by: "header"; readonly name: string }
  | { readonly by: "jwtClaim"; readonly name: string };

/** `client`, `service`, `header:<name>` or `jwtClaim:<name>`. */
export function parseRateKey(s: string): RateKey | string {
  if (s === "client" || s === "service") return { by: s };
  const colon = s.indexOf(":");
  const kind = colon < 0 ? s : s.slice(0, colon);
  const name = colon < 0 ? "" : s.slice(colon + 1).trim();
  if ((kind === "header" || kind === "jwtClaim") && name !== "")
    return { by: kind, name: kind === "header" ? name.toLowerCase() : name };
  return `a key: client, service, header:<name> or jwtClaim:<name>, not "${s}"`;
}

/** The request's key, or undefined when it has none (no such header or claim). */
export function keyOf(k: RateKey, req: ArrivingRequest): string | undefined {
  switch (k.by) {
    case "client":
      return clientAddress(req);
    case "service":
      return req.service ?? "";
    case "header":
      return getHeader(req.ex.headers, k.name);
    case "jwtClaim": {
      const v = req.claims?.[k.name];
      return v === undefined || v === null ? undefined : String(v);
    }
  }
}
