// The certificates page (/certificates): every certificate served, per TLS server, with
// its source, issuer, expiry and ACME state; the namers' state; the recent requests when
// the io.l5d.recentRequests telemeter is on.

import { getJson } from "./api.js";
import { byId, type El, h } from "./dom.js";
import { count, duration, ms, NONE } from "./format.js";
import { showError } from "./status.js";

interface AcmeName {
  readonly name: string;
  readonly state: string;
  readonly onDemand: boolean;
  readonly notAfter?: string;
  readonly renewAt?: string;
  readonly failures: number;
  readonly nextTryAt?: string;
  readonly lastError?: { readonly at: string; readonly message: string };
}

interface Certificate {
  readonly names: readonly string[];
  readonly source: string;
  readonly default: boolean;
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly expiresInSecs: number;
  /** A folder certificate whose key or chain turned out unusable on first use. */
  readonly error?: string;
  readonly acme?: AcmeName;
}

interface Certificates {
  readonly servers: readonly {
    readonly router: string;
    readonly address: string;
    readonly certificates: readonly Certificate[];
  }[];
  readonly acme: readonly {
    readonly server: string;
    readonly directory: string;
    readonly names: readonly AcmeName[];
  }[];
}

interface UiIndex {
  readonly namers: readonly { readonly prefix: string; readonly state: string }[];
  readonly pages: readonly string[];
}

interface RecentRequest {
  readonly time: string;
  readonly router: string;
  readonly method: string;
  readonly host: string | null;
  readonly url: string;
  readonly status: number;
  readonly durationMs: number;
  readonly service: string | null;
  readonly client: string | null;
  readonly error: string | null;
}

const RECENT_REQUESTS = "/admin/recentRequests.json";

/** A certificate this close to its expiry is marked. */
const EXPIRY_WARNING_SECS = 14 * 86_400;

function simpleTable(caption: string, heads: readonly string[], rows: readonly El[]): El {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...heads.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, ...rows),
  );
}

function acmeText(a: AcmeName | undefined): string {
  if (!a) return NONE;
  const next = a.renewAt ? `, renews ${a.renewAt}` : "";
  const failing = a.lastError ? `, ${a.failures} failures, last: ${a.lastError.message}` : "";
  return `${a.state}${next}${failing}`;
}

function certificatesSection(c: Certificates): El {
  const servers = c.servers.map((s) =>
    simpleTable(
      `${s.router}, ${s.address}`,
      ["Names", "Source", "Issuer", "Expires", "In", "ACME, or what failed"],
      s.certificates.map((cert) =>
        h(
          "tr",
          { "data-names": cert.names.join(" ") },
          h("th", { scope: "row" }, cert.names.join(", ") + (cert.default ? " (default)" : "")),
          h("td", {}, cert.source),
          h("td", {}, cert.issuer),
          h("td", { "data-stat": "expiry" }, h("time", { datetime: cert.notAfter }, cert.notAfter)),
          h(
            "td",
            { class: cert.expiresInSecs < EXPIRY_WARNING_SECS ? "warn" : undefined },
            duration(cert.expiresInSecs),
          ),
          cert.error === undefined
            ? h("td", {}, acmeText(cert.acme))
            : h("td", { class: "warn" }, cert.error),
        ),
      ),
    ),
  );
  const acme = c.acme.map((m) =>
    simpleTable(
      `ACME ${m.server} (${m.directory})`,
      ["Name", "State"],
      m.names.map((n) => h("tr", {}, h("th", { scope: "row" }, n.name), h("td", {}, acmeText(n)))),
    ),
  );
  return h(
    "section",
    { "aria-labelledby": "h-certs" },
    h("h2", { id: "h-certs" }, "Certificates"),
    ...(servers.length > 0 ? servers : [h("p", {}, "No TLS server: no certificate is served.")]),
    ...acme,
  );
}

async function namersSection(index: UiIndex): Promise<El> {
  const states = await Promise.all(
    index.namers.map(async (n) => {
      const state = await getJson<unknown>(n.state).catch((e: Error) => e.message);
      return h(
        "details",
        {},
        h("summary", {}, `/${n.prefix}`),
        h("pre", {}, typeof state === "string" ? state : JSON.stringify(state, null, 2)),
      );
    }),
  );
  return h(
    "section",
    { "aria-labelledby": "h-namers" },
    h("h2", { id: "h-namers" }, "Namer state"),
    ...(states.length > 0 ? states : [h("p", {}, "No configured namer keeps a state to show.")]),
  );
}

async function recentSection(index: UiIndex): Promise<El> {
  const title = h("h2", { id: "h-recent" }, "Recent requests");
  if (!index.pages.includes(RECENT_REQUESTS)) {
    return h(
      "section",
      { "aria-labelledby": "h-recent" },
      title,
      h(
        "p",
        { id: "recent-off" },
        "Recent requests are not recorded. Add the telemeter to the config's ",
        h("code", {}, "telemetry"),
        " list: ",
        h("code", {}, "- kind: io.l5d.recentRequests"),
        " with a ",
        h("code", {}, "sampleRate"),
        " such as 1.0.",
      ),
    );
  }
  const page = await getJson<{ requests: readonly RecentRequest[] }>(RECENT_REQUESTS);
  return h(
    "section",
    { "aria-labelledby": "h-recent" },
    title,
    simpleTable(
      `Newest first (${count(page.requests.length)})`,
      ["Time", "Router", "Request", "Status", "ms", "Service", "Client", "Error"],
      page.requests.map((r) =>
        h(
          "tr",
          {},
          h("td", {}, r.time),
          h("td", {}, r.router),
          h("th", { scope: "row" }, `${r.method} ${r.host ?? ""}${r.url}`),
          h("td", {}, r.status === 0 ? NONE : String(r.status)),
          h("td", {}, ms(r.durationMs)),
          h("td", {}, r.service ?? NONE),
          h("td", {}, r.client ?? NONE),
          h("td", {}, r.error ?? ""),
        ),
      ),
    ),
  );
}

export async function startCertificates(): Promise<void> {
  const out = byId("content");
  try {
    const [certs, index] = await Promise.all([
      getJson<Certificates>("/admin/certificates.json"),
      getJson<UiIndex>("/admin/ui.json"),
    ]);
    out.replaceChildren(
      certificatesSection(certs),
      await namersSection(index),
      await recentSection(index),
    );
    showError(undefined);
  } catch (e) {
    showError(e);
  }
}
