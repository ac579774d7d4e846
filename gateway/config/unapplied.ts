// Settings lintel reads and checks but does not apply yet. Each is reported rather than
// silently ignored: by `lintel check` and in the startup log. A setting whose being
// ignored would be unsafe is reported as fatal, so lintel does not start.

import type { LintelConfig } from "./config-schema.js";

export interface Unapplied {
  readonly path: string;
  readonly message: string;
  /** Ignoring it would be unsafe (e.g. traffic meant to be encrypted sent in the clear). */
  readonly fatal: boolean;
}

export function unappliedSettings(config: LintelConfig): Unapplied[] {
  const out: Unapplied[] = [];
  const warn = (path: string, what: string, meanwhile = "it has no effect") =>
    out.push({ path, message: `${what} is not applied yet; ${meanwhile}`, fatal: false });

  config.telemetry.forEach((t, i) => {
    warn(`telemetry[${i}]`, `telemeter ${t.kind}`);
  });
  return out;
}
