// Bodies stream through lintel instead of being buffered, on both engines: 1 GiB up and
// down with lintel's peak RSS bounded, and a client that stops reading slows the upstream
// down (backpressure across both hops) rather than making lintel hold the response.
// lintel runs as a child process so its memory can be read from /proc/PID/status.

import { request, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { type ChildLintel, MB, mb, memoryOf, sleep, startChildLintel, within } from "./child.js";
import { cleanup, ENGINES, type EngineName, eventually, startUpstream } from "./harness.js";

afterEach(cleanup);

const GiB = 1024 * 1024 * 1024;
/** The largest Content-Length the uws engine accepts (see docs/engines.md). */
const UWS_MAX_CONTENT_LENGTH = 999_999_999;
/** lintel's peak RSS must stay under this while 1 GiB passes through it. */
const RSS_BOUND = 250 * MB;
/** One 64 KiB buffer, reused for every chunk sent by the clients and upstreams here. */
const CHUNK = Buffer.alloc(64 * 1024, 0x6c);

function config(engine: EngineName, upstreamPort: number) {
  return (port: number, adminPort: number) => `
admin: {ip: 127.0.0.1, port: ${adminPort}}
routers:
- protocol: http
  label: stream
  dtab: /svc => /$/inet/127.0.0.1/${upstreamPort}
  servers: [{ip: 127.0.0.1, port: ${port}, engine: ${engine}}]
`;
}

/** `total` bytes from the reused buffer, produced only as fast as they are consumed. */
function source(total: number): Readable {
  let left = total;
  return new Readable({
    highWaterMark: 256 * 1024,
    read() {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return;
      }
      this.push(null);
    },
  });
}

/**
 * Writes `total` bytes on `res` honouring backpressure (false from write → wait for
 * 'drain'); `progress.written` counts the bytes handed to `res.write`.
 */
function writeBytes(res: ServerResponse, total: number, progress = { written: 0 }): void {
  const step = () => {
    while (progress.written < total) {
      if (res.destroyed) return;
      const n = Math.min(total - progress.written, CHUNK.length);
      progress.written += n;
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        res.once("drain", step);
        return;
      }
    }
    res.end();
  };
  step();
}

/** Sends `total` bytes as a POST body (length-framed or chunked); resolves with the answer. */
function upload(
  port: number,
  total: number,
  framing: "content-length" | "chunked",
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: "sink" };
    if (framing === "content-length") headers["content-length"] = String(total);
    else headers["transfer-encoding"] = "chunked";
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: "/upload", headers, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode!, text }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(50_000, () => req.destroy(new Error("upload timed out")));
    source(total).pipe(req);
  });
}

/** GETs `path` and counts the body bytes without keeping them. */
function download(port: number, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, headers: { host: "source" }, agent: false },
      (res) => {
        let bytes = 0;
        res.on("data", (d: Buffer) => {
          bytes += d.length;
        });
        res.on("end", () => resolve({ status: res.statusCode!, bytes }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(50_000, () => req.destroy(new Error("download timed out")));
    req.end();
  });
}

function report(engine: EngineName, what: string, l: ChildLintel, before: number, ms: number) {
  const after = memoryOf(l.pid);
  console.log(
    `[streaming] ${engine} ${what}: VmHWM before ${mb(before)}, after ${mb(after.hwm)}; VmRSS after ${mb(after.rss)}; ${(ms / 1000).toFixed(1)} s (${(GiB / MB / (ms / 1000)).toFixed(0)} MB/s)`,
  );
  return after;
}

