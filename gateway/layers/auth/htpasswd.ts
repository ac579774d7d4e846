// An htpasswd file of bcrypt entries (`htpasswd -B`): `user:$2y$10$...` per line, blank
// lines and `#` comments allowed. Any other hash format (Apache MD5, SHA-1, crypt, plain
// text) is an error naming its line. The file is looked at again at most every
// `intervalMs`, as requests come (no timer, no watch): when it changed it is read again,
// and a file that no longer parses leaves the last good table in place.

import { readFileSync, statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { Logger } from "../../log.js";
import type { Counter } from "../../telemetry/registry.js";

/** `$2a$`, `$2b$` or `$2y$`, a cost from 04 to 31, then 22 characters of salt and 31 of hash. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** What a hash that is not bcrypt looks like, for the error (the hash itself is not shown). */
function hashKind(hash: string): string {
  if (hash.startsWith("$apr1$")) return "an Apache MD5 ($apr1$) hash";
  if (hash.startsWith("{SHA}")) return "a SHA-1 ({SHA}) hash";
  if (hash.startsWith("$1$")) return "an MD5-crypt ($1$) hash";
  if (hash.startsWith("$5$") || hash.startsWith("$6$")) return "a SHA-crypt hash";
  if (hash.startsWith("$2")) return "a malformed bcrypt hash";
  return "not a bcrypt hash (crypt or plain text)";
}

/** The users of an htpasswd text and their bcrypt hashes; throws naming the first bad line. */
export function parseHtpasswd(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "");
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const at = `${file} line ${i + 1}`;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`${at}: expected user:hash`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1).trim();
    if (!BCRYPT.test(hash)) {
      throw new Error(
        `${at}: user ${JSON.stringify(user)} has ${hashKind(hash)}; only bcrypt ($2y$, $2a$, $2b$) is supported (make one with htpasswd -B)`,
      );
    }
    if (users.has(user)) throw new Error(`${at}: user ${JSON.stringify(user)} is listed twice`);
    users.set(user, hash);
  }
  return users;
}

/** Reads and parses `file` now; throws saying what is wrong. */
export function readHtpasswd(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  return parseHtpasswd(text, file);
}

export interface HtpasswdCounters {
  readonly reloads: Counter;
  readonly failures: Counter;
}

/** An htpasswd file's current table, read again when the file changes. */
export class HtpasswdFile {
  users: ReadonlyMap<string, string>;
  /** The stat of the version of the file last read (or found bad, or missing). */
  private stamp = "";
  private nextCheck: number;
  private checking = false;

  constructor(
    readonly file: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
    private readonly counters: HtpasswdCounters,
    /** Called once a changed file has been read: the old verifications no longer hold. */
    private readonly onReload: () => void,
    now: number,
  ) {
    // Stat first: a change made while it is read is seen by the next check.
    try {
      this.stamp = stampOf(statSync(file));
    } catch {
      // readHtpasswd says why
    }
    this.users = readHtpasswd(file);
    this.nextCheck = now + intervalMs;
  }

  /** On each request: looks at the file once `intervalMs` has passed since the last look. */
  check(now: number): void {
    if (now < this.nextCheck || this.checking) return;
    this.nextCheck = now + this.intervalMs;
    this.checking = true;
    void this.reload().finally(() => {
      this.checking = false;
    });
  }

  private async reload(): Promise<void> {
    let stamp: string;
    try {
      stamp = stampOf(await stat(this.file));
    } catch (e) {
      stamp = `missing:${(e as NodeJS.ErrnoException).code}`;
    }
    // Each version of the file is read once, and a bad one reported once.
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      const users = parseHtpasswd(await readFile(this.file, "utf8"), this.file);
      this.users = users;
      this.counters.reloads.n++;
      this.onReload();
      this.log.info("htpasswd reloaded", { file: this.file, users: users.size });
    } catch (e) {
      this.counters.failures.n++;
      this.log.warn("htpasswd not reloaded; keeping the last good one", {
        file: this.file,
        error: (e as Error).message,
      });
    }
  }
}

function stampOf(s: { mtimeMs: number; ctimeMs: number; size: number; ino: number }): string {
  return `${s.mtimeMs}:${s.ctimeMs}:${s.size}:${s.ino}`;
}
