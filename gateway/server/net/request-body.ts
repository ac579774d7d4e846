// A request body as the router reads it: a Readable fed by the connection's body decoder.
// When its buffer is full the connection stops reading the socket (backpressure toward
// the client) until the router reads on.

import { Readable } from "node:stream";

/** What the body asks of its connection. */
export interface BodySource {
  pauseBody(): void;
  resumeBody(): void;
}

const ignore = () => {};

export class RequestBody extends Readable {
  private paused = false;

  constructor(private readonly source: BodySource) {
    super({ highWaterMark: 64 * 1024 });
    // A client that leaves mid-body destroys this stream with an error; with nobody
    // reading the body it must not become an uncaught exception.
    this.on("error", ignore);
  }

  /** Bytes from the connection (a view valid only during the call: copied). */
  feed(chunk: Buffer): void {
    if (!this.push(Buffer.from(chunk)) && !this.paused) {
      this.paused = true;
      this.source.pauseBody();
    }
  }

  override _read(): void {
    if (this.paused) {
      this.paused = false;
      this.source.resumeBody();
    }
  }
}
