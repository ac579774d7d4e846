// The line at the top of every page that says what failed to load (and why).

import { byId } from "./dom.js";

export function showError(e: unknown): void {
  const el = byId("error");
  el.hidden = e === undefined;
  el.textContent =
    e === undefined ? "" : `Could not load: ${e instanceof Error ? e.message : String(e)}`;
}
