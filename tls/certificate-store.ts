// The live certificates of one TLS listener: loaded from files, folders and live sources
// (Kubernetes Secrets), checked, and reloaded when they change (file-system events plus a
// periodic check; a live source says when). At startup every problem is fatal (nothing
// half-starts); at reload a bad certificate is logged and the one it would have replaced
// keeps serving.

import { createHash } from "node:crypto";
import { type FSWatcher, readdirSync, readFileSync, statSync, watch } from "node:fs";
import { dirname, join } from "node:path";
import {
  type CertificateFiles,
  checkCertificate,
  type LoadedCertificate,
  loadCertificate,
} from "./certificate.js";
import { CertificateSet, type LiveCertificates } from "./certificate-set.js";
import { CertificateError, type TlsLog } from "./errors.js";
import type { LivePemSource, PemPair } from "./live-source.js";

/** Where a key's passphrase comes from. */
export interface PassphraseSource {
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
}

export type CertificateSource =
  | ({ readonly kind: "files" } & Omit<CertificateFiles, "passphrase"> & PassphraseSource)
  | ({ readonly kind: "dir"; readonly dir: string } & PassphraseSource)
  | { readonly kind: "live"; readonly source: LivePemSource };

export interface CertificateStoreSpec {
  /** The default certificate first, then the others. */
  readonly sources: readonly CertificateSource[];
  /**
   * The default certificate when the sources do not fix one (the first source is a live
   * one whose content comes and goes): served to clients whose name matches nothing.
   */
  readonly fallbackDefault?: PemPair;
  /** How often files are checked besides file-system events. */
  readonly checkIntervalMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

function passphraseOf(src: PassphraseSource, env: NodeJS.ProcessEnv): string | undefined {
  if (src.passphraseFile) {
    try {
      return readFileSync(src.passphraseFile, "utf8").replace(/\r?\n$/, "");
    } catch (e) {
      throw new CertificateError(
        src.passphraseFile,
        `cannot read the passphrase file (${(e as NodeJS.ErrnoException).code})`,
      );
    }
  }
  if (src.passphraseEnv) {
    const v = env[src.passphraseEnv];
    if (v === undefined)
      throw new CertificateError(
        `$${src.passphraseEnv}`,
        "the passphrase environment variable is not set",
      );
    return v;
  }
  return undefined;
}

const CERT_EXT = /\.(crt|pem|cert)$/;

/** The certificate/key pairs in a folder: X.crt|X.pem|X.cert with X.key, or certbot's fullchain.pem + privkey.pem. */
export function pairsInDir(dir: string): Omit<CertificateFiles, "passphrase">[] {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CertificateError(
      dir,
      code === "ENOENT" ? "no such folder" : `cannot list it (${code})`,
    );
  }
  const out: Omit<CertificateFiles, "passphrase">[] = [];
  const certbot = (d: string) => {
    const full = join(d, "fullchain.pem");
    const key = join(d, "privkey.pem");
    if (
      statSync(full, { throwIfNoEntry: false })?.isFile() &&
      statSync(key, { throwIfNoEntry: false })?.isFile()
    ) {
      out.push({ certPath: full, keyPath: key });
      return true;
    }
    return false;
  };
  if (certbot(dir)) return out;
  for (const name of entries) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      certbot(path);
      continue;
    }
    if (!st?.isFile() || !CERT_EXT.test(name) || /key\.pem$/.test(name)) continue;
    const keyPath = join(dir, name.replace(CERT_EXT, ".key"));
    if (statSync(keyPath, { throwIfNoEntry: false })?.isFile())
      out.push({ certPath: path, keyPath });
  }
  return out;
}

interface Entry {
  /** Index of the source (in the spec) the pair came from. */
  readonly source: number;
  readonly files: CertificateFiles;
  signature: string;
  cert: LoadedCertificate;
}

/** One certificate a source offers now: files to read, or text a live source holds. */
interface Offered {
  readonly source: number;
  readonly files: CertificateFiles;
  /** The text of a live source's pair (files are read otherwise). */
  readonly pem?: PemPair;
  /** A live origin with a problem now: keep serving what it served. */
  readonly keep?: boolean;
}

/** How a live origin's texts are named in messages: `Secret ns/name (tls.crt)`. */
function liveFiles(origin: string): CertificateFiles {
  return { certPath: `${origin} (tls.crt)`, keyPath: `${origin} (tls.key)` };
}

function pemSignature(p: PemPair): string {
  return createHash("sha256").update(p.certPem).update("\0").update(p.keyPem).digest("hex");
}

