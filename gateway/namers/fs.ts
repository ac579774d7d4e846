// io.l5d.fs: service discovery from a directory. /#/io.l5d.fs/<name>/rest binds to the
// file rootDir/<name> (subdirectories nest: /#/io.l5d.fs/<dir>/<name>). The directory
// is watched (fs events plus a periodic check): files appearing or going away change
// the binding, edits change the addresses. A missing file is neg.

import { type FSWatcher, readFileSync, statSync, watch } from "node:fs";
import { join } from "node:path";
import { def, filePath, integer, object, req } from "../config/schema.js";
import type { Logger } from "../log.js";
import {
  type Activity,
  type Addr,
  addrBound,
  addrEquals,
  addrFailed,
  boundName,
  Cell,
  leaf,
  type Name,
  type NameTree,
  Neg,
  ok,
  Path,
  type State,
  VarCache,
} from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import type { NamerInstance } from "../plugins/types.js";
import { parseAddressFile } from "./address-file.js";

/** One neg state for every missing name, so a periodic check that finds nothing new is no event. */
const NEG_STATE: State<NameTree<Name>> = ok(Neg);

/** Address files larger than this are refused (they are endpoint lists, not data). */
const MAX_FILE_BYTES = 1 << 20;

interface Lookup {
  readonly path: Path;
  readonly cell: Cell<State<NameTree<Name>>>;
  /** The file and residual currently bound, to keep the same bound name across checks. */
  boundKey: string | undefined;
}

interface WatchedFile {
  readonly file: string;
  readonly cell: Cell<Addr>;
  content: string | undefined;
}

export class FsNamer implements NamerInstance {
  private readonly lookups = new VarCache<string, State<NameTree<Name>>>();
  private readonly activeLookups = new Set<Lookup>();
  private readonly files = new Map<string, WatchedFile>();
  private readonly activeFiles = new Set<WatchedFile>();
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private pendingCheck: NodeJS.Timeout | undefined;

  constructor(
    private readonly rootDir: string,
    /** The bound-id prefix, e.g. /#/io.l5d.fs. */
    private readonly idPrefix: Path,
    private readonly log: Logger,
    private readonly checkIntervalMs = 1000,
  ) {}

  lookup(path: Path): Activity<NameTree<Name>> {
    return this.lookups.get(path.show, () => {
      const entry: Lookup = { path, cell: undefined as never, boundKey: undefined };
      const initial = this.evaluate(entry);
      (entry as { cell: Cell<State<NameTree<Name>>> }).cell = new Cell(initial, () => {
        this.activeLookups.add(entry);
        this.refreshLookup(entry);
        this.ensureRunning();
        return () => {
          this.activeLookups.delete(entry);
          this.stopIfIdle();
        };
      });
      return entry.cell;
    });
  }

  close(): void {
    this.activeLookups.clear();
    this.activeFiles.clear();
    this.stopIfIdle();
  }

  /** What `entry.path` binds to right now. Sets entry.boundKey. */
  private evaluate(entry: Lookup): State<NameTree<Name>> {
    let dir = this.rootDir;
    const segs = entry.path.segments;
    for (let i = 0; i < segs.length; i++) {
      const name = segs[i]!;
      // A segment names one directory entry; never let it climb out of rootDir.
      if (name === "." || name === ".." || name.includes("/") || name.includes("\0")) break;
      const full = join(dir, name);
      const st = statSync(full, { throwIfNoEntry: false });
      if (!st) break;
      if (st.isDirectory()) {
        dir = full;
        continue;
      }
      if (!st.isFile()) break;
      const residual = Path.fromTrusted(segs.slice(i + 1));
      const key = `${full} ${residual.show}`;
      const current = entry.cell?.sample();
      if (entry.boundKey === key && current?.status === "ok") return current;
      entry.boundKey = key;
      const id = this.idPrefix.concat(Path.fromTrusted(segs.slice(0, i + 1)));
      return ok(leaf<Name>(boundName(id, this.fileAddr(full), residual)));
    }
    entry.boundKey = undefined;
    return NEG_STATE;
  }

