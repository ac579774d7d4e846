// The live certificates of one TLS listener: loaded from files, folders and live sources
// (Kubernetes Secrets), checked, and reloaded when they change (file-system events plus a
// periodic check; a live source says when). At startup every problem is fatal (nothing
// half-starts); at reload a bad certificate is logged and the one it would have replaced
// keeps serving. A folder's certificates are indexed at startup without their keys (see
// lazy-certificate.ts), and a file-system event reloads only the pair it names.

import { createHash } from "node:crypto";
import { type Dirent, type FSWatcher, readdirSync, readFileSync, statSync, watch } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  type CertificateFiles,
  checkCertificate,
  type LoadedCertificate,
  loadCertificate,
} from "./certificate.js";
import { CertificateSet, type LiveCertificates } from "./certificate-set.js";
import { CertificateError, type TlsLog } from "./errors.js";
import {
  type CertificateCounters,
  indexCertificate,
  LazyCertificate,
  newCounters,
} from "./lazy-certificate.js";
import type { LivePemSource, PemPair } from "./live-source.js";

/** A certificate as the store keeps it: loaded and checked, or indexed (a folder's). */
export type StoredCertificate = LoadedCertificate | LazyCertificate;

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

function hasSubfolders(d: string): boolean {
  try {
    return readdirSync(d, { withFileTypes: true }).some(
      (e) => e.isDirectory() && !e.name.startsWith(".."), // not a mounted Secret's `..data`
    );
  } catch {
    return false;
  }
}

/** certbot's layout: a folder holding fullchain.pem and privkey.pem. */
function isCertbotFolder(d: string): boolean {
  return (
    statSync(join(d, "fullchain.pem"), { throwIfNoEntry: false })?.isFile() === true &&
    statSync(join(d, "privkey.pem"), { throwIfNoEntry: false })?.isFile() === true
  );
}

/** The certificate/key pairs in a folder: X.crt|X.pem|X.cert with X.key, or certbot's fullchain.pem + privkey.pem. */
export function pairsInDir(dir: string): Omit<CertificateFiles, "passphrase">[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CertificateError(
      dir,
      code === "ENOENT" ? "no such folder" : `cannot list it (${code})`,
    );
  }
  const out: Omit<CertificateFiles, "passphrase">[] = [];
  const certbot = (d: string) => {
    if (!isCertbotFolder(d)) return false;
    out.push({ certPath: join(d, "fullchain.pem"), keyPath: join(d, "privkey.pem") });
    return true;
  };
  if (certbot(dir)) return out;
  // A listing's types spare a stat per file (10,000 pairs are 20,000 files); a symbolic
  // link (a mounted ConfigMap or Secret) is followed.
  const kind = (e: Dirent) => {
    if (!e.isSymbolicLink()) return e.isFile() ? "file" : e.isDirectory() ? "dir" : "other";
    const st = statSync(join(dir, e.name), { throwIfNoEntry: false });
    return st?.isFile() ? "file" : st?.isDirectory() ? "dir" : "other";
  };
  const kinds = new Map(entries.map((e) => [e.name, kind(e)] as const));
  for (const [name, k] of kinds) {
    if (k === "dir") {
      certbot(join(dir, name));
      continue;
    }
    if (k !== "file" || !CERT_EXT.test(name) || /key\.pem$/.test(name)) continue;
    const keyName = name.replace(CERT_EXT, ".key");
    if (kinds.get(keyName) === "file")
      out.push({ certPath: join(dir, name), keyPath: join(dir, keyName) });
  }
  return out;
}

interface Entry {
  /** Index of the source (in the spec) the pair came from. */
  readonly source: number;
  readonly files: CertificateFiles;
  signature: string;
  cert: StoredCertificate;
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

/** A file-system event that names no file: look at everything. */
const EVERYTHING = "";
/** The periodic look at everything may take at most 1/SCAN_SHARE of the time (2%). */
const SCAN_SHARE = 50;

export class CertificateStore implements LiveCertificates {
  private entries = new Map<string, Entry>();
  private set: CertificateSet<StoredCertificate>;
  private readonly listeners = new Set<(set: CertificateSet<StoredCertificate>) => void>();
  readonly counters: CertificateCounters = newCounters();
  /** Paths file-system events named since the last look. */
  private dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** How long the last look at everything took. */
  private lastScanMs = 0;
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
        const signature = signatureOfOffered(o);
        // The default certificate is checked in full now: it must serve whatever happens.
        const lazy = this.isFolders(o) && (this.fallback !== undefined || this.entries.size > 0);
        const cert = lazy ? indexCertificate(o.files, this.hooks) : load(o);
        for (const w of cert.warnings) log("warn", w, { file: o.files.certPath });
        this.entries.set(o.files.certPath, { source: o.source, files: o.files, signature, cert });
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

