// What a retry sends as the request body. A body of known length up to the retry limit is
// read whole before the first attempt (Linkerd's rule); an HTTP/2 body of unknown length
// (a gRPC call's) streams through at once and a copy is kept while it stays under the
// limit, so a retry can send it again only if it ended, whole, before the retry.

import { PassThrough, Readable } from "node:stream";

export interface BodyReplay {
  /** The body for the first attempt. */
  first(): Readable | null;
  /** The body for another attempt, or undefined when it cannot be sent again. */
  again(): Readable | null | undefined;
}

/** A body read whole before the first attempt. */
export function keptBody(body: Buffer): BodyReplay {
  const make = () => (body.length > 0 ? Readable.from([body]) : null);
  return { first: make, again: make };
}

/** A body streamed through, with a copy kept up to `max` bytes. */
export class RecordedBody implements BodyReplay {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private readonly through = new PassThrough();

  constructor(body: Readable, max: number) {
    body.on("data", (chunk: Buffer) => {
      if (this.size <= max) {
        this.size += chunk.length;
        // Over the limit: the copy is dropped, the body only streams on.
        if (this.size > max) this.chunks.length = 0;
        else this.chunks.push(chunk);
      }
      if (!this.through.write(chunk)) body.pause();
    });
    this.through.on("drain", () => body.resume());
    body.once("end", () => {
      this.ended = true;
      this.through.end();
    });
    body.once("error", (e: Error) => this.through.destroy(e));
  }

  first(): Readable {
    return this.through;
  }

  again(): Readable | null | undefined {
    if (!this.ended || (this.chunks.length === 0 && this.size > 0)) return undefined;
    return this.size === 0 ? null : Readable.from([Buffer.concat(this.chunks, this.size)]);
  }
}
