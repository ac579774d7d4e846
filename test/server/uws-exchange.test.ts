// The uws exchange's response writing against a scripted stand-in for uws's HttpResponse:
// the cases real sockets reach only by chance, such as the upstream finishing while the
// last bytes of a length-framed body still wait for the client.

import { describe, expect, it } from "vitest";
import { UwsExchange, type UwsListenerContext } from "../../gateway/server/uws-engine.js";

/** uws's HttpResponse as far as the exchange uses it; tryEnd answers come from a script. */
class ScriptedResponse {
  offset = 0;
  closed = false;
  readonly sent: Buffer[] = [];
  writable: ((offset: number) => boolean) | undefined;
  /** How many bytes each tryEnd call takes (the rest meets backpressure). */
  readonly accept: number[] = [];

  onAborted(_fn: () => void) {}
  cork(fn: () => void) {
    fn();
  }
  writeStatus() {}
  writeHeader() {}
  getWriteOffset() {
    return this.offset;
  }
  tryEnd(chunk: ArrayBuffer | Buffer, total: number): [boolean, boolean] {
    const b = Buffer.from(chunk as Buffer);
    const n = Math.min(this.accept.shift() ?? b.length, b.length);
    this.sent.push(Buffer.from(b.subarray(0, n)));
    this.offset += n;
    return [n === b.length, this.offset === total];
  }
  onWritable(fn: (offset: number) => boolean) {
    this.writable = fn;
  }
  close() {
    this.closed = true;
  }
  end() {}
  endWithoutBody() {}
}

const request = {
  getCaseSensitiveMethod: () => "GET",
  getQuery: () => "",
  getUrl: () => "/",
  forEach: () => {},
};
const ctx: UwsListenerContext = {
  secure: false,
  ip: "127.0.0.1",
  port: 4140,
  proxyFrom: undefined,
};

function exchange(res: ScriptedResponse): UwsExchange {
  // biome-ignore lint/suspicious/noExplicitAny: a scripted stand-in for the native objects
  return new UwsExchange(res as any, request as any, ctx);
}

describe("uws exchange, length-framed responses", () => {
  it("sends the last bytes when the upstream ends while they wait for the client", () => {
    const res = new ScriptedResponse();
    const ex = exchange(res);
    ex.writeHead(200, [], 10);
    res.accept.push(5, 2); // all of the first chunk, then 2 bytes of the last
    expect(ex.write(Buffer.from("01234"))).toBe(true);
    const last = Buffer.from("56789");
    expect(ex.write(last)).toBe(false);
    last.fill(0x78); // the caller reuses its buffer: the exchange kept a copy
    let resumed = 0;
    ex.onWritable(() => resumed++);
    ex.end(); // the upstream has finished
    expect(res.closed).toBe(false);
    expect(res.writable!(res.offset)).toBe(true);
    expect(Buffer.concat(res.sent).toString()).toBe("0123456789");
    expect(res.closed).toBe(false);
    expect(resumed).toBe(0);
  });

  it("closes a response whose upstream ended short of its length, once the pending bytes are out", () => {
    const res = new ScriptedResponse();
    const ex = exchange(res);
    ex.writeHead(200, [], 10);
    res.accept.push(2);
    expect(ex.write(Buffer.from("0123"))).toBe(false);
    ex.onWritable(() => {});
    ex.end();
    expect(res.closed).toBe(false);
    expect(res.writable!(res.offset)).toBe(true);
    expect(Buffer.concat(res.sent).toString()).toBe("0123");
    // 4 of 10 bytes: the client must see the response cut, not wait for the rest.
    expect(res.closed).toBe(true);
  });
});