  private fileAddr(file: string): Cell<Addr> {
    let w = this.files.get(file);
    if (!w) {
      const watched: WatchedFile = { file, cell: undefined as never, content: undefined };
      (watched as { cell: Cell<Addr> }).cell = new Cell<Addr>(this.readAddr(watched), () => {
        this.activeFiles.add(watched);
        this.refreshFile(watched);
        this.ensureRunning();
        return () => {
          this.activeFiles.delete(watched);
          this.files.delete(file);
          this.stopIfIdle();
        };
      });
      w = watched;
      this.files.set(file, w);
    }
    return w.cell;
  }

  private readAddr(w: WatchedFile): Addr {
    let text: string;
    try {
      const st = statSync(w.file);
      if (st.size > MAX_FILE_BYTES)
        return addrFailed(`${w.file}: larger than ${MAX_FILE_BYTES} bytes`);
      text = readFileSync(w.file, "utf8");
    } catch (e) {
      // Forget the text: a file re-created with the same content must bind again.
      w.content = undefined;
      return addrFailed(`${w.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (text === w.content && w.cell) return w.cell.sample();
    w.content = text;
    const parsed = parseAddressFile(text);
    for (const p of parsed.problems) {
      this.log.warn("ignoring a bad line in an address file", {
        file: w.file,
        line: p.line,
        error: p.message,
      });
    }
    if (parsed.addresses.length === 0 && parsed.problems.length > 0) {
      const first = parsed.problems[0]!;
      return addrFailed(`${w.file}:${first.line}: ${first.message}`);
    }
    return addrBound(parsed.addresses);
  }

  private refreshLookup(entry: Lookup): void {
    const next = this.evaluate(entry);
    if (next !== entry.cell.sample()) entry.cell.set(next);
  }

  private refreshFile(w: WatchedFile): void {
    const next = this.readAddr(w);
    if (!addrEquals(next, w.cell.sample())) w.cell.set(next);
  }

  private readonly check = () => {
    for (const e of [...this.activeLookups]) this.refreshLookup(e);
    for (const w of [...this.activeFiles]) this.refreshFile(w);
  };

  private ensureRunning(): void {
    if (this.timer) return;
    this.timer = setInterval(this.check, this.checkIntervalMs);
    this.timer.unref();
    try {
      this.watcher = watch(this.rootDir, { recursive: true, persistent: false }, () => {
        // Editors write in bursts; check once the burst is over.
        if (this.pendingCheck) return;
        this.pendingCheck = setTimeout(() => {
          this.pendingCheck = undefined;
          this.check();
        }, 20);
      });
      this.watcher.on("error", () => this.watcher?.close());
    } catch {
      // The periodic check still runs; fs events only make changes visible sooner.
    }
  }

  private stopIfIdle(): void {
    if (this.activeLookups.size > 0 || this.activeFiles.size > 0) return;
    if (this.timer) clearInterval(this.timer);
    if (this.pendingCheck) clearTimeout(this.pendingCheck);
    this.watcher?.close();
    this.timer = undefined;
    this.pendingCheck = undefined;
    this.watcher = undefined;
  }
}

export const fsNamer = definePlugin({
  category: "namer",
  kind: "io.l5d.fs",
  schema: object({
    rootDir: req(filePath("a directory")),
    /** lintel: how often the directory is checked besides file system events. */
    checkIntervalMs: def(integer({ min: 10 }), 1000),
  }),
  validate(config) {
    const st = statSync(config.rootDir, { throwIfNoEntry: false });
    if (!st) return [{ field: "rootDir", message: `${config.rootDir} does not exist` }];
    if (!st.isDirectory())
      return [{ field: "rootDir", message: `${config.rootDir} is not a directory` }];
    return [];
  },
  create(config, ctx) {
    return new FsNamer(config.rootDir, ctx.prefix, ctx.log, config.checkIntervalMs);
  },
});
