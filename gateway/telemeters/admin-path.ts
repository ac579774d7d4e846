// The schema of a telemeter's admin server path (io.l5d.prometheus's `path`).

import { isAdminServerPath } from "../admin/paths.js";
import { nonEmptyString, refine, type Schema, show } from "../config/schema.js";

export function adminPathSchema(): Schema<string> {
  return refine(nonEmptyString("an admin server path such as /metrics"), (p) => {
    if (!/^\/[^\s?#]*$/.test(p))
      return `expected an admin server path such as /metrics (starting with /, no query), got ${show(p)}`;
    if (isAdminServerPath(p)) return `${p} is one of the admin server's own pages`;
    return undefined;
  });
}
