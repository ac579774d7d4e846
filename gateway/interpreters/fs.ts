// io.l5d.fs interpreter: the dtab comes from a file, watched; an edit applies without a
// restart. An edit that does not parse (or a deleted file) keeps the last good dtab and
// logs why, with the line and a caret. Its dentries come before the router's dtab.

import { type FSWatcher, readFileSync, statSync, unwatchFile, watch, watchFile } from "node:fs";
import { def, filePath, integer, object, req } from "../config/schema.js";
import type { Logger } from "../log.js";
import {
  Cell,
  type Dtab,
  failed,
  NameParseError,
  ok,
  readDtab,
  type State,
} from "../naming/index.js";
import { definePlugin } from "../plugins/registry.js";
import { DtabInterpreter } from "./default.js";

export function readDtabFile(file: string): Dtab {
  const text = readFileSync(file, "utf8");
  try {
    return readDtab(text);
  } catch (e) {
    if (!(e instanceof NameParseError)) throw e;
    const { line, column } = e.position;
    throw new Error(`${file}:${line}:${column}: invalid dtab: ${e.reason}\n${e.caret}`);
  }
}

/** A watched dtab file as a live value. */
export function watchDtabFile(
  file: string,
  log: Logger,
  intervalMs: number,
): { dtab: Cell<State<Dtab>>; stop(): void } {
  const load = (): State<Dtab> => {
    try {
      return ok(readDtabFile(file));
    } catch (e) {
      return failed(e as Error);
    }
  };
  const first = load();
  if (first.status === "failed")
    log.error("cannot load the dtab file", { file, error: first.error.message });
  const cell = new Cell<State<Dtab>>(first);
  let lastText: string | undefined;
  const check = () => {
    let text: string | undefined;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      text = undefined;
    }
    if (text === lastText) return;
    lastText = text;
    const next = load();
    const current = cell.sample();
    if (next.status === "ok") {
      if (current.status !== "ok" || current.value.show !== next.value.show) {
        log.info("dtab file changed; applying it", { file, dentries: next.value.size });
        cell.set(next);
      }
    } else if (current.status === "ok" && next.status === "failed") {
      log.error("dtab file edit rejected; keeping the last good dtab", {
        file,
        error: next.error.message,
      });
    } else {
      cell.set(next);
    }
  };
  try {
    lastText = readFileSync(file, "utf8");
  } catch {
    lastText = undefined;
  }
  watchFile(file, { interval: intervalMs, persistent: false }, check);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(file, { persistent: false }, () => setTimeout(check, 20).unref());
    watcher.on("error", () => watcher?.close());
  } catch {
    // watchFile still polls; the event watch only makes edits visible sooner.
  }
  return {
    dtab: cell,
    stop() {
      unwatchFile(file, check);
      watcher?.close();
    },
  };
}

export const fsInterpreter = definePlugin({
  category: "interpreter",
  kind: "io.l5d.fs",
  schema: object({
    dtabFile: req(filePath("a dtab file")),
    /** lintel: how often the file is checked besides file system events. */
    checkIntervalMs: def(integer({ min: 10 }), 1000),
  }),
  validate(config) {
    if (!statSync(config.dtabFile, { throwIfNoEntry: false })?.isFile()) {
      return [{ field: "dtabFile", message: `${config.dtabFile} does not exist or is not a file` }];
    }
    try {
      readDtabFile(config.dtabFile);
      return [];
    } catch (e) {
      return [{ field: "dtabFile", message: (e as Error).message }];
    }
  },
  create(config, ctx) {
    const w = watchDtabFile(config.dtabFile, ctx.log, config.checkIntervalMs);
    return new DtabInterpreter(ctx, w.dtab, w.stop);
  },
});
