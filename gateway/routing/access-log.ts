// httpAccessLog: one line per request, in the Combined Log Format that HAProxy, nginx and
// Linkerd users already parse, followed by the service name, the bound client and the
// time taken:
//   127.0.0.1 - - [26/Nov/2026:17:44:52 +0000] "GET /users/1 HTTP/1.1" 200 512 "-" "curl/8.1" /svc/users /#/io.l5d.fs/users 3.2ms
// or, with httpAccessLogFormat: json, one JSON object per line with the same fields, for
// log shippers that read JSON (the client address is the one PROXY or a trusted proxy's
// X-Forwarded-For gave, in both).
// Lines are written asynchronously; if the disk cannot keep up, lines are dropped and
// counted rather than buffered without bound.

import { createWriteStream, type WriteStream } from "node:fs";
import type { Logger } from "../log.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number) => (n < 10 ? `0${n}` : String(n));

export function clfTime(d: Date): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

const quoted = (s: string | undefined) => (s === undefined || s === "" ? '"-"' : JSON.stringify(s));

export interface AccessRecord {
  readonly remote: string;
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly status: number;
  readonly bytes: number;
  readonly referer: string | undefined;
  readonly userAgent: string | undefined;
  readonly service: string | undefined;
  readonly client: string | undefined;
  readonly durationMs: number;
}

export function formatAccessLine(r: AccessRecord, at: Date): string {
  return `${r.remote || "-"} - - [${clfTime(at)}] ${JSON.stringify(`${r.method} ${r.url} HTTP/${r.httpVersion}`)} ${r.status} ${r.bytes} ${quoted(r.referer)} ${quoted(r.userAgent)} ${r.service ?? "-"} ${r.client ?? "-"} ${r.durationMs.toFixed(1)}ms\n`;
}

/** The same record as one JSON object (a line of its own). */
export function formatAccessJson(r: AccessRecord, at: Date): string {
  return `${JSON.stringify({
    time: at.toISOString(),
    remote: r.remote || undefined,
    method: r.method,
    url: r.url,
    protocol: `HTTP/${r.httpVersion}`,
    status: r.status,
    bytes: r.bytes,
    referer: r.referer,
    userAgent: r.userAgent,
    service: r.service,
    client: r.client,
    durationMs: Math.round(r.durationMs * 10) / 10,
  })}\n`;
}

export type AccessLogFormat = "clf" | "json";

/** Bytes of log lines waiting for the disk before new lines are dropped. */
const MAX_PENDING_BYTES = 8 << 20;

export class AccessLog {
  private readonly out: WriteStream;
  dropped = 0;

  private readonly format: (r: AccessRecord, at: Date) => string;

  constructor(
    readonly file: string,
    log: Logger,
    format: AccessLogFormat = "clf",
  ) {
    this.format = format === "json" ? formatAccessJson : formatAccessLine;
    this.out = createWriteStream(file, { flags: "a" });
    this.out.on("error", (e) =>
      log.error("cannot write the access log", { file, error: e.message }),
    );
  }

  write(r: AccessRecord): void {
    if (this.out.writableLength > MAX_PENDING_BYTES) {
      this.dropped++;
      return;
    }
    this.out.write(this.format(r, new Date()));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}
