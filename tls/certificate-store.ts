// The live certificates of one TLS listener: loaded from files and folders, checked, and
// reloaded when they change on disk (file-system events plus a periodic check). At
// startup every problem is fatal (nothing half-starts); at reload a bad file is logged
// and the certificate it would have replaced keeps serving.

import { type FSWatcher, readdirSync, readFileSync, statSync, watch } from "node:fs";
import { dirname, join } from "node:path";
import { type CertificateFiles, type LoadedCertificate, loadCertificate } from "./certificate.js";
import { CertificateSet, type LiveCertificates } from "./certificate-set.js";
import { CertificateError, type TlsLog } from "./errors.js";

/** Where a key's passphrase comes from. */
export interface PassphraseSource {
  readonly passphraseFile?: string;
  readonly passphraseEnv?: string;
}

export type CertificateSource =
  | ({ readonly kind: "files" } & Omit<CertificateFiles, "passphrase"> & PassphraseSource)
  | ({ readonly kind: "dir"; readonly dir: string } & PassphraseSource);

export interface CertificateStoreSpec {
  /** The default certificate first, then the others. */
  readonly sources: readonly CertificateSource[];
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
  readonly files: CertificateFiles[] | undefined;
}

const pairsOfSource = ({ source, files }: SourcePairs) =>
  (files ?? []).map((f) => ({ source, files: f }));

export class CertificateStore implements LiveCertificates {
  private entries = new Map<string, Entry>();
  private set: CertificateSet<LoadedCertificate>;
  private readonly listeners = new Set<(set: CertificateSet<LoadedCertificate>) => void>();
  private timer: NodeJS.Timeout | undefined;
  private watchers: FSWatcher[] = [];
  private pending: NodeJS.Timeout | undefined;
  private readonly env: NodeJS.ProcessEnv;

  /** Loads every certificate; throws a CertificateError for the first one at fault. */
  constructor(
    private readonly spec: CertificateStoreSpec,
    private readonly log: TlsLog,
  ) {
    this.env = spec.env ?? process.env;
    const errors: CertificateError[] = [];
    for (const { source, files } of this.expand(errors).flatMap(pairsOfSource)) {
      try {
        const cert = loadCertificate(files);
        for (const w of cert.warnings) log("warn", w, { file: files.certPath });
        this.entries.set(files.certPath, { source, files, signature: signatureOf(files), cert });
      } catch (e) {
        errors.push(
          e instanceof CertificateError
            ? e
            : new CertificateError(files.certPath, (e as Error).message),
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

  onChange(listener: (set: CertificateSet<LoadedCertificate>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts watching the files and folders for changes. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), this.spec.checkIntervalMs ?? 5000);
    this.timer.unref();
    const dirs = new Set<string>();
    for (const s of this.spec.sources) {
      if (s.kind === "dir") dirs.add(s.dir);
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
    this.timer = undefined;
    this.pending = undefined;
    this.watchers = [];
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
    const expanded = this.expand(errors);
    for (const e of errors)
      this.log("error", "certificate reload failed; the previous certificates keep serving", {
        error: e.message,
      });
    // Built in the order of the sources, so the default stays the default.
    const next = new Map<string, Entry>();
    for (const { source, files: found } of expanded) {
      if (!found) {
        // The source could not be read (folder listing, passphrase): keep what it had.
        for (const [path, old] of this.entries) if (old.source === source) next.set(path, old);
        continue;
      }
      for (const files of found) {
        const old = this.entries.get(files.certPath);
        const sig = signatureOf(files);
        if (old && old.signature === sig && old.files.keyPath === files.keyPath) {
          next.set(files.certPath, old);
          continue;
        }
        try {
          const cert = loadCertificate(files);
          for (const w of cert.warnings) this.log("warn", w, { file: files.certPath });
          next.set(files.certPath, { source, files, signature: sig, cert });
          this.log("info", old ? "certificate reloaded" : "certificate added", {
            file: files.certPath,
            names: cert.names.join(","),
            notAfter: cert.notAfter.toISOString(),
          });
        } catch (e) {
          this.log("error", "certificate reload failed; the previous one keeps serving", {
            error: (e as Error).message,
          });
          if (old) next.set(files.certPath, { ...old, signature: sig });
        }
      }
    }
    // A configured pair always comes back from expand(); a pair gone from a folder is removed.
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
  private expand(errors: CertificateError[]): SourcePairs[] {
    return this.spec.sources.map((s, source) => {
      try {
        const passphrase = passphraseOf(s, this.env);
        if (s.kind === "files") {
          const files: CertificateFiles = {
            certPath: s.certPath,
            keyPath: s.keyPath,
            intermediateCertsPath: s.intermediateCertsPath,
            passphrase,
          };
          return { source, files: [files] };
        }
        return { source, files: pairsInDir(s.dir).map((p) => ({ ...p, passphrase })) };
      } catch (e) {
        errors.push(e as CertificateError);
        return { source, files: undefined };
      }
    });
  }

  private build(): CertificateSet<LoadedCertificate> | undefined {
    const certs = [...this.entries.values()].map((e) => e.cert);
    const [first, ...rest] = certs;
    return first ? new CertificateSet(first, rest) : undefined;
  }

  private describe(): string {
    return this.spec.sources.map((s) => (s.kind === "dir" ? s.dir : s.certPath)).join(", ");
  }
}
