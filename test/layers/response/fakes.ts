// Test doubles for the response layers' unit tests: a scripted client side (what the
// response writer did to it), the upstream's control, a request as layers see it, and a
// config decoded the way lintel decodes one.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { UpstreamControl } from "../../../gateway/client/http1/connection.js";
import { formatConfigError } from "../../../gateway/config/load.js";
import type { PluginConfig } from "../../../gateway/config/plugin-schema.js";
import { CidrSet } from "../../../gateway/http/cidr.js";
import type { ServerExchange } from "../../../gateway/http/exchange.js";
import { silentLogger } from "../../../gateway/log.js";
import type { ServerLayerContext } from "../../../gateway/plugins/types.js";
import type { ArrivingRequest } from "../../../gateway/routing/server-stack/layer.js";
import { loadLintelConfig } from "../../../gateway/setup.js";
import { Registry } from "../../../gateway/telemetry/registry.js";
import { layerServices, noServices } from "../../support/plugin-services.js";

export class FakeExchange implements ServerExchange {
  readonly url = "/";
  readonly httpVersion = "1.1";
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 1;
  readonly clientAddress = "127.0.0.1";
  readonly clientPort = 1;
  readonly localAddress = "127.0.0.1";
  readonly localPort = 2;
  readonly contentLength = undefined;
  readonly hasBody = false;
  readonly condemned = false;
  aborted = false;
  head: { status: number; headers: readonly string[]; length: number | undefined } | undefined;
  readonly written: Buffer[] = [];
  ended = false;
  destroyed = false;
  /** write() answers this (false: the client is slow). */
  writable = true;
  private abortCbs: (() => void)[] = [];
  private writableCbs: (() => void)[] = [];

  constructor(
    readonly method: string,
    public headers: readonly string[],
    readonly secure = false,
  ) {}
  replaceHeaders(headers: readonly string[]): void {
    this.headers = headers;
  }
  body(): Readable {
    throw new Error("no body");
  }
  onAbort(cb: () => void): void {
    this.abortCbs.push(cb);
  }
  writeHead(status: number, headers: readonly string[], length: number | undefined): void {
    this.head = { status, headers: [...headers], length };
  }
  write(chunk: Buffer): boolean {
    this.written.push(Buffer.from(chunk));
    return this.writable;
  }
  onWritable(cb: () => void): void {
    this.writableCbs.push(cb);
  }
  end(): void {
    this.ended = true;
  }
  respond(): void {
    throw new Error("not expected");
  }
  destroy(): void {
    this.destroyed = true;
  }
  closeAfterResponse(): void {}
  /** The client can take more. */
  drain(): void {
    this.writable = true;
    for (const cb of this.writableCbs.splice(0)) cb();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.written);
  }
  /** The head's value of `name` (the first), as the client got it. */
  field(name: string): string | undefined {
    const h = this.head?.headers ?? [];
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return undefined;
  }
}

export class FakeControl implements UpstreamControl {
  resumes = 0;
  aborted: Error | undefined;
  abort(err: Error): void {
    this.aborted = err;
  }
  resume(): void {
    this.resumes++;
  }
}

/** A request as the layers see it, on `ex`. */
export function arriving(ex: ServerExchange): ArrivingRequest {
  return {
    ex,
    server: { trustedProxies: new CidrSet([]) },
    service: undefined,
    client: undefined,
    responseHeaders: undefined,
    dropResponseFields: undefined,
    claims: undefined,
    compression: undefined,
  };
}

/** A layer context with its own metrics registry (`metrics`). */
export function layerContext(metrics = new Registry()): ServerLayerContext {
  return {
    ...noServices,
    ...layerServices(),
    metrics,
    log: silentLogger,
    routerLabel: "r",
    limits: {
      maxTargetBytes: 1024,
      maxHeaderBytes: 8192,
      maxHeaderCount: 50,
      maxBodyBytes: undefined,
    },
  };
}

/**
 * The `layers` of a server written as `layers` (YAML flow), decoded as lintel decodes a
 * config: the decoded layers, or the config errors as text.
 */
export async function decodeLayers(
  layers: string,
): Promise<{ layers: readonly PluginConfig<"serverLayer">[] } | { errors: string }> {
  const dir = mkdtempSync(join(tmpdir(), "lintel-resp-"));
  try {
    const f = join(dir, "c.yaml");
    writeFileSync(f, `routers:\n- protocol: http\n  servers:\n  - {port: 0, layers: ${layers}}\n`);
    const r = await loadLintelConfig(f);
    if (!r.ok) return { errors: r.errors.map(formatConfigError).join("\n") };
    return { layers: r.config.routers[0]!.servers[0]!.layers ?? [] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits for zlib (on the thread pool, slower on a busy machine) to get `cond` true, up to 2 s. */
export async function until(cond: () => boolean): Promise<void> {
  for (let waited = 0; !cond() && waited < 2000; waited += 10)
    await new Promise((r) => setTimeout(r, 10));
}
