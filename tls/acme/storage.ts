// Where ACME state lives so that many lintel replicas share it: the account, each name's
// certificate and key, and the challenge answers any replica may be asked for; plus a
// lock, so that only one replica at a time orders or renews a name. Kinds (dir, redis,
// kubernetes) implement this; tls/ never knows which.

/** A held lock. */
export interface AcmeLock {
  /** Extends the lock's expiry by its TTL again; false when the lock was lost (expired and taken). */
  refresh(): Promise<boolean>;
  /** Releases it, only if this holder still holds it. */
  release(): Promise<void>;
}

export interface AcmeStorage {
  /** What and where it is, for logs and the admin server (no secrets). */
  readonly description: string;
  /** The value at `key`, or undefined when there is none. */
  load(key: string): Promise<Buffer | undefined>;
  /** Writes `value` at `key` so that readers see either the old value or the new one, whole. */
  store(key: string, value: Buffer): Promise<void>;
  /** Removes `key` (no error when it is absent). */
  delete(key: string): Promise<void>;
  /** The keys under `prefix` (a prefix of whole segments, `a/b`), in any order. */
  list(prefix: string): Promise<string[]>;
  /**
   * Tries to take lock `name` for `ttlMs`: a handle, or undefined when another holder has
   * it and it has not expired. A holder that dies loses the lock when its TTL passes.
   */
  tryLock(name: string, ttlMs: number): Promise<AcmeLock | undefined>;
  /** Releases what the storage holds (connections). */
  close?(): Promise<void>;
}

/**
 * Keys are paths of segments separated by `/`; segments are made of `[a-z0-9._-]` (names
 * are lower-cased, and a wildcard's `*` is written `_wildcard_`), so every storage can
 * map them onto file names, Redis keys or Secret names.
 */
export const KEY_SEGMENT = /^[a-z0-9._-]+$/;

/** A domain name as one key segment: `*.example.com` → `_wildcard_.example.com`. */
export function nameSegment(name: string): string {
  return name.toLowerCase().replace(/^\*\./, "_wildcard_.");
}

/** Checks a key before a storage uses it (storages call this; a bad key is a bug). */
export function checkKey(key: string): void {
  const segs = key.split("/");
  if (segs.length === 0 || !segs.every((s) => KEY_SEGMENT.test(s) && s !== "." && s !== "..")) {
    throw new Error(`invalid ACME storage key "${key}"`);
  }
}
