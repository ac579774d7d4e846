// Server-Sent Events through the default engine: each event reaches the client when the
// upstream sends it (nothing waits for the stream to end or a buffer to fill), over
// HTTP/1.1 and HTTP/2, and a client that leaves ends the upstream's stream.

import { request } from "node:http";
import { connect } from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, eventually, onCleanup, startLintelTo, startUpstream } from "./harness.js";

afterEach(cleanup);

/** An upstream that sends an event every 100 ms until the client goes away. */
async function events() {
  let open = 0;
  const up = await startUpstream(
    "up",
    (req, res) => {
      open++;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      let n = 0;
      const tick = setInterval(() => res.write(`data: event ${++n}\n\n`), 100);
      req.socket.once("close", () => {
        clearInterval(tick);
        open--;
      });
    },
    { streaming: true },
  );
  const l = await startLintelTo(up.port);
  return { port: l.port(), open: () => open };
}

/**
 * The stream never ends and its events are small, so a proxy that held them (until the
 * end, or until a buffer fills) would deliver none; four sent 100 ms apart arrive spread
 * over about 300 ms.
 */
function spread(times: number[]): boolean {
  return times.length >= 4 && times[3]! - times[0]! >= 150;
}

describe("Server-Sent Events through the default engine", () => {
  it("delivers each event as it is sent over HTTP/1.1, and a client leaving ends the stream", async () => {
    const { port, open } = await events();
    const times: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = request(
        { port, host: "127.0.0.1", path: "/stream", headers: { host: "events" } },
        (res) => {
          expect(res.headers["content-type"]).toBe("text/event-stream");
          res.on("data", (d: Buffer) => {
            for (const _ of d.toString().matchAll(/data: event/g)) times.push(performance.now());
            if (times.length >= 4) {
              req.destroy();
              resolve();
            }
          });
        },
      );
      req.on("error", (e) => (times.length >= 4 ? resolve() : reject(e)));
      req.end();
    });
    expect(spread(times)).toBe(true);
    await eventually(() => open() === 0, 3000, "the upstream's stream to end");
  });

  it("delivers each event as it is sent over HTTP/2", async () => {
    const { port } = await events();
    const session = connect(`http://127.0.0.1:${port}`);
    onCleanup(() => {
      session.destroy();
    });
    const times: number[] = [];
    await new Promise<void>((resolve) => {
      const stream = session.request({ ":path": "/stream", ":authority": "events" });
      stream.on("data", (d: Buffer) => {
        for (const _ of d.toString().matchAll(/data: event/g)) times.push(performance.now());
        if (times.length >= 4) {
          stream.close();
          resolve();
        }
      });
    });
    expect(spread(times)).toBe(true);
  });
});
