// An Upgrade request (a WebSocket handshake) after it was identified and bound: sent on a
// connection of its own to an endpoint of its client (plain or TLS as the client's
// requests), with the headers lintel forwards plus `Connection: upgrade` and the
// `Upgrade` asked for. A 101 answer switches both connections to the new protocol and
// bytes flow both ways with backpressure; any other answer is relayed as it is framed
// (the upgrade refused) and both connections are closed after it.

import type { Socket } from "node:net";
import { ResponseParser } from "../client/http1/response-parser.js";
import { HOP_BY_HOP } from "../http/headers.js";
import { parseFieldLines } from "../http/http1-fields.js";

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Largest answer head read before the switch. */
const MAX_ANSWER_HEAD = 64 * 1024;

/** What the relay tells the tunnel about the upstream's answer. */
export interface UpgradeEvents {
  /** The upstream answered with `status` (101: switched; otherwise relayed then closed). */
  answered(status: number): void;
  /** The upstream's answer could not be read (an error before any byte reached the client). */
  failed(reason: string): void;
}

/** The request line and header fields sent upstream for an Upgrade request. */
export function upgradeRequestHead(
  method: string,
  path: string,
  headers: readonly string[],
  protocol: string,
): string {
  let text = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${text}connection: upgrade\r\nupgrade: ${protocol}\r\n\r\n`;
}

/**
 * Reads the upstream's answer on `upstream` and hands it to `client`: switches on 101,
 * relays anything else. `clearContext` drops l5d-* fields from the answer.
 */
export function relayUpgradeAnswer(
  method: string,
  client: Socket,
  upstream: Socket,
  clearContext: boolean,
  events: UpgradeEvents,
): void {
  let buf: Buffer | undefined;
  const onData = (chunk: Buffer) => {
    buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0) {
      if (buf.length > MAX_ANSWER_HEAD) fail("the upstream's answer head is too large");
      return;
    }
    upstream.off("data", onData);
    upstream.off("close", onEarlyClose);
    const text = buf.toString("latin1", 0, end);
    const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(text);
    const lineEnd = text.indexOf("\r\n");
    let fields: string[];
    try {
      fields = lineEnd < 0 ? [] : parseFieldLines(buf, text, lineEnd + 2, (why) => new Error(why));
    } catch (e) {
      return fail((e as Error).message);
    }
    if (status === null) return fail("the upstream's status line is invalid");
    const code = Number(status[1]);
    if (code === 101) switchProtocols(buf.subarray(end + 4), fields);
    else relay(code, buf, text.slice(0, lineEnd < 0 ? text.length : lineEnd), fields, end);
  };
  const fail = (reason: string) => {
    upstream.off("data", onData);
    upstream.off("close", onEarlyClose);
    upstream.destroy();
    events.failed(reason);
  };
  const onEarlyClose = () => fail("the upstream closed the connection without answering");

  const switchProtocols = (rest: Buffer, fields: string[]) => {
    let head = "HTTP/1.1 101 Switching Protocols\r\n";
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!;
      if (clearContext && name.startsWith("l5d-")) continue;
      head += `${name}: ${fields[i + 1]}\r\n`;
    }
    client.write(`${head}via: 1.1 lintel\r\n\r\n`, "latin1");
    if (rest.length > 0) client.write(rest);
    events.answered(101);
    upstream.pipe(client);
  };

  /** Another answer: the upgrade is refused; the answer goes on as framed, then both close. */
  const relay = (
    code: number,
    bytes: Buffer,
    statusLine: string,
    fields: string[],
    end: number,
  ) => {
    let head = `${statusLine}\r\n`;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!;
      // Framing stays as the upstream sent it: the body is relayed byte for byte.
      if (name !== "transfer-encoding" && HOP_BY_HOP.has(name)) continue;
      if (clearContext && name.startsWith("l5d-")) continue;
      head += `${name}: ${fields[i + 1]}\r\n`;
    }
    client.write(`${head}via: 1.1 lintel\r\nconnection: close\r\n\r\n`, "latin1");
    events.answered(code);
    const parser = new ResponseParser();
    const finish = () => {
      upstream.destroy();
      client.end();
    };
    parser.expect(method, { onHead: () => {}, onBody: () => true, onEnd: finish });
    const feed = (chunk: Buffer) => {
      try {
        parser.feed(chunk);
      } catch {
        finish();
      }
    };
    const rest = bytes.subarray(end + 4);
    feed(bytes.subarray(0, end + 4));
    if (rest.length > 0 && !parser.done) {
      client.write(rest);
      feed(rest);
    }
    if (parser.done) return;
    upstream.on("data", (chunk: Buffer) => {
      client.write(chunk);
      feed(chunk);
    });
    upstream.once("close", () => {
      if (!parser.done) client.destroy();
    });
  };

  upstream.on("data", onData);
  upstream.once("close", onEarlyClose);
}
