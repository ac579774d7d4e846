// Sends every request to the same host over HTTPS (a server's `httpsRedirect`).

import { httpsRedirectBlock } from "../../config/config-schema.js";
import { getHeader } from "../../http/headers.js";
import { definePlugin } from "../../plugins/registry.js";
import type { Answerer, ArrivingRequest, ServerLayer } from "./layer.js";

export class HttpsRedirectLayer implements ServerLayer {
  readonly name = "httpsRedirect";

  constructor(
    private readonly port: number,
    private readonly status: number,
  ) {}

  arrive(req: ArrivingRequest, answerer: Answerer): boolean {
    const ex = req.ex;
    const host = getHeader(ex.headers, "host");
    const headers = ["content-type", "text/plain; charset=utf-8", "via", "1.1 lintel"];
    if (!host) {
      answerer.answer(req, 400, headers, Buffer.from("a redirect to HTTPS needs a Host header\n"));
      return true;
    }
    const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
    const location = `https://${name}${this.port === 443 ? "" : `:${this.port}`}${ex.url}`;
    headers.push("location", location);
    answerer.answer(req, this.status, headers, Buffer.from(`Moved to ${location}\n`));
    return true;
  }
}

export const httpsRedirectLayer = definePlugin({
  category: "serverLayer",
  kind: "httpsRedirect",
  schema: httpsRedirectBlock,
  create: (config) => new HttpsRedirectLayer(config.port, Number(config.status)),
});
