// `lintel check CONFIG...`: validates configs and prints every error with its path and line.

import { formatConfigError } from "../config/load.js";
import { engineNotes } from "../server/engine-notes.js";
import { loadLintelConfig } from "../setup.js";

export async function checkCommand(files: string[], out: (s: string) => void): Promise<number> {
  if (files.length === 0) {
    out("usage: lintel check CONFIG [CONFIG...]");
    return 2;
  }
  let failures = 0;
  for (const file of files) {
    const r = await loadLintelConfig(file);
    const name = file;
    if (r.ok) {
      out(`${name}: ok`);
      for (const note of engineNotes(r.config)) out(`  note: ${note}`);
      continue;
    }
    failures++;
    out(`${name}: ${r.errors.length} error${r.errors.length === 1 ? "" : "s"}`);
    for (const e of r.errors) out(`  ${formatConfigError(e).split("\n").join("\n  ")}`);
  }
  return failures === 0 ? 0 : 1;
}
