// Response heads as the net engine writes them: one latin1 string per response, the
// status line from a table, a Date when the upstream gave none (RFC 9110 §6.6.1: a
// proxy with a clock adds one), and the framing and connection fields the connection
// decided.

import { STATUS_CODES } from "node:http";

const STATUS_LINES: string[] = [];

/** `HTTP/1.1 NNN Reason\r\n`, made once per status. */
export function statusLine(status: number): string {
  let line = STATUS_LINES[status];
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
    STATUS_LINES[status] = line;
  }
  return line;
}

let dateLine = "";
let dateSecond = -1;

/** `date: <IMF-fixdate>\r\n` for now, remade at most once a second. */
export function dateField(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `date: ${new Date(second * 1000).toUTCString()}\r\n`;
  }
  return dateLine;
}

/** How the body after a head is delimited. */
export const BodyFraming = { None: 0, Length: 1, Chunked: 2, Close: 3 } as const;
export type BodyFraming = (typeof BodyFraming)[keyof typeof BodyFraming];

/**
 * The head for `status` and the flat `headers` (lower-case names; no framing or
 * connection fields: those are the engine's). `connection` is the field the
 * connection's fate asks for ("" for none).
 */
export function responseHead(
  status: number,
  headers: readonly string[],
  framing: BodyFraming,
  length: number,
  connection: string,
): string {
  let head = statusLine(status);
  let dated = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name === "date") dated = true;
    head += `${name}: ${headers[i + 1]}\r\n`;
  }
  if (!dated) head += dateField();
  if (framing === BodyFraming.Length) head += `content-length: ${length}\r\n`;
  else if (framing === BodyFraming.Chunked) head += "transfer-encoding: chunked\r\n";
  if (connection !== "") head += `connection: ${connection}\r\n`;
  return `${head}\r\n`;
}

/** A trailer section ending a chunked body: `0\r\n`, the fields, and the blank line. */
export function lastChunk(trailers: readonly string[] | undefined): string {
  if (trailers === undefined || trailers.length === 0) return "0\r\n\r\n";
  let out = "0\r\n";
  for (let i = 0; i < trailers.length; i += 2) out += `${trailers[i]}: ${trailers[i + 1]}\r\n`;
  return `${out}\r\n`;
}
