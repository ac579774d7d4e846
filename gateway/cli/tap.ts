// `lintel tap`: the requests a running lintel finishes, live, one line each (as `linkerd
// tap` shows them), filtered by router, service, path prefix and status. Opens a tap on
// the admin server's /admin/tap, polls it until --max requests or Ctrl-C, then closes it.

import { parseArgs } from "node:util";
import { TAP_PATH } from "../admin/paths.js";
import type { TapRequestLine } from "../admin/tap-hub.js";
import { ADMIN_OPTION, adminRequest, DEFAULT_ADMIN, interruptSignal } from "./admin-request.js";

/** How long one poll waits for requests (the admin server answers sooner when some come). */
const POLL_WAIT_MS = 1000;

export interface TapOptions {
  readonly admin: string;
  readonly router?: string;
  readonly service?: string;
  readonly path?: string;
  readonly status?: string;
  /** Stop after this many requests. */
  readonly max?: number;
  /** Most requests per second the tap reads; the admin server's default when absent. */
  readonly rate?: number;
  readonly json: boolean;
}

/** Parses tap's arguments; a message for the user when they are wrong. */
export function parseTap(args: string[]): TapOptions | string {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(args).values;
  } catch (e) {
    return (e as Error).message;
  }
  const count = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    return Number.isInteger(n) && n > 0
      ? n
      : `--${name} must be a whole number above 0, got "${v}"`;
  };
  const max = count("max", values.max);
  if (typeof max === "string") return max;
  const rate = count("rate", values.rate);
  if (typeof rate === "string") return rate;
  return {
    admin: values.admin ?? DEFAULT_ADMIN,
    router: values.router,
    service: values.service,
    path: values.path,
    status: values.status,
    max,
    rate,
    json: values.json ?? false,
  };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      ...ADMIN_OPTION,
      router: { type: "string", short: "r" },
      service: { type: "string", short: "s" },
      path: { type: "string", short: "p" },
      status: { type: "string" },
      max: { type: "string", short: "n" },
      rate: { type: "string" },
      json: { type: "boolean" },
    },
  });
}

/** One request as a line: time, router, method, authority, path, service, client, status, latency. */
export function formatTapLine(r: TapRequestLine): string {
  let line = `${r.time} rt=${r.router} ${r.method} :authority=${r.host ?? "-"} :path=${r.url}`;
  line += ` service=${r.service ?? "-"} client=${r.client ?? "-"}`;
  line += ` status=${r.status === 0 ? "-" : r.status} latency=${r.durationMs}ms`;
  if (r.error !== null) line += ` error=${r.error}`;
  return line;
}

/**
 * Streams the tapped requests to `out` until `max` of them, or until `signal` (Ctrl-C by
 * default); closes the tap either way. 1 when the admin server cannot be read or refuses
 * the filter (an unknown router: it names the known ones).
 */
export async function tapCommand(
  opts: TapOptions,
  out: (s: string) => void,
  signal?: AbortSignal,
): Promise<number> {
  const interrupt = signal ? undefined : interruptSignal();
  const stop = signal ?? interrupt!.signal;
  const q = new URLSearchParams();
  for (const k of ["router", "service", "path", "status", "rate"] as const) {
    const v = opts[k];
    if (v !== undefined) q.set(k, String(v));
  }
  let id: number | undefined;
  try {
    const opened = await adminRequest(opts.admin, "POST", `${TAP_PATH}?${q}`, {
      timeoutMs: 5000,
      signal: stop,
    });
    if (opened.status !== 201) {
      out(`the admin server at ${opts.admin} refused the tap: ${opened.body.trim()}`);
      return 1;
    }
    const tap = JSON.parse(opened.body) as { id: number; perSecond: number };
    id = tap.id;
    let seen = 0;
    while (opts.max === undefined || seen < opts.max) {
      const r = await adminRequest(
        opts.admin,
        "GET",
        `${TAP_PATH}?id=${id}&waitMs=${POLL_WAIT_MS}`,
        {
          timeoutMs: POLL_WAIT_MS + 5000,
          signal: stop,
        },
      );
      if (r.status !== 200) {
        out(
          `the tap ended: the admin server at ${opts.admin} answered HTTP ${r.status}: ${r.body.trim()}`,
        );
        id = undefined;
        return 1;
      }
      for (const text of r.body.split("\n")) {
        if (text === "") continue;
        const line = JSON.parse(text) as TapRequestLine | { type: "dropped"; count: number };
        if (line.type === "dropped") {
          out(
            opts.json
              ? text
              : `# ${line.count} requests dropped (over ${tap.perSecond} per second)`,
          );
          continue;
        }
        if (opts.max !== undefined && seen >= opts.max) break;
        seen++;
        out(opts.json ? text : formatTapLine(line));
      }
    }
    return 0;
  } catch (e) {
    // Ctrl-C ends the tap without an error.
    if (stop.aborted) return 0;
    out((e as Error).message);
    return 1;
  } finally {
    interrupt?.release();
    // Closing stops the threads' flow at once (else the tap's lease ends it).
    if (id !== undefined)
      await adminRequest(opts.admin, "DELETE", `${TAP_PATH}?id=${id}`, { timeoutMs: 2000 }).catch(
        () => undefined,
      );
  }
}
