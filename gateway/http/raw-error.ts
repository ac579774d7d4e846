// An error answer written straight to a socket the HTTP server has let go of (a CONNECT
// that will not be tunnelled): the same status, l5d-err and body as lintel's own errors.

import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { l5dErrValue, type ProxyError } from "./errors.js";

/** Writes the answer and closes the connection. */
export function writeRawError(socket: Socket, err: ProxyError): void {
  if (socket.destroyed) return;
  const body = `${err.message}\n`;
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? "Error"}\r\n` +
      `l5d-err: ${l5dErrValue(err.message)}\r\n` +
      "via: 1.1 lintel\r\n" +
      "content-type: text/plain; charset=utf-8\r\n" +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      "connection: close\r\n\r\n" +
      body,
  );
}
