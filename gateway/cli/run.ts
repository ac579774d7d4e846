// `lintel run CONFIG [--log-format F] [--log-level L]`: checks the config (exit 1 with
// every error if it is invalid), starts every router, and runs until SIGTERM/SIGINT or
// POST /admin/shutdown, then drains gracefully and exits 0.

import { parseArgs } from "node:util";
import { formatConfigError } from "../config/load.js";
import { readConfigAsWritten } from "../config/source.js";
import { createLogger, type Logger } from "../log.js";
import { LogSettingError, logSettings } from "../log-settings.js";
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

/** The application log's flags, shared by `run` and `demo`. */
export const LOG_FLAGS = {
  "log-format": { type: "string" },
  "log-level": { type: "string" },
} as const;

export const LOG_FLAGS_USAGE = "[--log-format text|json] [--log-level debug|info|warn|error]";

/**
 * The logger the flags ask for (else LINTEL_LOG_FORMAT/LINTEL_LOG_LEVEL), or exit code 2
 * after saying which value is bad.
 */
export function commandLogger(
  values: { readonly "log-format"?: string; readonly "log-level"?: string },
  out: (s: string) => void,
): Logger | number {
  let settings: ReturnType<typeof logSettings>;
  try {
    settings = logSettings({ format: values["log-format"], level: values["log-level"] });
  } catch (e) {
    if (!(e instanceof LogSettingError)) throw e;
    out(e.message);
    return 2;
  }
  // Worker threads filter their events by this variable (they get the environment as it
  // is when they start), so --log-level reaches them too.
  process.env.LINTEL_LOG_LEVEL = settings.level;
  return createLogger(settings);
}

export async function runCommand(args: string[], out: (s: string) => void): Promise<number> {
  const usage = `usage: lintel run CONFIG ${LOG_FLAGS_USAGE}`;
  let parsed: { values: { "log-format"?: string; "log-level"?: string }; positionals: string[] };
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: LOG_FLAGS });
  } catch (e) {
    out(`${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (parsed.positionals.length !== 1) {
    out(usage);
    return 2;
  }
  const log = commandLogger(parsed.values, out);
  if (typeof log === "number") return log;
  const h = await startFromFile(parsed.positionals[0]!, log, out);
  if (typeof h === "number") return h;
  return h.stopped;
}
