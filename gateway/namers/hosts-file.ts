// The hosts file (/etc/hosts), which the system resolver reads before asking DNS and
// c-ares does not. A name listed there answers from the file; `localhost` answers the
// loopback addresses even when the file does not list it. The file is read again when
// it changes (its inode, size or modification time).

import { readFile, stat } from "node:fs/promises";
import { isIP } from "node:net";

export const SYSTEM_HOSTS_FILE = "/etc/hosts";

const LOCALHOST = ["127.0.0.1", "::1"];

export class HostsFile {
  private names = new Map<string, string[]>();
  /** Identifies the version of the file `names` was read from. */
  private version: string | undefined;

  constructor(private readonly path: string = SYSTEM_HOSTS_FILE) {}

  /** The addresses the file lists for `host`, in file order; undefined when it lists none. */
  async lookup(host: string): Promise<readonly string[] | undefined> {
    await this.reloadIfChanged();
    const name = host.toLowerCase().replace(/\.$/, "");
    return this.names.get(name) ?? (name === "localhost" ? LOCALHOST : undefined);
  }

  private async reloadIfChanged(): Promise<void> {
    let version = "missing";
    try {
      const s = await stat(this.path);
      version = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      // no file: no names
    }
    if (version === this.version) return;
    let text = "";
    try {
      text = await readFile(this.path, "utf8");
    } catch {
      // vanished or unreadable since stat: no names
    }
    this.names = parseHosts(text);
    this.version = version;
  }
}

/** `address name [aliases…]` lines; `#` starts a comment; lines not in that form are skipped. */
export function parseHosts(text: string): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const [address, ...hostNames] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (address === undefined || isIP(address) === 0) continue;
    for (const n of hostNames) {
      const key = n.toLowerCase();
      const ips = names.get(key) ?? [];
      if (!ips.includes(address)) ips.push(address);
      names.set(key, ips);
    }
  }
  return names;
}
