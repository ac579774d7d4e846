// Writes held to the end of the event loop's turn: small ones wait for the check phase and
// leave together, a large one (and what was held before it) leaves at once, and releasing
// sends what is held, in order.

import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { holdWrites, releaseWrites } from "../../gateway/http/write-batching.js";

let server: Server | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
});

/** A connected pair on loopback: what `client` writes arrives at `received`. */
async function pair(): Promise<{ client: Socket; received: () => string; ended: Promise<void> }> {
  let got = "";
  let endedResolve!: () => void;
  const ended = new Promise<void>((r) => {
    endedResolve = r;
  });
  server = createServer((peer) => {
    sockets.push(peer);
    peer.setEncoding("latin1");
    peer.on("data", (d: string) => {
      got += d;
    });
    peer.on("close", endedResolve);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const client = connect(port, "127.0.0.1");
  sockets.push(client);
  await once(client, "connect");
  return { client, received: () => got, ended };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

describe("held writes", () => {
  it("keeps small writes until the end of the turn, then sends them in order", async () => {
    const { client, received } = await pair();
    holdWrites(client, 5);
    client.write("head;");
    holdWrites(client, 5);
    client.write("body;");
    // Nothing has reached the kernel yet: both writes wait in the socket.
    expect(client.writableLength).toBe(10);
    expect(client.writableCorked).toBe(1);
    await nextTurn();
    expect(client.writableCorked).toBe(0);
    await until(() => received().length === 10);
    expect(received()).toBe("head;body;");
  });

  it("sends a large write at once, with what was held before it", async () => {
    const { client, received } = await pair();
    holdWrites(client, 6);
    client.write("small;");
    const large = "x".repeat(64 * 1024);
    holdWrites(client, large.length);
    expect(client.writableCorked).toBe(0);
    client.write(large);
    await until(() => received().length === 6 + large.length);
    expect(received().startsWith("small;x")).toBe(true);
  });

  it("releases on demand, so bytes written before a destroy still leave", async () => {
    const { client, received, ended } = await pair();
    holdWrites(client, 8);
    client.write("partial;");
    releaseWrites(client);
    client.destroy();
    await ended;
    expect(received()).toBe("partial;");
  });

  it("does nothing at the end of the turn to a socket already released or destroyed", async () => {
    const { client } = await pair();
    holdWrites(client, 1);
    client.write("a");
    client.destroy();
    await nextTurn();
    expect(client.destroyed).toBe(true);
  });
});