describe.each(ENGINES)("streaming through the %s engine", (engine) => {
  for (const framing of ["content-length", "chunked"] as const) {
    // uws refuses a Content-Length of 10 digits or more (a documented limit, tested below), so
    // its content-length upload sends the largest length it takes, 999 999 999 bytes.
    const size = engine === "uws" && framing === "content-length" ? UWS_MAX_CONTENT_LENGTH : GiB;
    it(`streams a ~1 GiB upload (${framing}) with bounded memory`, async () => {
      let received = 0;
      let framingSeen: string | undefined;
      const up = await startUpstream(
        "sink",
        (req, res) => {
          framingSeen = req.headers["content-length"] ?? req.headers["transfer-encoding"];
          req.on("data", (c: Buffer) => {
            received += c.length;
          });
          req.on("end", () => {
            res.writeHead(200, { "content-type": "text/plain" });
            res.end(String(received));
          });
        },
        { streaming: true },
      );
      const l = await startChildLintel(config(engine, up.port));
      const before = memoryOf(l.pid).hwm;
      const t0 = performance.now();
      const r = await upload(l.port, size, framing);
      const after = report(engine, `upload ${framing}`, l, before, performance.now() - t0);
      expect(r.status).toBe(200);
      expect(r.text).toBe(String(size));
      expect(received).toBe(size);
      expect(framingSeen).toBe(framing === "content-length" ? String(size) : "chunked");
      expect(after.hwm).toBeLessThan(RSS_BOUND);
    }, 90_000);

    it(`streams a 1 GiB download (${framing}) with bounded memory`, async () => {
      const up = await startUpstream(
        "source",
        (_req, res) => {
          if (framing === "content-length") res.writeHead(200, { "content-length": GiB });
          else res.writeHead(200, { "content-type": "application/octet-stream" });
          writeBytes(res, GiB);
        },
        { streaming: true },
      );
      const l = await startChildLintel(config(engine, up.port));
      const before = memoryOf(l.pid).hwm;
      const t0 = performance.now();
      const r = await download(l.port, "/download");
      const after = report(engine, `download ${framing}`, l, before, performance.now() - t0);
      expect(r.status).toBe(200);
      expect(r.bytes).toBe(GiB);
      expect(after.hwm).toBeLessThan(RSS_BOUND);
    }, 90_000);
  }

  it("slows the upstream down to a client that stops reading, and aborts it when the client goes", async () => {
    const LIMIT = 512 * MB;
    const progress = { written: 0 };
    let upstreamClosed: { finished: boolean } | undefined;
    const up = await startUpstream(
      "source",
      (_req, res) => {
        res.on("close", () => {
          upstreamClosed = { finished: res.writableFinished };
        });
        res.writeHead(200, { "content-type": "application/octet-stream" });
        writeBytes(res, LIMIT, progress);
      },
      { streaming: true },
    );
    const l = await startChildLintel(config(engine, up.port));
    const before = memoryOf(l.pid).hwm;
    let read = 0;
    let clientError: Error | undefined;
    const req = request({
      host: "127.0.0.1",
      port: l.port,
      path: "/slow",
      headers: { host: "source" },
      agent: false,
    });
    req.on("error", (e) => {
      clientError = e;
    });
    const paused = new Promise<void>((resolve) => {
      req.on("response", (res) => {
        res.on("error", () => {});
        res.on("data", (d: Buffer) => {
          read += d.length;
          if (read >= MB && !res.isPaused()) {
            res.pause();
            resolve();
          }
        });
      });
    });
    req.end();
    expect(await within(paused, 10_000)).toBe(true);
    await sleep(2000);
    const writtenWhilePaused = progress.written;
    const mem = memoryOf(l.pid);
    console.log(
      `[streaming] ${engine} slow client: client read ${mb(read)}, upstream wrote ${mb(writtenWhilePaused)} in 2 s; lintel VmHWM before ${mb(before)}, now ${mb(mem.hwm)}, VmRSS ${mb(mem.rss)}`,
    );
    expect(clientError).toBeUndefined();
    // Only socket buffers and lintel's bounded buffers sit between the upstream and the client.
    expect(writtenWhilePaused).toBeLessThan(64 * MB);
    expect(mem.hwm).toBeLessThan(RSS_BOUND);
    expect(upstreamClosed).toBeUndefined();
    // The client goes away: lintel must abort the upstream response.
    req.destroy();
    await eventually(() => upstreamClosed !== undefined, 2000, "the upstream response to close");
    expect(upstreamClosed!.finished).toBe(false);
    expect(progress.written).toBeLessThan(LIMIT);
  }, 30_000);
});
