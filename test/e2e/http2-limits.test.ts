// The known HTTP/2 attacks against the default engine, sent as raw frames: more streams
// than announced, rapid reset (CVE-2023-44487), CONTINUATION floods (CVE-2024-27316 and
// kin), and a header list over the limit. Each is answered (REFUSED_STREAM, or a GOAWAY
// after which the connection carries nothing more) without the upstream seeing the flood,
// and lintel keeps serving others.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import {
  ERROR,
  FLAG,
  FRAME,
  frame,
  getBlock,
  literal,
  rawH2,
  rstStream,
} from "../support/h2-frames.js";
import { cleanup, startLintelTo, startUpstream } from "./harness.js";

afterEach(cleanup);

const run = promisify(execFile);

/** lintel in front of an upstream that holds every request for 2 s (streams stay open). */
async function edge() {
  const up = await startUpstream(
    "up",
    (_req, res) => {
      setTimeout(() => res.end("ok"), 2000);
    },
    { streaming: true },
  );
  const l = await startLintelTo(up.port);
  return { up, port: l.port() };
}

/** lintel still answers a well-behaved HTTP/2 client. */
async function stillServes(port: number): Promise<string> {
  const { stdout } = await run("curl", [
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "--max-time",
    "5",
    "--http2-prior-knowledge",
    `http://127.0.0.1:${port}/after`,
  ]);
  return stdout;
}

describe("HTTP/2 attacks on the default engine", () => {
  it("refuses streams over the 100 it announces (REFUSED_STREAM)", async () => {
    const { up, port } = await edge();
    const h2 = await rawH2(port);
    for (let i = 0; i < 150; i++)
      h2.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, getBlock("up")));
    await new Promise((r) => setTimeout(r, 500));
    expect(h2.rstCodes.filter((c) => c === ERROR.REFUSED_STREAM)).toHaveLength(50);
    expect(up.seen.length).toBeLessThanOrEqual(100);
    h2.socket.destroy();
  });

  it("closes a connection that opens and resets streams in a flood (rapid reset)", async () => {
    const { up, port } = await edge();
    const h2 = await rawH2(port);
    for (let i = 0; i < 5000; i++) {
      const id = 1 + 2 * i;
      h2.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, getBlock("up")));
      h2.socket.write(rstStream(id, ERROR.CANCEL));
    }
    await h2.closed(2000);
    expect(h2.goaway).toBeDefined();
    // Far fewer than the 5000 requests reached the upstream.
    expect(up.seen.length).toBeLessThan(200);
    expect(await stillServes(port)).toBe("200");
  });

  it("closes a connection that floods CONTINUATION frames", async () => {
    const { up, port } = await edge();
    const h2 = await rawH2(port);
    h2.socket.write(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, getBlock("up")));
    for (let i = 0; i < 20_000 && !h2.socket.destroyed; i++) {
      h2.socket.write(
        frame(FRAME.CONTINUATION, 0, 1, literal(`x-junk-${i % 100}`, "y".repeat(50))),
      );
    }
    expect(await h2.closed(3000)).toBe(true);
    expect(h2.goaway).toBeDefined();
    expect(up.seen).toHaveLength(0);
    expect(await stillServes(port)).toBe("200");
  });

  it("refuses a header list over the limit, and nothing reaches the upstream", async () => {
    const { up, port } = await edge();
    const h2 = await rawH2(port);
    const fields: Buffer[] = [];
    // About 76 KB of fields, over the 64 KB header list lintel announces.
    for (let i = 0; i < 600; i++) fields.push(literal(`x-h${i}`, "v".repeat(120)));
    const block = getBlock("up", fields);
    const parts: Buffer[] = [];
    for (let at = 0; at < block.length; at += 16_000) parts.push(block.subarray(at, at + 16_000));
    parts.forEach((p, i) => {
      const flags =
        (i === 0 ? FLAG.END_STREAM : 0) | (i === parts.length - 1 ? FLAG.END_HEADERS : 0);
      h2.socket.write(frame(i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION, flags, 1, p));
    });
    // The stream is refused (RST_STREAM ENHANCE_YOUR_CALM), or the connection goes away.
    await h2.closed(1000);
    expect(h2.rstCodes.length > 0 || h2.goaway !== undefined).toBe(true);
    expect(up.seen).toHaveLength(0);
    expect(await stillServes(port)).toBe("200");
  });
});
