// Raw HTTP/2 frames for tests that must send what no well-behaved client sends (floods,
// resets, oversize header blocks): just enough framing and HPACK (literals, no Huffman).

import { connect, type Socket } from "node:net";

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  GOAWAY: 7,
  CONTINUATION: 9,
};
export const FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 };
export const ERROR = { NO_ERROR: 0, CANCEL: 8, REFUSED_STREAM: 7 };

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** A literal header field without indexing (RFC 7541 §6.2.2), short names and values. */
export function literal(name: string, value: string): Buffer {
  if (name.length > 126 || value.length > 126) throw new Error("literal() takes short strings");
  return Buffer.concat([
    Buffer.from([0, name.length]),
    Buffer.from(name),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

/** `GET /` over http to `authority`, plus `extra` fields. */
export function getBlock(authority: string, extra: Buffer[] = []): Buffer {
  // :method GET, :path /, :scheme http from the static table (indexes 2, 4, 6).
  return Buffer.concat([
    Buffer.from([0x82, 0x84, 0x86]),
    literal(":authority", authority),
    ...extra,
  ]);
}

export function rstStream(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
}

export interface RawH2 {
  readonly socket: Socket;
  /** Frames received so far by type, and the first RST_STREAM and GOAWAY codes. */
  readonly seen: Map<number, number>;
  readonly rstCodes: number[];
  goaway: number | undefined;
  /** Resolves when the server closed the connection (or after `ms`, with false). */
  closed(ms: number): Promise<boolean>;
}

/** A cleartext HTTP/2 connection (prior knowledge) that has sent its preface and SETTINGS. */
export function rawH2(port: number): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let isClosed = false;
    const waiters: (() => void)[] = [];
    const raw: RawH2 = {
      socket,
      seen: new Map(),
      rstCodes: [],
      goaway: undefined,
      closed: (ms) =>
        new Promise((r) => {
          if (isClosed) return r(true);
          const t = setTimeout(() => r(false), ms);
          waiters.push(() => {
            clearTimeout(t);
            r(true);
          });
        }),
    };
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        raw.seen.set(type, (raw.seen.get(type) ?? 0) + 1);
        if (type === FRAME.RST_STREAM) raw.rstCodes.push(buf.readUInt32BE(9));
        if (type === FRAME.GOAWAY && raw.goaway === undefined) raw.goaway = buf.readUInt32BE(13);
        buf = buf.subarray(9 + len);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      isClosed = true;
      for (const w of waiters.splice(0)) w();
    });
    socket.once("connect", () => {
      socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      socket.write(frame(FRAME.SETTINGS, 0, 0));
      resolve(raw);
    });
    socket.once("error", reject);
  });
}
