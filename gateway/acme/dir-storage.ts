// The `dir` ACME storage: each key is a file under a folder every replica mounts (a
// shared volume, NFS), replaced atomically; each lock is a file under locks/ whose every
// change is claimed first, so that of processes racing to change it exactly one does.

import { createHash, randomBytes, randomUUID } from "node:crypto";
import { type Dirent, statSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { type AcmeLock, type AcmeStorage, checkKey, KEY_SEGMENT } from "../../tls/acme/storage.js";
import type { Clock } from "../clock.js";
import { filePath, object, req } from "../config/schema.js";
import type { Logger } from "../log.js";
import { definePlugin } from "../plugins/registry.js";

/** Keys are private (account and certificate keys): folders 0700, files 0600. */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** The folder under `path` that holds the locks; keys may not start with it. */
const LOCKS = "locks";

/** What a lock file holds. */
interface LockState {
  readonly token: string;
  /** Who holds it, for people reading the file: `host:pid`. */
  readonly holder: string;
  /** Milliseconds since the epoch, by the holder's clock. */
  readonly expiresAt: number;
}

interface LockFile {
  readonly bytes: Buffer;
  readonly mtimeMs: number;
}

const errorCode = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** A key or a folder that is not there (a file where a folder was expected counts too). */
const isAbsent = (e: unknown) => ["ENOENT", "ENOTDIR", "EISDIR"].includes(errorCode(e) ?? "");

/** Writes `file` so that readers see the old content or the new, whole: temp file, fsync, rename. */
async function writeAtomically(file: string, data: Buffer): Promise<void> {
  // `~` is never in a key segment, so a temp file is never taken for a key or a lock.
  const temp = `${file}~${randomBytes(8).toString("hex")}.tmp`;
  try {
    const fh = await open(temp, "wx", FILE_MODE);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, file);
  } catch (e) {
    await unlink(temp).catch(() => {});
    throw e;
  }
}

/** Creates `file` with `data` unless it exists (O_EXCL); false when it exists. */
async function createExclusive(file: string, data: Buffer): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, "wx", FILE_MODE);
  } catch (e) {
    if (errorCode(e) === "EEXIST") return false;
    throw e;
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}

async function readLockFile(file: string): Promise<LockFile | undefined> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, "r");
  } catch (e) {
    if (isAbsent(e)) return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    return { bytes: await fh.readFile(), mtimeMs: st.mtimeMs };
  } finally {
    await fh.close();
  }
}

/** The lock a file holds, or undefined when it is garbled (or still being written). */
function parseLock(bytes: Buffer): LockState | undefined {
  try {
    const v = JSON.parse(bytes.toString("utf8")) as Partial<LockState>;
    if (
      typeof v.token === "string" &&
      typeof v.holder === "string" &&
      typeof v.expiresAt === "number"
    ) {
      return { token: v.token, holder: v.holder, expiresAt: v.expiresAt };
    }
  } catch {
    // garbled
  }
  return undefined;
}

const lockBytes = (state: LockState) => Buffer.from(`${JSON.stringify(state)}\n`);

/** This process, as a lock file names it. */
const HOLDER = `${hostname()}:${process.pid}`;

/*
 * How a lock changes hands safely. A lock is the file locks/<name>.lock. Taking a free
 * lock creates it with O_EXCL, so one of many racing takers wins. Every other change of
 * the file (taking over an expired lock, a refresh, a release) goes from the content C
 * that the changer read to a new content (or none), and first *claims* C: it creates
 * `<name>.lock~<sha256 of C>~<level>` with O_EXCL, then reads the file again and goes on
 * only if it still holds C, exactly, replacing it by rename (or deleting it).
 *  - Two changers of the same C cannot both hold its claim, so one of two takers racing
 *    for a stale lock wins, and a taker and the old holder's refresh or release never both
 *    act: the loser's claim or its second read fails.
 *  - While the claim is held the file stays C: every change of C needs the claim, and a
 *    fresh O_EXCL create needs the file absent. A late claimer (its claim taken after an
 *    earlier change of C finished) finds other content and gives up; C holds a random
 *    token and its expiry, so content equal to C is the very state the claimer judged.
 *  - A claimer that dies (say, killed during a refresh) leaves its claim; once that is
 *    older than the lock's TTL the next changer claims the next level instead, again with
 *    O_EXCL, so one of them wins. A change is a few file operations: a claimer alive but
 *    stalled for a whole TTL is the stalled holder every lease with a TTL assumes away.
 * All of this is create/rename/unlink on names, which NFS (v3 and later) does atomically
 * on the server; no step trusts a cached directory listing.
 */

/**
 * Replaces the lock file's content `from` by `to` (or deletes it when `to` is undefined),
 * unless it changed meanwhile or another process is changing it (see above). True when
 * this call made the change.
 */
async function changeLock(
  clock: Clock,
  file: string,
  from: Buffer,
  to: Buffer | undefined,
  ttlMs: number,
): Promise<boolean> {
  const claims = await claim(clock, file, from, ttlMs);
  if (!claims) return false;
  try {
    const now = await readLockFile(file);
    if (!now?.bytes.equals(from)) return false;
    if (to) await writeAtomically(file, to);
    else await unlink(file);
    return true;
  } finally {
    for (const c of claims) await unlink(c).catch(() => {});
  }
}

