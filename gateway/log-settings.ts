// How the application log is set up: its level and format, from the command line's
// --log-level/--log-format or else LINTEL_LOG_LEVEL/LINTEL_LOG_FORMAT. A bad value is an
// error naming where it came from, never a silent fallback.

export const LEVELS = ["debug", "info", "warn", "error"] as const;
export type Level = (typeof LEVELS)[number];

export const FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof FORMATS)[number];

export interface LogSettings {
  readonly level: Level;
  readonly format: LogFormat;
}

/** A log setting with a value that is not one of the allowed ones. */
export class LogSettingError extends Error {}

function oneOf<T extends string>(
  allowed: readonly T[],
  value: string,
  from: string,
  what: string,
): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new LogSettingError(
    `${from}: ${JSON.stringify(value)} is not a ${what}; use one of ${allowed.join(", ")}`,
  );
}

/** The level `value` names; `from` says where it was read (a flag or a variable). */
export function parseLevel(value: string, from: string): Level {
  return oneOf(LEVELS, value, from, "log level");
}

/** The format `value` names; `from` says where it was read (a flag or a variable). */
export function parseFormat(value: string, from: string): LogFormat {
  return oneOf(FORMATS, value, from, "log format");
}

/** LINTEL_LOG_LEVEL, or info when it is unset (or empty). */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): Level {
  const v = env.LINTEL_LOG_LEVEL;
  return v ? parseLevel(v, "LINTEL_LOG_LEVEL") : "info";
}

/** LINTEL_LOG_FORMAT, or text when it is unset (or empty). */
export function formatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const v = env.LINTEL_LOG_FORMAT;
  return v ? parseFormat(v, "LINTEL_LOG_FORMAT") : "text";
}

/** The flags' values where given, else the variables'; throws LogSettingError on a bad one. */
export function logSettings(
  flags: { readonly level?: string; readonly format?: string },
  env: NodeJS.ProcessEnv = process.env,
): LogSettings {
  return {
    level: flags.level === undefined ? levelFromEnv(env) : parseLevel(flags.level, "--log-level"),
    format:
      flags.format === undefined ? formatFromEnv(env) : parseFormat(flags.format, "--log-format"),
  };
}
