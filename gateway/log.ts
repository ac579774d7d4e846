// A small leveled logger writing one line per event to stderr: time, level, message,
// then key=value fields. Tests and embedders can pass their own sink.

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

export type Sink = (line: string, level: Level) => void;

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

export function createLogger(opts: { level?: Level; sink?: Sink; fields?: Fields } = {}): Logger {
  const min =
    ORDER[opts.level ?? (process.env.LINTEL_LOG_LEVEL as Level | undefined) ?? "info"] ?? 20;
  const sink = opts.sink ?? stderrSink;
  const base = opts.fields ?? {};
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (ORDER[level] < min) return;
    const time = new Date().toISOString();
    sink(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${render({ ...base, ...fields })}`, level);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ level: opts.level, sink, fields: { ...base, ...fields } }),
  };
}

/**
 * A logger that hands each event on (a worker thread's events to the control thread's
 * logger), with the same level filter as createLogger.
 */
export function createForwardingLogger(
  forward: (level: Level, msg: string, fields: Fields) => void,
  opts: { level?: Level; fields?: Fields } = {},
): Logger {
  const min =
    ORDER[opts.level ?? (process.env.LINTEL_LOG_LEVEL as Level | undefined) ?? "info"] ?? 20;
  const base = opts.fields ?? {};
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (ORDER[level] >= min) forward(level, msg, { ...base, ...fields });
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) =>
      createForwardingLogger(forward, { level: opts.level, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (for tools that print their own output). */
export const silentLogger: Logger = createLogger({ sink: () => {} });
