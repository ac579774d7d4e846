// Answers written straight to a socket the HTTP server has let go of (a CONNECT that will
// not be tunnelled): the same status, l5d-err and body as lintel's own errors.

import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { l5dErrValue, type ProxyError } from "./errors.js";

/** Writes a whole answer (flat lower-case headers) and closes the connection. */
export function writeRawResponse(
  socket: Socket,
  status: number,
  headers: readonly string[],
  body: Buffer,
): void {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
}

/** Writes lintel's error answer and closes the connection. */
export function writeRawError(socket: Socket, err: ProxyError): void {
  writeRawResponse(
    socket,
    err.status,
    [
      "l5d-err",
      l5dErrValue(err.message),
      "via",
      "1.1 lintel",
      "content-type",
      "text/plain; charset=utf-8",
    ],
    Buffer.from(`${err.message}\n`),
  );
}