  get current(): CertificateSet<StoredCertificate> {
    return this.set;
  }

  /** The files `files` sources name (a change to one is looked at with everything). */
  private get configuredFiles(): Set<string> {
    const out = new Set<string>();
    for (const s of this.spec.sources)
      if (s.kind === "files")
        for (const f of [s.certPath, s.keyPath, s.intermediateCertsPath]) if (f) out.add(join(f));
    return out;
  }

  private get hooks() {
    return { counters: this.counters, log: this.log };
  }

  private isFolders(o: Offered): boolean {
    return this.spec.sources[o.source]?.kind === "dir";
  }

  /**
   * Loads and checks a pair that appeared or changed. A folder's keeps only its texts and
   * summary (not the parsed key and certificates), so memory stays flat however often
   * certificates are renewed.
   */
  private reload(o: Offered): StoredCertificate {
    const cert = load(o);
    this.counters.loaded++;
    if (!this.isFolders(o)) return cert;
    const { issuer, validFrom, serialNumber } = cert.leaf;
    return new LazyCertificate(
      cert.names,
      cert.notAfter,
      { issuer, validFrom, serialNumber },
      cert.fingerprint,
      cert,
      this.hooks,
    );
  }

  /** Every certificate served, with where it comes from (a file, a folder, a Secret, ACME). */
  certificates(): { readonly cert: StoredCertificate; readonly source: string }[] {
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

  onChange(listener: (set: CertificateSet<StoredCertificate>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts watching the files, folders and live sources for changes. */
  start(): void {
    if (this.timer) return;
    this.schedule();
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
        // Node 20 watches a folder recursively by watching each file in it and walking it
        // again on every event: for a folder of 10,000 pairs that is what a change cost.
        // Only folders with subfolders (certbot's layout) need it.
        const w = watch(d, { persistent: false, recursive: hasSubfolders(d) }, (_event, file) => {
          this.dirty.add(file ? join(d, file.toString()) : EVERYTHING);
          this.soon();
        });
        w.on("error", () => w.close());
        this.watchers.push(w);
      } catch {
        // The periodic check still finds changes.
      }
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.pending) clearTimeout(this.pending);
    for (const w of this.watchers) w.close();
    for (const stop of this.liveStops) stop();
    for (const s of this.spec.sources) if (s.kind === "live") s.source.close?.();
    this.timer = undefined;
    this.pending = undefined;
    this.watchers = [];
    this.liveStops = [];
  }

  /**
   * The next look at everything: every checkIntervalMs, or less often when a look takes
   * long (tens of thousands of files: about 125 ms for 10,000 pairs here), so that it
   * takes at most 1/SCAN_SHARE of the time; file-system events still apply at once.
   */
  private schedule(): void {
    const every = Math.max(this.spec.checkIntervalMs ?? 5000, this.lastScanMs * SCAN_SHARE);
    this.timer = setTimeout(() => {
      const t0 = performance.now();
      this.check();
      this.lastScanMs = performance.now() - t0;
      if (this.timer) this.schedule();
    }, every);
    this.timer.unref();
  }

  // Writers replace certificate and key in separate steps: wait for the burst to end.
  private soon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      const paths = this.dirty;
      this.dirty = new Set();
      if (!this.checkPaths(paths)) this.check();
    }, 200);
  }

  /**
   * Reloads only the folder pairs named by `paths` (X.crt, X.key, ...): the work of one
   * certificate per change, however many the folder holds. Returns false, having done
   * nothing, when a path is not one it can place (a configured file, a subfolder, a
   * certbot layout, an event without a name): check() then looks at everything.
   */
  checkPaths(paths: ReadonlySet<string>): boolean {
    const pairs = new Map<string, { source: number; keyPath: string }>();
    for (const path of paths) {
      const pair = this.folderPairOf(path);
      if (!pair) return false;
      for (const [certPath, p] of pair) pairs.set(certPath, p);
    }
    let changed = false;
    for (const [certPath, { source, keyPath }] of pairs) {
      const old = this.entries.get(certPath);
      const present =
        statSync(certPath, { throwIfNoEntry: false })?.isFile() &&
        statSync(keyPath, { throwIfNoEntry: false })?.isFile();
      if (!present) {
        if (!old) continue;
        this.entries.delete(certPath);
        this.log("info", "certificate removed", { file: certPath });
        changed = true;
        continue;
      }
      let passphrase: string | undefined;
      try {
        passphrase = passphraseOf(this.spec.sources[source] as PassphraseSource, this.env);
      } catch (e) {
        this.log("error", "certificate reload failed; the previous one keeps serving", {
          error: (e as Error).message,
        });
        continue;
      }
      const next = this.updated({ source, files: { certPath, keyPath, passphrase } }, old);
      if (next === undefined || next === old) continue;
      // A failed reload keeps the old certificate under the new signature (not retried).
      this.entries.set(certPath, next);
      if (next.cert !== old?.cert) changed = true;
    }
    if (changed) this.publish(true);
    return true;
  }

  /**
   * The pairs a changed path may belong to in a folder source (certificate path → source
   * and key path), or undefined when the path is somewhere else.
   */
  private folderPairOf(path: string): Map<string, { source: number; keyPath: string }> | undefined {
    if (path === EVERYTHING || this.configuredFiles.has(path)) return undefined;
    const dir = dirname(path);
    const name = basename(path);
    const source = this.spec.sources.findIndex((s) => s.kind === "dir" && join(s.dir, ".") === dir);
    if (source < 0 || name === "fullchain.pem" || name === "privkey.pem") return undefined;
    if (isCertbotFolder(dir) || statSync(path, { throwIfNoEntry: false })?.isDirectory())
      return undefined;
    const stem = name.replace(/\.(crt|pem|cert|key)$/, "");
    // Not a pair's file: a symbolic link swapped (a mounted Secret's `..data`), a temporary file.
    if (stem === name || /key\.pem$/.test(name)) return undefined;
    const out = new Map<string, { source: number; keyPath: string }>();
    const keyPath = join(dir, `${stem}.key`);
    const certs = name.endsWith(".key")
      ? ["crt", "pem", "cert"].map((ext) => join(dir, `${stem}.${ext}`))
      : [path];
    for (const certPath of certs) {
      if (this.entries.has(certPath) || statSync(certPath, { throwIfNoEntry: false })?.isFile())
        out.set(certPath, { source, keyPath });
    }
    return out;
  }

  /**
   * The entry for an offered pair: the old one when unchanged or when the new one fails
   * (undefined for a new pair that fails).
   */
  private updated(o: Offered, old: Entry | undefined): Entry | undefined {
    const key = o.files.certPath;
    const signature = signatureOfOffered(o);
    if (old && old.signature === signature && old.files.keyPath === o.files.keyPath) return old;
    try {
      const cert = this.reload(o);
      for (const w of cert.warnings) this.log("warn", w, { file: key });
      this.log("info", old ? "certificate reloaded" : "certificate added", {
        file: key,
        names: cert.names.join(","),
        notAfter: cert.notAfter.toISOString(),
      });
      return { source: o.source, files: o.files, signature, cert };
    } catch (e) {
      this.log("error", "certificate reload failed; the previous one keeps serving", {
        error: (e as Error).message,
      });
      return old && { ...old, signature };
    }
  }

  /**
   * Builds the set from the entries and tells the listeners, when it has changed (`known`:
   * the caller knows it has, so the certificates' fingerprints need not be compared).
   */
  private publish(known = false): boolean {
    const set = this.build();
    if (!set || (!known && set.fingerprint === this.set.fingerprint)) return false;
    this.set = set;
    for (const l of this.listeners) l(set);
    return true;
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
        const entry = this.updated(o, old);
        if (entry) next.set(key, entry);
      }
    }
    // A configured pair always comes back from expand(); a pair gone from a folder or a
    // live source is removed.
    for (const path of this.entries.keys()) {
      if (!next.has(path)) this.log("info", "certificate removed", { file: path });
    }
    this.entries = next;
    return this.publish();
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

  private build(): CertificateSet<StoredCertificate> | undefined {
    // In the order of the sources (a pair added to a folder comes after the folder's others).
    const certs = [...this.entries.values()].sort((a, b) => a.source - b.source).map((e) => e.cert);
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
