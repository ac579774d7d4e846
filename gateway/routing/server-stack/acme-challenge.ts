// Answers ACME HTTP-01 validations (`/.well-known/acme-challenge/<token>`) from the
// store every replica shares, whichever replica ordered the certificate.

import { object } from "../../config/schema.js";
import { definePlugin } from "../../plugins/registry.js";
import type { Answerer, ArrivingRequest, ServerLayer } from "./layer.js";

const CHALLENGE_PATH = "/.well-known/acme-challenge/";
const HEADERS = ["content-type", "text/plain", "cache-control", "no-store"];

export class AcmeChallengeLayer implements ServerLayer {
  readonly name = "acmeChallenge";

  constructor(
    /** The key authorization for a token, if a validation for it is under way. */
    private readonly answerFor: (token: string) => Promise<string | undefined>,
  ) {}

  arrive(req: ArrivingRequest, answerer: Answerer): boolean {
    const url = req.ex.url;
    if (!url.startsWith(CHALLENGE_PATH)) return false;
    const token = url.slice(CHALLENGE_PATH.length).split("?")[0]!;
    void this.answerFor(token).then(
      (answer) =>
        answer === undefined
          ? answerer.answer(req, 404, HEADERS, Buffer.from("no such ACME challenge\n"))
          : answerer.answer(req, 200, HEADERS, Buffer.from(answer)),
      () => answerer.answer(req, 503, HEADERS, Buffer.from("the ACME store cannot be read now\n")),
    );
    return true;
  }
}

export const acmeChallengeLayer = definePlugin({
  category: "serverLayer",
  kind: "acmeChallenge",
  schema: object({}),
  // On a server given no ACME answers (a TLS one, or no ACME in the config) no
  // validation is ever under way: every challenge is answered 404.
  create: (_config, ctx) => new AcmeChallengeLayer(ctx.acmeHttp ?? (async () => undefined)),
});