function load(o: Offered): LoadedCertificate {
  if (!o.pem) return loadCertificate(o.files);
  return checkCertificate({
    files: o.files,
    certText: o.pem.certPem,
    chainText: undefined,
    keyText: o.pem.keyPem,
  });
}

function signatureOf(files: Omit<CertificateFiles, "passphrase">): string {
  const parts = [files.certPath, files.keyPath, files.intermediateCertsPath].map((f) => {
    if (!f) return "";
    const st = statSync(f, { throwIfNoEntry: false });
    return st ? `${st.mtimeMs}:${st.size}:${st.ino}` : "missing";
  });
  return parts.join("|");
}

interface SourcePairs {
  readonly source: number;
  /** Undefined when the source could not be read now. */
  readonly offered: Offered[] | undefined;
}

export class CertificateStore implements LiveCertificates {
  private entries = new Map<string, Entry>();
  private set: CertificateSet<LoadedCertificate>;
  private readonly listeners = new Set<(set: CertificateSet<LoadedCertificate>) => void>();
  private timer: NodeJS.Timeout | undefined;
  private watchers: FSWatcher[] = [];
  private liveStops: (() => void)[] = [];
  private pending: NodeJS.Timeout | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly fallback: LoadedCertificate | undefined;
  /** The last problem logged per live origin, so a lasting one is logged once. */
  private readonly problems = new Map<string, string>();

  /** Loads every certificate; throws a CertificateError for the first one at fault. */
  constructor(
    private readonly spec: CertificateStoreSpec,
    private readonly log: TlsLog,
  ) {
    this.env = spec.env ?? process.env;
    this.fallback =
      spec.fallbackDefault &&
      load({
        source: -1,
        files: liveFiles("the generated default certificate"),
        pem: spec.fallbackDefault,
      });
    const errors: CertificateError[] = [];
    const offered = this.expand(errors, true).flatMap((p) => p.offered ?? []);
    for (const o of offered.filter((x) => !x.keep)) {
      try {
        const cert = load(o);
        for (const w of cert.warnings) log("warn", w, { file: o.files.certPath });
        this.entries.set(o.files.certPath, {
          source: o.source,
          files: o.files,
          signature: signatureOfOffered(o),
          cert,
        });
      } catch (e) {
        errors.push(
          e instanceof CertificateError
            ? e
            : new CertificateError(o.files.certPath, (e as Error).message),
        );
      }
    }
    if (errors.length > 0) throw errors[0];
    const set = this.build();
    if (!set) throw new CertificateError(this.describe(), "no certificate found");
    this.set = set;
  }

  get current(): CertificateSet<LoadedCertificate> {
    return this.set;
  }

  /** Every certificate served, with where it comes from (a file, a folder, a Secret, ACME). */
  certificates(): { readonly cert: LoadedCertificate; readonly source: string }[] {
    const out = [...this.entries.values()].map((e) => ({ cert: e.cert, source: this.sourceOf(e) }));
    if (this.fallback) out.unshift({ cert: this.fallback, source: "generated default" });
    return out;
  }

  private sourceOf(e: Entry): string {
    const s = this.spec.sources[e.source];
    if (s?.kind === "dir") return `folder ${s.dir}`;
    if (s?.kind === "files") return `file ${e.files.certPath}`;
    // A live origin's texts are named `<origin> (tls.crt)`.
    return e.files.certPath.replace(/ \(tls\.crt\)$/, "");
  }

