// A TLS server's `acme` block (lintel): certificates from an ACME CA for listed names
// (and, with onDemand, for names allowed at their first handshake), kept in a shared
// storage with a lock so that many replicas order each name once.

import { readFileSync } from "node:fs";
import { CHALLENGE_TYPES } from "../../tls/acme/challenges.js";
import { KEY_TYPES } from "../../tls/acme/keys.js";
import type { Registry } from "../plugins/registry.js";
import { hostPattern } from "./egress-schemas.js";
import { pluginSchema } from "./plugin-schema.js";
import {
  DecodeContext,
  def,
  type Field,
  filePath,
  INVALID,
  type Infer,
  integer,
  isPlainObject,
  keyPath,
  list,
  nonEmptyString,
  type ObjectOf,
  type ObjectSchema,
  object,
  oneOf,
  opt,
  refine,
  req,
  type Schema,
  show,
} from "./schema.js";
import { didYouMean } from "./suggest.js";

/** Directory URLs by the names users know them by. */
export const ACME_DIRECTORIES: Readonly<Record<string, string>> = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
  zerossl: "https://acme.zerossl.com/v2/DV90",
};

/** A directory: one of the names above, or an https URL (a test CA such as Pebble speaks https too). */
function directory(): Schema<string> {
  const expected = `an ACME directory URL (https://...) or one of ${Object.keys(ACME_DIRECTORIES).join(", ")}`;
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
      const hint =
        typeof v === "string" && !v.includes(":")
          ? didYouMean(v, Object.keys(ACME_DIRECTORIES))
          : "";
      return cx.report(path, `expected ${expected}, got ${show(v)}${hint}`);
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

/** A mistake found across fields: where (relative to the block: "", "storage", "names[1]"), and what. */
interface Problem {
  readonly at: string;
  readonly message: string;
}

type Fields = Record<string, Field<unknown>>;

/**
 * An object whose fields are also checked together, every problem reported at its own
 * path (not only the first). The checks run even when some fields did not decode: they
 * see the fields that did, and `bad` names those that did not (a check about one of those
 * says nothing more: its own error is enough).
 */
function checkedObject<F extends Fields>(
  schema: ObjectSchema<ObjectOf<F>>,
  check: (v: Partial<ObjectOf<F>>, bad: ReadonlySet<string>) => readonly Problem[],
): ObjectSchema<ObjectOf<F>> {
  return {
    ...schema,
    decode(v, path, cx) {
      const decoded = schema.decode(v, path, cx);
      const whole = decoded !== INVALID;
      const parts = whole
        ? { value: decoded as Partial<ObjectOf<F>>, bad: new Set<string>() }
        : decodeEach(schema.fields, v, path, cx.baseDir);
      if (!parts) return INVALID;
      const problems = check(parts.value as Partial<ObjectOf<F>>, parts.bad);
      for (const p of problems) {
        const at =
          p.at === "" ? path : p.at.startsWith("[") ? `${path}${p.at}` : keyPath(path, p.at);
        cx.report(at, p.message);
      }
      return whole && problems.length === 0 ? decoded : INVALID;
    },
  };
}

/** Each field decoded on its own (issues already reported by the object are not repeated). */
function decodeEach(
  fields: Fields,
  v: unknown,
  path: string,
  baseDir: string,
): { value: Record<string, unknown>; bad: Set<string> } | undefined {
  if (v === null || v === undefined) v = {};
  if (!isPlainObject(v)) return undefined;
  const quiet = new DecodeContext(baseDir);
  const value: Record<string, unknown> = {};
  const bad = new Set<string>();
  for (const [k, f] of Object.entries(fields)) {
    const raw = v[k] ?? (f.presence === "default" ? f.fallback : undefined);
    if (raw === undefined || raw === null) {
      if (f.presence === "required") bad.add(k);
      continue;
    }
    const d = f.schema.decode(raw, keyPath(path, k), quiet);
    if (d === INVALID) bad.add(k);
    else value[k] = d;
  }
  return { value, bad };
}

/**
 * External Account Binding: the key id, and the HMAC key from an environment variable or
 * a file (never the config), both checked here so that `lintel check` finds a missing one.
 */
function externalAccountBinding() {
  return checkedObject(
    object({
      kid: req(nonEmptyString("a key id")),
      hmacKeyEnv: opt(nonEmptyString("an environment variable name")),
      hmacKeyFile: opt(filePath("a file holding the HMAC key")),
    }),
    (e, bad) => {
      if (bad.has("hmacKeyEnv") || bad.has("hmacKeyFile")) return [];
      if ((e.hmacKeyEnv === undefined) === (e.hmacKeyFile === undefined)) {
        return [
          {
            at: "",
            message:
              "give the HMAC key in hmacKeyEnv or hmacKeyFile (one of them), not in the config",
          },
        ];
      }
      if (e.hmacKeyEnv !== undefined) {
        const value = process.env[e.hmacKeyEnv];
        if (value === undefined)
          return [
            { at: "hmacKeyEnv", message: `the environment variable ${e.hmacKeyEnv} is not set` },
          ];
        if (value.trim() === "")
          return [
            { at: "hmacKeyEnv", message: `the environment variable ${e.hmacKeyEnv} is empty` },
          ];
        return [];
      }
      let text: string;
      try {
        text = readFileSync(e.hmacKeyFile!, "utf8");
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return [
          {
            at: "hmacKeyFile",
            message: `cannot read ${e.hmacKeyFile} (${code === "ENOENT" ? "no such file" : code})`,
          },
        ];
      }
      return text.trim() === ""
        ? [{ at: "hmacKeyFile", message: `${e.hmacKeyFile} is empty` }]
        : [];
    },
  );
}

export function acmeBlock(registry: Registry) {
  const fields = object({
    /** The CA: letsencrypt (default), letsencrypt-staging, zerossl, or a directory URL. */
    directory: def(directory(), "letsencrypt"),
    /** The account's contact (expiry mail from the CA). */
    email: opt(email()),
    /** External Account Binding, for CAs that need it (ZeroSSL, some private CAs). */
    externalAccountBinding: opt(externalAccountBinding()),
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
  return checkedObject(fields, (a, bad) => {
    const problems: Problem[] = [];
    if (a.storage === undefined && !bad.has("storage")) {
      problems.push({
        at: "storage",
        message:
          "missing: where the account and certificates are kept, shared by every replica (e.g. {kind: dir, path: /var/lib/lintel/acme})",
      });
    }
    if (!bad.has("names") && !bad.has("onDemand") && a.names?.length === 0 && !a.onDemand) {
      problems.push({ at: "", message: "give names, onDemand, or both" });
    }
    const provider = !bad.has("dnsProvider");
    const challengesKnown = !bad.has("challenges");
    const dns01 = challengesKnown ? (a.challenges?.indexOf("dns-01") ?? -1) : -1;
    if (provider && dns01 >= 0 && !a.dnsProvider) {
      problems.push({
        at: `challenges[${dns01}]`,
        message: "dns-01 needs a dnsProvider (e.g. {kind: exec, command: /path/to/script})",
      });
    }
    // Without `challenges`, dns-01 is among the defaults when a dnsProvider is set.
    if (provider && challengesKnown) {
      const why = !a.dnsProvider
        ? "a dnsProvider (and dns-01 among challenges)"
        : a.challenges !== undefined && dns01 < 0
          ? "dns-01 among challenges"
          : undefined;
      if (why) {
        for (const [i, n] of (a.names ?? []).entries()) {
          if (!n.startsWith("*.")) continue;
          problems.push({
            at: `names[${i}]`,
            message: `${n}: wildcard names need the dns-01 challenge: ${why}`,
          });
        }
      }
    }
    if (
      !bad.has("directory") &&
      !bad.has("externalAccountBinding") &&
      a.directory === ACME_DIRECTORIES.zerossl &&
      !a.externalAccountBinding
    ) {
      problems.push({
        at: "externalAccountBinding",
        message: `missing: ZeroSSL (${ACME_DIRECTORIES.zerossl}) needs externalAccountBinding (the EAB kid and HMAC key from its dashboard)`,
      });
    }
    return problems;
  });
}

export type AcmeConfig = Infer<ReturnType<typeof acmeBlock>>;
