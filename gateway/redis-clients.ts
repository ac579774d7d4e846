// One Redis connection per address (and password and command timeout) for the kinds of a
// thread that share state through Redis (rate limits), handed to them by their context so
// no kind opens its own. Commands fail fast when Redis is away (no offline queue, no
// resend): the kinds have their own answer to an outage and never wait on a dead server.

import { Redis } from "ioredis";

const MAX_RECONNECT_DELAY_MS = 2000;

export interface RedisRef {
  readonly url: string;
  readonly password?: string;
  /** How long a command may take before it fails. */
  readonly commandTimeoutMs: number;
}

export class RedisClients {
  private readonly clients = new Map<string, Redis>();

  get(ref: RedisRef): Redis {
    const key = JSON.stringify([ref.url, ref.password, ref.commandTimeoutMs]);
    let client = this.clients.get(key);
    if (client === undefined) {
      client = new Redis(ref.url, {
        password: ref.password,
        connectTimeout: Math.max(ref.commandTimeoutMs, 1000),
        commandTimeout: ref.commandTimeoutMs,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
      });
      // Errors reach the commands that fail; the connection itself retries on its own.
      client.on("error", () => {});
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * Waits, at most `timeoutMs`, until every connection is up or has failed once: a server
   * starts counting in Redis from its first request when Redis is there.
   */
  async connected(timeoutMs: number): Promise<void> {
    const waits = [...this.clients.values()]
      .filter((c) => c.status === "connecting" || c.status === "connect" || c.status === "wait")
      .map(
        (c) =>
          new Promise<void>((resolve) => {
            const done = () => {
              c.off("ready", done);
              c.off("error", done);
              resolve();
            };
            c.once("ready", done);
            c.once("error", done);
          }),
      );
    if (waits.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(waits),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  close(): void {
    for (const c of this.clients.values()) c.disconnect();
    this.clients.clear();
  }
}
