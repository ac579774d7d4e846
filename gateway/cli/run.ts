// `lintel run CONFIG`: checks the config (exit 1 with every error if it is invalid),
// starts every router, and runs until SIGTERM/SIGINT or POST /admin/shutdown, then
// drains gracefully and exits 0.

import { formatConfigError } from "../config/load.js";
import { readConfigAsWritten } from "../config/source.js";
import { createLogger, type Logger } from "../log.js";
import { Runtime } from "../runtime.js";
import { loadLintelConfig } from "../setup.js";

export interface RunHandle {
  readonly runtime: Runtime;
  /** Resolves with the exit code once lintel has shut down. */
  readonly stopped: Promise<number>;
}

export async function startFromFile(
  file: string,
  log: Logger,
  out: (s: string) => void,
): Promise<RunHandle | number> {
  const loaded = await loadLintelConfig(file);
  if (!loaded.ok) {
    out(`${file}: invalid config`);
    for (const e of loaded.errors) out(`  ${formatConfigError(e).split("\n").join("\n  ")}`);
    return 1;
  }
  // Served at /config.json as written: ${VAR} references stay unexpanded, so no secrets.
  const written = (): unknown => {
    try {
      return readConfigAsWritten(loaded.file);
    } catch (e) {
      return { error: `cannot read ${loaded.file}: ${(e as Error).message}` };
    }
  };
  let requestShutdown: () => void = () => {};
  let runtime: Runtime;
  try {
    runtime = await Runtime.start(loaded.config, {
      log,
      source: { file: loaded.file, text: loaded.text },
      configJson: written,
      onShutdownRequest: () => requestShutdown(),
    });
  } catch (e) {
    log.error("lintel did not start", { error: (e as Error).message });
    return 1;
  }
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info("shutting down", { reason: why });
      runtime.shutdown().then(
        () => {
          log.info("stopped");
          resolve(0);
        },
        (e: Error) => {
          log.error("shutdown failed", { error: e.message });
          resolve(1);
        },
      );
    };
    requestShutdown = () => stop("POST /admin/shutdown");
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return { runtime, stopped };
}

export async function runCommand(args: string[], out: (s: string) => void): Promise<number> {
  if (args.length !== 1) {
    out("usage: lintel run CONFIG");
    return 2;
  }
  const h = await startFromFile(args[0]!, createLogger(), out);
  if (typeof h === "number") return h;
  return h.stopped;
}
