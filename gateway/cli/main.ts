// The `lintel` command line: check, delegate (and run, once the data plane exists).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ADMIN_OPTION, DEFAULT_ADMIN } from "./admin-request.js";
import { certsCommand } from "./certs.js";
import { checkCommand } from "./check.js";
import { delegateCommand } from "./delegate.js";
import { demoCommand } from "./demo.js";
import { runCommand } from "./run.js";
import { parseStat, statCommand } from "./stat.js";
import { parseTap, tapCommand } from "./tap.js";

const USAGE = `usage: lintel <command> [options]

commands:
  run CONFIG [LOG FLAGS]                run lintel on a config (until SIGTERM or POST /admin/shutdown)
  demo [LOG FLAGS]                      run the demo: an edge router in front of a sample app
  check CONFIG...                       validate configs; print every error with its line
  delegate CONFIG [--router LABEL] PATH [--dtab DENTRIES] [--json] [--timeout MS]
                                        show how a router resolves PATH and what it binds to
  certs [--admin HOST:PORT] [--json]    the certificates a running lintel serves (default admin 127.0.0.1:9990)
  stat [--admin HOST:PORT] [--router LABEL] [--interval S] [--clients] [--json] [--watch]
                                        per service (and client): success rate, requests per second and
                                        p50/p95/p99 latency over S seconds (default 2); --watch: until Ctrl-C
  tap [--admin HOST:PORT] [--router LABEL] [--service NAME] [--path PREFIX] [--status CODE|5xx]
      [--max N] [--rate N] [--json]     the requests lintel finishes, live, one line each, until N or Ctrl-C
                                        (at most --rate a second, default 100; the rest counted as dropped)
  version                               print the version

log flags (run, demo; default LINTEL_LOG_FORMAT, LINTEL_LOG_LEVEL, else text and info):
  --log-format text|json                the application log's format on stderr
  --log-level debug|info|warn|error     the lowest level logged`;

/** Reads the version from package.json, found upwards from this file (src or dist). */
function version(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
        name?: string;
        version: string;
      };
      if (pkg.name === "lintel") return pkg.version;
    } catch {
      // not here; look one level further up
    }
  }
  return "unknown";
}

export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(`${s}\n`),
): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return runCommand(rest, out);
    case "demo":
      return demoCommand(rest, out);
    case "check":
      return checkCommand(rest, out);
    case "delegate": {
      let parsed: ReturnType<typeof parseDelegate>;
      try {
        parsed = parseDelegate(rest);
      } catch (e) {
        out(`${(e as Error).message}\n\n${USAGE}`);
        return 2;
      }
      const { values, positionals } = parsed;
      if (positionals.length !== 2) {
        out(`delegate needs CONFIG and PATH\n\n${USAGE}`);
        return 2;
      }
      const timeoutMs = values.timeout === undefined ? undefined : Number(values.timeout);
      if (timeoutMs !== undefined && !(timeoutMs > 0)) {
        out("--timeout must be a number of milliseconds");
        return 2;
      }
      return delegateCommand(
        {
          config: positionals[0]!,
          path: positionals[1]!,
          router: values.router,
          dtab: values.dtab,
          json: values.json ?? false,
          timeoutMs,
        },
        out,
      );
    }
    case "certs": {
      let values: { admin?: string; json?: boolean };
      try {
        values = parseArgs({
          args: rest,
          options: { ...ADMIN_OPTION, json: { type: "boolean" } },
        }).values;
      } catch (e) {
        out(`${(e as Error).message}\n\n${USAGE}`);
        return 2;
      }
      return certsCommand(
        { admin: values.admin ?? DEFAULT_ADMIN, json: values.json ?? false },
        out,
      );
    }
    case "stat": {
      const opts = parseStat(rest);
      if (typeof opts === "string") {
        out(`${opts}\n\n${USAGE}`);
        return 2;
      }
      return statCommand(opts, out);
    }
    case "tap": {
      const opts = parseTap(rest);
      if (typeof opts === "string") {
        out(`${opts}\n\n${USAGE}`);
        return 2;
      }
      return tapCommand(opts, out);
    }
    case "version":
    case "--version":
      out(`lintel ${version()}`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      out(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function parseDelegate(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      router: { type: "string", short: "r" },
      dtab: { type: "string", short: "d" },
      json: { type: "boolean" },
      timeout: { type: "string" },
    },
  });
}
