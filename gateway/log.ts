// The application log: a small leveled logger, one line per event to stderr. Text (the
// default): time, level, message, then key=value fields; JSON: one object per line,
// written by pino (log-json.ts). Tests and embedders can pass their own sink.

import { threadId } from "node:worker_threads";
import { createJsonLogger } from "./log-json.js";
import { formatFromEnv, type Level, type LogFormat, levelFromEnv } from "./log-settings.js";

export type { Level, LogFormat } from "./log-settings.js";

const LEVEL_ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

/** Where finished lines go (without their newline). */
export type Sink = (line: string, level: Level) => void;

export interface LoggerOptions {
  /** Default: LINTEL_LOG_LEVEL, else info. */
  readonly level?: Level;
  /** Default: LINTEL_LOG_FORMAT, else text. */
  readonly format?: LogFormat;
  /** Default: stderr. */
  readonly sink?: Sink;
  /** Fields every event carries. */
  readonly fields?: Fields;
}

const stderrSink: Sink = (line) => process.stderr.write(`${line}\n`);

function render(fields: Fields): string {
  let out = "";
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = String(v);
    out += ` ${k}=${/[\s"=]/.test(s) || s === "" ? JSON.stringify(s) : s}`;
  }
  return out;
}

/**
 * A logger in the format `opts.format` names. Reading an unset option from a variable
 * that holds a bad value throws (LogSettingError, naming the variable).
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? levelFromEnv();
  const format = opts.format ?? formatFromEnv();
  if (format === "json") return createJsonLogger(level, opts.sink, opts.fields ?? {});
  return textLogger(LEVEL_ORDER[level], opts.sink ?? stderrSink, opts.fields ?? {});
}

function textLogger(min: number, sink: Sink, base: Fields): Logger {
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (LEVEL_ORDER[level] < min) return;
    const time = new Date().toISOString();
    sink(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${render({ ...base, ...fields })}`, level);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => textLogger(min, sink, { ...base, ...fields }),
  };
}

/**
 * A logger that hands each event on (a worker thread's events to the control thread's
 * logger), with the same level filter as createLogger. Each event carries `thread`, the
 * id of the thread it was logged on.
 */
export function createForwardingLogger(
  forward: (level: Level, msg: string, fields: Fields) => void,
  opts: { level?: Level; fields?: Fields } = {},
): Logger {
  const level = opts.level ?? levelFromEnv();
  return forwardingLogger(forward, LEVEL_ORDER[level], { thread: threadId, ...opts.fields });
}

function forwardingLogger(
  forward: (level: Level, msg: string, fields: Fields) => void,
  min: number,
  base: Fields,
): Logger {
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (LEVEL_ORDER[level] >= min) forward(level, msg, { ...base, ...fields });
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => forwardingLogger(forward, min, { ...base, ...fields }),
  };
}

/** A logger that drops everything (for tools that print their own output). */
export const silentLogger: Logger = createLogger({
  level: "error",
  format: "text",
  sink: () => {},
});
