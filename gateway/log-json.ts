// The application log as JSON lines, written by pino: `time` (ISO), `level` (its name),
// `msg`, then the logger's bound fields and the event's. To stderr through a synchronous
// destination, so no line is lost when the process crashes or exits; or to a sink.

import { createRequire } from "node:module";
import type pinoModule from "pino";
import type { Fields, Logger, Sink } from "./log.js";
import type { Level } from "./log-settings.js";

type Pino = typeof pinoModule;

/**
 * pino, loaded the first time a JSON logger is made: worker threads (which forward their
 * events) and the text format never pay for loading it.
 */
let loaded: Pino | undefined;
function pinoLib(): Pino {
  loaded ??= createRequire(import.meta.url)("pino") as Pino;
  return loaded;
}

/** One for the process: every JSON logger writing to stderr shares it. */
let stderr: pinoModule.DestinationStream | undefined;

function stderrDestination(pino: Pino): pinoModule.DestinationStream {
  stderr ??= pino.destination({ fd: 2, sync: true });
  return stderr;
}

/** A stream that hands pino's lines to `sink`, with the level pino says each one has. */
function sinkStream(pino: Pino, sink: Sink): pinoModule.DestinationStream {
  // pino sets lastLevel (its number) on a stream that asks for metadata, before write.
  const stream = {
    [pino.symbols.needsMetadataGsym]: true as const,
    lastLevel: 0,
    write(line: string) {
      const level = (pino.levels.labels[stream.lastLevel] ?? "info") as Level;
      sink(line.endsWith("\n") ? line.slice(0, -1) : line, level);
    },
  };
  return stream;
}

export function createJsonLogger(level: Level, sink: Sink | undefined, fields: Fields): Logger {
  const pino = pinoLib();
  const destination = sink ? sinkStream(pino, sink) : stderrDestination(pino);
  const root = pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return wrap(Object.keys(fields).length === 0 ? root : root.child(fields));
}

function wrap(p: pinoModule.Logger): Logger {
  return {
    debug: (m, f) => (f === undefined ? p.debug(m) : p.debug(f, m)),
    info: (m, f) => (f === undefined ? p.info(m) : p.info(f, m)),
    warn: (m, f) => (f === undefined ? p.warn(m) : p.warn(f, m)),
    error: (m, f) => (f === undefined ? p.error(m) : p.error(f, m)),
    child: (fields) => wrap(p.child(fields)),
  };
}
