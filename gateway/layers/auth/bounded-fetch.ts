// A request from a layer to a service it depends on (an auth service, a JWKS endpoint),
// over node:http / node:https, bounded: at most `timeoutMs` from the start to the end of
// the answer's body, and at most `maxBodyBytes` of that body kept. It settles exactly
// once: with the answer, or with a FetchError saying why there is none. A kept-alive
// connection the service closed just as it was reused is retried once on a new one
// (Node's documented race), within the same time bound.

import {
  type ClientRequest,
  type Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from "node:http";
import { type Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Clock, Timer } from "../../clock.js";

export interface BoundedRequest {
  readonly url: URL;
  readonly method: string;
  /** Flat [name, value, ...], without Host (it is `url`'s). */
  readonly headers: readonly string[];
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  /** Whether an answer with this status has its body kept (else it is read and dropped). */
  readonly keepBody: (status: number) => boolean;
  /** The agent for `url`'s scheme (keep-alive connections); undefined: a new connection. */
  readonly agent?: HttpAgent | HttpsAgent;
}

export interface BoundedResponse {
  readonly status: number;
  /** Flat [name, value, ...], names lower-case. */
  readonly headers: string[];
  readonly body: Buffer;
}

export type FetchFailure = "timeout" | "unreachable" | "too_large";

export class FetchError extends Error {
  constructor(
    readonly reason: FetchFailure,
    message: string,
  ) {
    super(message);
    this.name = "FetchError";
  }
}

const EMPTY = Buffer.alloc(0);
export const KEEP_BODY = () => true;

export function boundedFetch(r: BoundedRequest, clock: Clock): Promise<BoundedResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let req: ClientRequest | undefined;
    const finish = () => {
      settled = true;
      clock.clearTimeout(timer);
    };
    const fail = (e: FetchError) => {
      if (settled) return;
      finish();
      req?.destroy();
      reject(e);
    };
    const timer: Timer = clock.setTimeout(
      () => fail(new FetchError("timeout", `no answer within ${r.timeoutMs} ms`)),
      r.timeoutMs,
    );
    timer.unref?.();
    const onResponse = (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const keep = r.keepBody(status);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (d: Buffer) => {
        if (!keep) return;
        size += d.length;
        if (size > r.maxBodyBytes) {
          fail(new FetchError("too_large", `its answer's body is over ${r.maxBodyBytes} bytes`));
          return;
        }
        chunks.push(d);
      });
      res.on("end", () => {
        if (settled) return;
        finish();
        const raw = res.rawHeaders;
        const headers: string[] = new Array(raw.length);
        for (let i = 0; i < raw.length; i += 2) {
          headers[i] = raw[i]!.toLowerCase();
          headers[i + 1] = raw[i + 1]!;
        }
        resolve({ status, headers, body: chunks.length === 0 ? EMPTY : Buffer.concat(chunks) });
      });
      res.on("error", (e) => fail(new FetchError("unreachable", e.message)));
    };
    const send = (retry: boolean): void => {
      const options: RequestOptions = {
        method: r.method,
        // Given as a list, the fields are sent as they are: Node adds no Host then.
        headers: ["host", r.url.host, ...r.headers],
        agent: r.agent,
        // The answer's fields are bounded as a client's are by default.
        maxHeaderSize: 16 * 1024,
      };
      const sent =
        r.url.protocol === "https:"
          ? httpsRequest(r.url, options, onResponse)
          : httpRequest(r.url, options, onResponse);
      req = sent;
      sent.on("error", (e: NodeJS.ErrnoException) => {
        if (settled) return;
        if (retry && sent.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE")) {
          trySend(false);
          return;
        }
        fail(new FetchError("unreachable", e.code ?? e.message));
      });
      sent.end();
    };
    const trySend = (retry: boolean) => {
      try {
        send(retry);
      } catch (e) {
        // A field value Node refuses to send (it checks them as the request is made).
        fail(new FetchError("unreachable", (e as Error).message));
      }
    };
    trySend(true);
  });
}
