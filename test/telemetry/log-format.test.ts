// The application log's formats: JSON lines (pino) with level names, bound fields and a
// worker thread's forwarded fields; the text format as it always was; and a bad
// LINTEL_LOG_FORMAT / --log-format / --log-level refused with a message that says why.

import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../gateway/cli/main.js";
import { createLogger, type Fields, type Level } from "../../gateway/log.js";
import { LogSettingError } from "../../gateway/log-settings.js";

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A sink keeping the lines and the levels it is given; `events` parses the lines. */
function capture() {
  const lines: string[] = [];
  const levels: Level[] = [];
  return {
    lines,
    levels,
    sink: (line: string, level: Level) => {
      lines.push(line);
      levels.push(level);
    },
    events: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const savedEnv = { format: process.env.LINTEL_LOG_FORMAT, level: process.env.LINTEL_LOG_LEVEL };
afterEach(() => {
  for (const [name, v] of [
    ["LINTEL_LOG_FORMAT", savedEnv.format],
    ["LINTEL_LOG_LEVEL", savedEnv.level],
  ] as const) {
    if (v === undefined) delete process.env[name];
    else process.env[name] = v;
  }
});

describe("JSON application log", () => {
  it("writes one JSON object per event with time, the level's name, msg and the fields", () => {
    const s = capture();
    const log = createLogger({ format: "json", level: "debug", sink: s.sink });
    const before = Date.now();
    log.debug("addresses changed", { count: 3 });
    log.info("listening", { address: "127.0.0.1:4140", tls: false });
    log.warn("slow", { note: 'has "quotes" and spaces', gone: undefined });
    log.error("failed");
    const after = Date.now();

    expect(s.lines.every((l) => !l.includes("\n"))).toBe(true);
    const events = s.events();
    expect(events.map((e) => e.level)).toEqual(["debug", "info", "warn", "error"]);
    expect(s.levels).toEqual(["debug", "info", "warn", "error"]);
    expect(events.map((e) => e.msg)).toEqual(["addresses changed", "listening", "slow", "failed"]);
    for (const e of events) {
      expect(e.time).toMatch(ISO_TIME);
      const t = Date.parse(e.time as string);
      expect(t).toBeGreaterThanOrEqual(before);
      expect(t).toBeLessThanOrEqual(after);
    }
    expect(events[0]).toEqual({
      level: "debug",
      time: events[0]!.time,
      msg: "addresses changed",
      count: 3,
    });
    expect(events[1]).toMatchObject({ address: "127.0.0.1:4140", tls: false });
    expect(events[2]!.note).toBe('has "quotes" and spaces');
    expect(events[2]).not.toHaveProperty("gone");
    // Nothing but what was asked for: no pid or hostname.
    expect(Object.keys(events[3]!).sort()).toEqual(["level", "msg", "time"]);
  });

  it("drops events below its level", () => {
    const s = capture();
    const log = createLogger({ format: "json", level: "warn", sink: s.sink });
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(s.events().map((e) => e.msg)).toEqual(["w", "e"]);
  });

  it("carries a child's bound fields, and its parents', with each event's own", () => {
    const s = capture();
    const log = createLogger({
      format: "json",
      level: "info",
      sink: s.sink,
      fields: { component: "runtime" },
    });
    const router = log.child({ router: "edge" });
    router.child({ server: "127.0.0.1:4140" }).warn("request failed", { status: 502 });
    router.info("listening");
    log.info("plain");
    const [a, b, c] = s.events();
    expect(a).toMatchObject({
      level: "warn",
      msg: "request failed",
      component: "runtime",
      router: "edge",
      server: "127.0.0.1:4140",
      status: 502,
    });
    expect(b).toMatchObject({ component: "runtime", router: "edge", msg: "listening" });
    expect(b).not.toHaveProperty("server");
    expect(c).not.toHaveProperty("router");
  });

  it("writes a worker thread's forwarded events with its thread and fields", async () => {
    const s = capture();
    // As the worker pool does: the control thread's logger, a child per worker.
    const control = createLogger({ format: "json", level: "debug", sink: s.sink });
    const logUrl = new URL("../../gateway/log.ts", import.meta.url).href;
    const worker = new Worker(
      `const { parentPort } = require("node:worker_threads");
      import("tsx/esm/api").then(async (tsx) => {
        tsx.register();
        const { createForwardingLogger } = await import(${JSON.stringify(logUrl)});
        const post = (level, msg, fields) => parentPort.postMessage({ level, msg, fields });
        const log = createForwardingLogger(post, { level: "info" }).child({ router: "edge" });
        log.debug("below the level: not forwarded");
        log.warn("request failed", { client: "203.0.113.7", status: 502 });
        parentPort.postMessage("done");
      });`,
      { eval: true },
    );
    const threadId = worker.threadId;
    const wlog = control.child({ worker: 0 });
    try {
      await new Promise<void>((resolve, reject) => {
        worker.on("message", (m: "done" | { level: Level; msg: string; fields: Fields }) => {
          if (m === "done") resolve();
          else wlog[m.level](m.msg, m.fields);
        });
        worker.on("error", reject);
        worker.on("exit", (code) => reject(new Error(`the worker exited (${code}) too early`)));
      });
    } finally {
      await worker.terminate();
    }
    const events = s.events();
    expect(events).toHaveLength(1);
    expect(threadId).toBeGreaterThan(0);
    expect(events[0]).toEqual({
      level: "warn",
      time: events[0]!.time,
      msg: "request failed",
      worker: 0,
      thread: threadId,
      router: "edge",
      client: "203.0.113.7",
      status: 502,
    });
  }, 20_000);

  it("is chosen by LINTEL_LOG_FORMAT when no format is given", () => {
    process.env.LINTEL_LOG_FORMAT = "json";
    const lines: string[] = [];
    createLogger({ level: "info", sink: (l) => lines.push(l) }).info("hello", { a: 1 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "info", msg: "hello", a: 1 });
  });
});

describe("text application log", () => {
  it("stays the default: time, padded level, message, key=value fields", () => {
    delete process.env.LINTEL_LOG_FORMAT;
    const lines: string[] = [];
    const log = createLogger({ level: "debug", sink: (l) => lines.push(l) }).child({
      router: "edge",
    });
    log.info("listening", { address: "127.0.0.1:4140", note: "a b", empty: "", gone: undefined });
    log.error("failed", { q: 'x"y', eq: "a=b" });
    expect(lines).toHaveLength(2);
    const [t0, rest0] = [lines[0]!.slice(0, 24), lines[0]!.slice(24)];
    expect(t0).toMatch(ISO_TIME);
    expect(rest0).toBe(' INFO  listening router=edge address=127.0.0.1:4140 note="a b" empty=""');
    expect(lines[1]!.slice(24)).toBe(' ERROR failed router=edge q="x\\"y" eq="a=b"');
  });
});

describe("a bad log setting", () => {
  it("LINTEL_LOG_FORMAT: createLogger refuses it, naming the variable and the formats", () => {
    process.env.LINTEL_LOG_FORMAT = "yaml";
    expect(() => createLogger({ sink: () => {} })).toThrow(LogSettingError);
    expect(() => createLogger({ sink: () => {} })).toThrow(
      'LINTEL_LOG_FORMAT: "yaml" is not a log format; use one of text, json',
    );
  });

  it("lintel run: exit 2 for a bad --log-format, --log-level or LINTEL_LOG_FORMAT", async () => {
    const run = async (...argv: string[]) => {
      const out: string[] = [];
      const code = await main(argv, (s) => out.push(s));
      return { code, out: out.join("\n") };
    };
    // The config is never read: the log settings are checked first.
    const missing = "/nonexistent/lintel.yaml";
    expect(await run("run", missing, "--log-format", "xml")).toEqual({
      code: 2,
      out: '--log-format: "xml" is not a log format; use one of text, json',
    });
    expect(await run("run", missing, "--log-level", "verbose")).toEqual({
      code: 2,
      out: '--log-level: "verbose" is not a log level; use one of debug, info, warn, error',
    });
    expect(await run("demo", "--log-format", "xml")).toEqual({
      code: 2,
      out: '--log-format: "xml" is not a log format; use one of text, json',
    });
    process.env.LINTEL_LOG_FORMAT = "yaml";
    expect(await run("run", missing)).toEqual({
      code: 2,
      out: 'LINTEL_LOG_FORMAT: "yaml" is not a log format; use one of text, json',
    });
    // A flag given wins over the variable.
    expect((await run("run", missing, "--log-format", "text")).code).toBe(1);
    const unknown = await run("run", missing, "--log-colour", "red");
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain("--log-colour");
  });
});