/**
 * Claims the change of lock file `file` away from `content`: the claim files to remove
 * once done, or undefined. A claim older than the lock's TTL was left by a process that died.
 */
async function claim(
  clock: Clock,
  file: string,
  content: Buffer,
  ttlMs: number,
): Promise<string[] | undefined> {
  const base = `${file}~${createHash("sha256").update(content).digest("hex").slice(0, 32)}`;
  const claims: string[] = [];
  for (let level = 0; ; level++) {
    const path = `${base}~${level}`;
    claims.push(path);
    if (await createExclusive(path, Buffer.from(`${HOLDER}\n`))) return claims;
    const st = await stat(path).catch((e: unknown) => {
      if (isAbsent(e)) return undefined;
      throw e;
    });
    // Gone: its claimer is done with it. Young: someone is changing the lock right now.
    // Either way this changer stands back; the lock's content decides the next attempt.
    if (!st || st.mtimeMs > clock.now() - ttlMs) return undefined;
  }
}
export class DirStorage implements AcmeStorage {
  readonly description: string;

  constructor(
    private readonly root: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.description = `dir ${root}`;
  }

  async load(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.keyFile(key));
    } catch (e) {
      if (isAbsent(e)) return undefined;
      throw e;
    }
  }

  async store(key: string, value: Buffer): Promise<void> {
    const file = this.keyFile(key);
    await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
    await writeAtomically(file, value);
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.keyFile(key));
    } catch (e) {
      if (!isAbsent(e)) throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    await this.walk(this.keyFile(prefix), prefix, keys);
    return keys;
  }

  async tryLock(name: string, ttlMs: number): Promise<AcmeLock | undefined> {
    if (!KEY_SEGMENT.test(name)) throw new Error(`invalid ACME lock name "${name}"`);
    const file = join(this.root, LOCKS, `${name}.lock`);
    await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
    const token = randomUUID();
    const mine = () => lockBytes({ token, holder: HOLDER, expiresAt: this.clock.now() + ttlMs });
    const handle = new DirLock(this.clock, file, token, ttlMs, mine);
    if (await createExclusive(file, mine())) return handle;

    const current = await readLockFile(file);
    if (!current) return undefined; // released a moment ago; the caller tries again later
    const now = this.clock.now();
    const held = parseLock(current.bytes);
    // A garbled file may be one being written right now: only its age says it was abandoned.
    const live = held ? held.expiresAt > now : current.mtimeMs > now - ttlMs;
    if (live || !(await changeLock(this.clock, file, current.bytes, mine(), ttlMs))) {
      return undefined;
    }
    this.log.info("took over an expired ACME lock", {
      lock: name,
      from: held?.holder ?? "a garbled lock file",
    });
    return handle;
  }

  /** The file of `key` (or of the folder of keys under it). */
  private keyFile(key: string): string {
    checkKey(key);
    if (key === LOCKS || key.startsWith(`${LOCKS}/`)) {
      throw new Error(
        `invalid ACME storage key "${key}": the dir storage keeps its locks under ${LOCKS}/`,
      );
    }
    return join(this.root, ...key.split("/"));
  }

  private async walk(dir: string, prefix: string, into: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isAbsent(e)) return;
      throw e;
    }
    for (const entry of entries) {
      // Temp files (`~`) and anything else that is no key segment are not keys.
      if (!KEY_SEGMENT.test(entry.name)) continue;
      const key = `${prefix}/${entry.name}`;
      if (entry.isDirectory()) await this.walk(join(dir, entry.name), key, into);
      else if (entry.isFile()) into.push(key);
    }
  }
}

class DirLock implements AcmeLock {
  constructor(
    private readonly clock: Clock,
    private readonly file: string,
    private readonly token: string,
    private readonly ttlMs: number,
    /** This holder's lock file content, expiring one TTL from now. */
    private readonly content: () => Buffer,
  ) {}

  async refresh(): Promise<boolean> {
    const current = await this.ours();
    if (!current) return false;
    return changeLock(this.clock, this.file, current, this.content(), this.ttlMs);
  }

  async release(): Promise<void> {
    const current = await this.ours();
    if (current) await changeLock(this.clock, this.file, current, undefined, this.ttlMs);
  }

  /** The lock file's content while it is still this holder's. */
  private async ours(): Promise<Buffer | undefined> {
    const current = await readLockFile(this.file);
    return current && parseLock(current.bytes)?.token === this.token ? current.bytes : undefined;
  }
}

export const dirStorage = definePlugin({
  category: "acmeStorage",
  kind: "dir",
  schema: object({
    /** A folder every replica mounts read-write (created when missing). */
    path: req(filePath("a folder")),
  }),
  validate(config) {
    const st = statSync(config.path, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      return [{ field: "path", message: `${config.path} exists and is not a folder` }];
    }
    return [];
  },
  create(config, ctx) {
    return new DirStorage(config.path, ctx.clock, ctx.log);
  },
});
