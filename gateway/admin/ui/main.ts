// The admin UI's entry: draws the page the address names (dashboard, dtab playground,
// certificates) and marks it in the navigation.

import { setUpTokenForm } from "./api.js";
import { startCertificates } from "./certificates.js";
import { startDashboard } from "./dashboard.js";
import { byId, doc, win } from "./dom.js";
import { startPlayground } from "./playground.js";

const pages: Readonly<Record<string, { readonly title: string; readonly start: () => unknown }>> = {
  "/": { title: "Dashboard", start: startDashboard },
  "/dtab": { title: "Dtab playground", start: startPlayground },
  "/certificates": { title: "Certificates and state", start: startCertificates },
};

const pathname = win.location.pathname;
const page = pages[pathname] ?? pages["/"]!;
doc.title = `${page.title} · lintel admin`;
byId("page-title").textContent = page.title;
byId("nav").querySelector(`a[href="${pathname}"]`)?.setAttribute("aria-current", "page");
// The dashboard polls, so a saved token is used on its next reading; the others load again.
setUpTokenForm(() => {
  if (pathname !== "/") void page.start();
});
void page.start();
