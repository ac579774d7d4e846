// The server stack's contract: one concern per layer, run for each request that arrives
// on a listener before it is identified. A layer looks at the request and lets it pass,
// refuses it (throws a ProxyError: the router answers with it), or answers it itself.
// Each layer is made by a `serverLayer` kind: the built-in ones, and a server's `layers`.

import type { ServerExchange } from "../../http/exchange.js";

/** A request as the server stack sees it (the router's per-request state). */
export interface ArrivingRequest {
  readonly ex: ServerExchange;
}

/** How a layer answers a request itself: written, counted and logged like any answer. */
export interface Answerer {
  answer(req: ArrivingRequest, status: number, headers: readonly string[], body: Buffer): void;
}

export interface ServerLayer {
  /** Names the layer in `describe` output and in errors. */
  readonly name: string;
  /**
   * Looks at an arriving request: false lets it pass to the next layer, true means the
   * layer answers it (now or later, through `answerer`); a thrown ProxyError refuses it.
   */
  arrive(req: ArrivingRequest, answerer: Answerer): boolean;
  /** The request is finished: gives back what `arrive` took (called only after it passed). */
  leave?(req: ArrivingRequest): void;
}
