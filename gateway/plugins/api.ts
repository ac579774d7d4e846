// What a user plugin module is given: the schema language, the naming core and the
// interfaces it implements. Stable surface for plugins written outside lintel.

export * as schema from "../config/schema.js";
export { identified, unidentified, urlSegments } from "../identifiers/identifier.js";
export * as naming from "../naming/index.js";
export { definePlugin } from "./registry.js";
