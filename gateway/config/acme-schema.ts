// A TLS server's `acme` block (lintel): certificates from an ACME CA for listed names
// (and, with onDemand, for names allowed at their first handshake), kept in a shared
// storage with a lock so that many replicas order each name once.

import { CHALLENGE_TYPES } from "../../tls/acme/challenges.js";
import { KEY_TYPES } from "../../tls/acme/keys.js";
import type { Registry } from "../plugins/registry.js";
import { hostPattern } from "./egress-schemas.js";
import { pluginSchema } from "./plugin-schema.js";
import {
  def,
  filePath,
  type Infer,
  integer,
  list,
  nonEmptyString,
  object,
  oneOf,
  opt,
  refine,
  req,
  type Schema,
  show,
} from "./schema.js";

/** Directory URLs by the names users know them by. */
export const ACME_DIRECTORIES: Readonly<Record<string, string>> = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
  zerossl: "https://acme.zerossl.com/v2/DV90",
};

/** A directory: one of the names above, or an https URL (http only to a loopback CA, for tests). */
function directory(): Schema<string> {
  const expected = `an ACME directory URL or one of ${Object.keys(ACME_DIRECTORIES).join(", ")}`;
  return {
    expected,
    decode(v, path, cx) {
      if (typeof v === "string") {
        const known = ACME_DIRECTORIES[v];
        if (known) return known;
        try {
          const u = new URL(v);
          if (u.protocol === "https:") return v;
        } catch {
          // reported below
        }
      }
      return cx.report(path, `expected ${expected}, got ${show(v)}`);
    },
  };
}

function email(): Schema<string> {
  return refine(nonEmptyString("an email address"), (s) =>
    /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s) ? undefined : `expected an email address, got ${show(s)}`,
  );
}

function httpUrl(): Schema<string> {
  return refine(nonEmptyString("an http(s) URL"), (s) => {
    try {
      const u = new URL(s);
      return u.protocol === "http:" || u.protocol === "https:"
        ? undefined
        : `expected an http(s) URL, got ${show(s)}`;
    } catch {
      return `expected an http(s) URL, got ${show(s)}`;
    }
  });
}

export function acmeBlock(registry: Registry) {
  const fields = object({
    /** The CA: letsencrypt (default), letsencrypt-staging, zerossl, or a directory URL. */
    directory: def(directory(), "letsencrypt"),
    /** The account's contact (expiry mail from the CA). */
    email: opt(email()),
    /** External Account Binding, for CAs that need it (ZeroSSL, some private CAs). */
    externalAccountBinding: opt(
      refine(
        object({
          kid: req(nonEmptyString("a key id")),
          hmacKeyEnv: opt(nonEmptyString("an environment variable name")),
          hmacKeyFile: opt(filePath("a file holding the HMAC key")),
        }),
        (e) =>
          (e.hmacKeyEnv === undefined) === (e.hmacKeyFile === undefined)
            ? "give the HMAC key in hmacKeyEnv or hmacKeyFile (one of them), not in the config"
            : undefined,
      ),
    ),
    /** The names to keep certificates for (one certificate each); `*.domain` needs dns-01. */
    names: def(list(hostPattern()), []),
    keyType: def(oneOf(KEY_TYPES), "ec256"),
    /** Challenges lintel may use, in order of preference (default: http-01, then tls-alpn-01 on net servers). */
    challenges: opt(list(oneOf(CHALLENGE_TYPES), { minItems: 1 })),
    /** Publishes DNS-01 records: a DNS provider kind (exec, or a plugin's). */
    dnsProvider: opt(pluginSchema(registry, "dnsProvider")),
    /** Where the account, certificates, challenge answers and locks live (shared by replicas). */
    storage: opt(pluginSchema(registry, "acmeStorage")),
    onDemand: opt(
      refine(
        object({
          allow: def(list(hostPattern()), []),
          ask: opt(httpUrl()),
          maxPerMinute: def(integer({ min: 1 }), 10),
          maxConcurrent: def(integer({ min: 1 }), 4),
          waitMs: def(integer({ min: 100 }), 10_000),
        }),
        (o) =>
          o.allow.length === 0 && o.ask === undefined
            ? "onDemand needs allow (names and *.domain patterns) or ask (a URL that says yes): otherwise any client could make lintel order certificates"
            : undefined,
      ),
    ),
    /** CA certificates to trust for the directory's HTTPS besides the system's (a private CA). */
    trustCerts: def(list(filePath("a CA certificate file")), []),
    /** How long a replica holds a name's lock without refreshing it (a dead replica's lock expires). */
    lockTtlMs: def(integer({ min: 1000 }), 60_000),
    /** The first wait after a failed order; it doubles per failure up to a day. */
    retryMinMs: def(integer({ min: 100 }), 60_000),
    /** How often each name is read again from storage (renewals by other replicas). */
    checkIntervalMs: def(integer({ min: 1000 }), 600_000),
  });
  return refine(fields, (a) => {
    if (a.storage === undefined) {
      return "storage is required: where the account and certificates are kept, shared by every replica (e.g. {kind: dir, path: /var/lib/lintel/acme})";
    }
    if (a.names.length === 0 && !a.onDemand) return "give names, onDemand, or both";
    const challenges = a.challenges ?? [];
    if (challenges.includes("dns-01") && !a.dnsProvider) {
      return "dns-01 needs a dnsProvider (e.g. {kind: exec, command: /path/to/script})";
    }
    const wildcard = a.names.find((n) => n.startsWith("*."));
    if (wildcard && (!challenges.includes("dns-01") || !a.dnsProvider)) {
      return `${wildcard}: wildcard names need the dns-01 challenge (challenges: [dns-01] and a dnsProvider)`;
    }
    if (a.directory === ACME_DIRECTORIES.zerossl && !a.externalAccountBinding) {
      return "ZeroSSL needs externalAccountBinding (the EAB kid and HMAC key from its dashboard)";
    }
    return undefined;
  });
}

export type AcmeConfig = Infer<ReturnType<typeof acmeBlock>>;