  onChange(listener: (set: CertificateSet<LoadedCertificate>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts watching the files, folders and live sources for changes. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), this.spec.checkIntervalMs ?? 5000);
    this.timer.unref();
    const dirs = new Set<string>();
    for (const s of this.spec.sources) {
      if (s.kind === "live") this.liveStops.push(s.source.onChange(() => this.check()));
      else if (s.kind === "dir") dirs.add(s.dir);
      else
        for (const f of [s.certPath, s.keyPath, s.intermediateCertsPath])
          if (f) dirs.add(dirname(f));
    }
    for (const d of dirs) {
      try {
        const w = watch(d, { persistent: false, recursive: true }, () => this.soon());
        w.on("error", () => w.close());
        this.watchers.push(w);
      } catch {
        // The periodic check still finds changes.
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    for (const w of this.watchers) w.close();
    for (const stop of this.liveStops) stop();
    for (const s of this.spec.sources) if (s.kind === "live") s.source.close?.();
    this.timer = undefined;
    this.pending = undefined;
    this.watchers = [];
    this.liveStops = [];
  }

  // Writers replace certificate and key in separate steps: wait for the burst to end.
  private soon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.check();
    }, 200);
  }

  /** Looks for changes now; returns true when the served certificates changed. */
  check(): boolean {
    const errors: CertificateError[] = [];
    const expanded = this.expand(errors, false);
    for (const e of errors)
      this.log("error", "certificate reload failed; the previous certificates keep serving", {
        error: e.message,
      });
    // Built in the order of the sources, so the default stays the default.
    const next = new Map<string, Entry>();
    for (const { source, offered } of expanded) {
      if (!offered) {
        // The source could not be read (folder listing, passphrase): keep what it had.
        for (const [path, old] of this.entries) if (old.source === source) next.set(path, old);
        continue;
      }
      for (const o of offered) {
        const key = o.files.certPath;
        const old = this.entries.get(key);
        if (o.keep) {
          if (old) next.set(key, old);
          continue;
        }
        const sig = signatureOfOffered(o);
        if (old && old.signature === sig && old.files.keyPath === o.files.keyPath) {
          next.set(key, old);
          continue;
        }
        try {
          const cert = load(o);
          for (const w of cert.warnings) this.log("warn", w, { file: key });
          next.set(key, { source, files: o.files, signature: sig, cert });
          this.log("info", old ? "certificate reloaded" : "certificate added", {
            file: key,
            names: cert.names.join(","),
            notAfter: cert.notAfter.toISOString(),
          });
        } catch (e) {
          this.log("error", "certificate reload failed; the previous one keeps serving", {
            error: (e as Error).message,
          });
          if (old) next.set(key, { ...old, signature: sig });
        }
      }
    }
    // A configured pair always comes back from expand(); a pair gone from a folder or a
    // live source is removed.
    for (const path of this.entries.keys()) {
      if (!next.has(path)) this.log("info", "certificate removed", { file: path });
    }
    this.entries = next;
    const set = this.build();
    if (!set || set.fingerprint === this.set.fingerprint) return false;
    this.set = set;
    for (const l of this.listeners) l(set);
    return true;
  }

  /** Each source's pairs, or undefined for a source that could not be read (errors says why). */
  private expand(errors: CertificateError[], starting: boolean): SourcePairs[] {
    return this.spec.sources.map((s, source) => {
      try {
        if (s.kind === "live")
          return { source, offered: this.liveOffers(source, s.source, starting, errors) };
        const passphrase = passphraseOf(s, this.env);
        if (s.kind === "files") {
          const files: CertificateFiles = {
            certPath: s.certPath,
            keyPath: s.keyPath,
            intermediateCertsPath: s.intermediateCertsPath,
            passphrase,
          };
          return { source, offered: [{ source, files }] };
        }
        return {
          source,
          offered: pairsInDir(s.dir).map((p) => ({ source, files: { ...p, passphrase } })),
        };
      } catch (e) {
        errors.push(e as CertificateError);
        return { source, offered: undefined };
      }
    });
  }

  /**
   * A live source's pairs. An origin with a problem (a Secret of the wrong type, say)
   * keeps what it served; at startup a required source's problem is an error.
   */
  private liveOffers(
    source: number,
    live: LivePemSource,
    starting: boolean,
    errors: CertificateError[],
  ): Offered[] {
    const out: Offered[] = [];
    for (const [origin, value] of live.current()) {
      const files = liveFiles(origin);
      if (typeof value !== "string") {
        this.problems.delete(origin);
        out.push({ source, files, pem: value });
        continue;
      }
      if (starting && live.required) {
        errors.push(new CertificateError(origin, value));
        continue;
      }
      if (this.problems.get(origin) !== value) {
        this.problems.set(origin, value);
        this.log("error", "certificate source has a problem; what it served keeps serving", {
          error: `${origin}: ${value}`,
        });
      }
      const old = this.entries.get(files.certPath);
      if (old)
        out.push({ source, files, pem: { certPem: old.cert.chainPem, keyPem: old.cert.keyPem } });
    }
    return out;
  }

  private build(): CertificateSet<LoadedCertificate> | undefined {
    const certs = [...this.entries.values()].map((e) => e.cert);
    if (this.fallback) return new CertificateSet(this.fallback, certs);
    const [first, ...rest] = certs;
    return first ? new CertificateSet(first, rest) : undefined;
  }

  private describe(): string {
    return this.spec.sources
      .map((s) =>
        s.kind === "dir" ? s.dir : s.kind === "live" ? s.source.description : s.certPath,
      )
      .join(", ");
  }
}

function signatureOfOffered(o: Offered): string {
  return o.pem ? pemSignature(o.pem) : signatureOf(o.files);
}
