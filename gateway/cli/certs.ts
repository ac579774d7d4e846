// `lintel certs`: the certificates a running lintel serves, from its admin server's
// /admin/certificates.json: per TLS server each certificate's names, source, issuer and
// expiry, the ACME names' renewal state, and what failed.

import type { CertificatesView } from "../admin/certificates.js";
import { adminRequest } from "./admin-request.js";

async function fetchView(admin: string, timeoutMs: number): Promise<CertificatesView> {
  const r = await adminRequest(admin, "GET", "/admin/certificates.json", { timeoutMs });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.trim()}`);
  try {
    return JSON.parse(r.body) as CertificatesView;
  } catch {
    throw new Error("the answer is not JSON");
  }
}

/** Days (or hours) until `iso`, for people. */
function until(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  const h = ms / 3600_000;
  if (Math.abs(h) < 48) return `${h < 0 ? "expired " : "in "}${Math.abs(Math.round(h))} h`;
  return `${ms < 0 ? "expired " : "in "}${Math.abs(Math.round(h / 24))} days`;
}

export function formatCertificates(view: CertificatesView, now = Date.now()): string {
  const lines: string[] = [];
  for (const s of view.servers) {
    lines.push(`${s.router}/${s.server} ${s.address}`);
    for (const c of s.certificates) {
      const mark = c.default ? " (default)" : "";
      lines.push(`  ${c.names.join(", ")}${mark}`);
      lines.push(`    source ${c.source}; issuer ${c.issuer}`);
      let expiry = `    expires ${c.notAfter} (${until(c.notAfter, now)})`;
      if (c.acme?.renewAt) expiry += `; renews ${c.acme.renewAt}`;
      lines.push(expiry);
      if (c.acme?.lastError)
        lines.push(`    last ACME error (${c.acme.lastError.at}): ${c.acme.lastError.message}`);
    }
  }
  const missing = view.acme.flatMap((m) =>
    m.names.filter((n) => n.notAfter === undefined).map((n) => ({ m, n })),
  );
  if (missing.length > 0) {
    lines.push("ACME names without a certificate:");
    for (const { m, n } of missing) {
      let line = `  ${n.name} (${n.state}${n.onDemand ? ", on demand" : ""}) from ${m.directory}`;
      if (n.nextTryAt) line += `; next try ${n.nextTryAt}`;
      lines.push(line);
      if (n.lastError) lines.push(`    ${n.lastError.message}`);
    }
  }
  return lines.join("\n");
}

export async function certsCommand(
  opts: { readonly admin: string; readonly json: boolean },
  out: (s: string) => void,
): Promise<number> {
  let view: CertificatesView;
  try {
    view = await fetchView(opts.admin, 5000);
  } catch (e) {
    out(`cannot read the certificates: ${(e as Error).message}`);
    return 1;
  }
  out(opts.json ? JSON.stringify(view, null, 2) : formatCertificates(view));
  return 0;
}
