// HTTP/2 flow control through the default engine: a client that stops reading a large
// response holds lintel's memory for it bounded, because lintel stops reading the
// upstream (the upstream sees backpressure), and the whole body arrives once the client
// reads again.

import { connect } from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, eventually, onCleanup, startLintelTo, startUpstream } from "./harness.js";

afterEach(cleanup);

const CHUNK = Buffer.alloc(64 * 1024, 7);
/** 64 MiB in all: far more than any buffer on the way may hold. */
const CHUNKS = 1024;

describe("HTTP/2 flow control on the default engine", () => {
  it("a client that stops reading stops the upstream; reading again gets the whole body", async () => {
    let written = 0;
    const up = await startUpstream(
      "up",
      (_req, res) => {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        let sent = 0;
        const more = () => {
          while (sent < CHUNKS) {
            sent++;
            written += CHUNK.length;
            if (!res.write(CHUNK)) {
              res.once("drain", more);
              return;
            }
          }
          res.end();
        };
        more();
      },
      { streaming: true },
    );
    const l = await startLintelTo(up.port);
    const session = connect(`http://127.0.0.1:${l.port()}`);
    onCleanup(() => {
      session.destroy();
    });
    const stream = session.request({ ":path": "/big", ":authority": "big" });
    stream.pause();
    await new Promise((r) => stream.once("response", r));
    // The client reads nothing: the upstream is soon held back.
    await new Promise((r) => setTimeout(r, 1500));
    const stalledAt = written;
    await new Promise((r) => setTimeout(r, 500));
    expect({ stalled: written === stalledAt, boundedMiB: written < 16 * 1024 * 1024 }).toEqual({
      stalled: true,
      boundedMiB: true,
    });
    let received = 0;
    stream.on("data", (d: Buffer) => {
      received += d.length;
    });
    stream.resume();
    await eventually(() => received === CHUNK.length * CHUNKS, 20_000, "the whole body");
    expect(received).toBe(CHUNK.length * CHUNKS);
  }, 30_000);
});
