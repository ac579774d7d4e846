// What a user plugin module is given: the schema language, the naming core and the
// interfaces it implements. Stable surface for plugins written outside lintel.

export * as schema from "../config/schema.js";
/** Server layers refuse a request by throwing one (its code chooses the status). */
export { ProxyError } from "../http/errors.js";
/** A request header's value, from an engine's flat `[name, value, …]` list (lower-case names). */
export { getHeader } from "../http/headers.js";
export { identified, unidentified, urlSegments } from "../identifiers/identifier.js";
export * as naming from "../naming/index.js";
export { definePlugin } from "./registry.js";
