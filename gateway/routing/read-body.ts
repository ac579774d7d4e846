// Reads a request body of known length into one buffer (kept so a retry can send it
// again). The engine has already checked the length against maxRequestKB.

import type { Readable } from "node:stream";

export function readBody(body: Readable, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(length);
    let at = 0;
    body.on("data", (chunk: Buffer) => {
      // The engine frames the body by its Content-Length, so it cannot run over.
      at += chunk.copy(out, at);
    });
    body.once("end", () => resolve(at === length ? out : out.subarray(0, at)));
    body.once("error", reject);
    body.once("close", () => {
      if (at < length)
        reject(new Error("the client closed the connection before its body arrived"));
    });
  });
}
