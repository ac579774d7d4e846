// A small GET for what the ACME protocol client does not do itself: the directory's
// renewal information (RFC 9773) and on-demand `ask` endpoints. Bounded in time and size;
// HTTPS verified against the system roots plus any CA the config adds.

import { request as httpRequest } from "node:http";
import { Agent, type AgentOptions, request as httpsRequest } from "node:https";
import { createSecureContext, rootCertificates } from "node:tls";

export interface GetResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export type HttpGet = (url: string) => Promise<GetResponse>;

/** Answers larger than this are cut off: a renewal window or an `ask` answer is small. */
const MAX_BODY = 64 * 1024;

/**
 * The HTTPS agent for a CA's endpoints: the system roots plus `extraCaPem`, in one
 * secure context made once (a `ca` option instead would build one per connection, about
 * 20 ms of CPU each with the system's roots: 20 orders at once paid it again and again).
 */
export function caAgent(extraCaPem: string | undefined): Agent {
  if (!extraCaPem) return new Agent({ keepAlive: true });
  const secureContext = createSecureContext({ ca: [...rootCertificates, extraCaPem] });
  return new Agent({ keepAlive: true, secureContext } as AgentOptions);
}

export function httpGet(agent: Agent, timeoutMs: number): HttpGet {
  return (url) =>
    new Promise((resolve, reject) => {
      const u = new URL(url);
      const req =
        u.protocol === "https:"
          ? httpsRequest(u, { method: "GET", agent, headers: { "user-agent": "lintel" } })
          : httpRequest(u, { method: "GET", headers: { "user-agent": "lintel" } });
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`no answer from ${u.host} within ${timeoutMs} ms`)),
      );
      req.on("error", reject);
      req.on("response", (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          if (body.length < MAX_BODY) body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      });
      req.end();
    });
}

/** Retry-After as milliseconds from now (seconds or an HTTP date); undefined when absent or bad. */
export function retryAfterMs(
  value: string | string[] | undefined,
  now: number,
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === "") return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
