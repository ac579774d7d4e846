// Runs a list of layers over a request, one after the other: a layer that decides later
// (LATER) has the stack resume after it when it calls `proceed`. How far a request got is
// kept on the request (in the field the stack names), so that the layers it passed, and
// only those, give back what they took when it finishes, last first.

import type { Answerer, ArrivingRequest, ServerLayer, Verdict } from "./layer.js";

/** A request with how many layers of each stack it has passed. */
export interface StackedRequest extends ArrivingRequest {
  /** Layers of the server stack passed (or deciding). */
  passed: number;
  /** Layers of the service's stack passed (or deciding). */
  servicePassed: number;
}

export type StackSlot = "passed" | "servicePassed";

export class LayerStack {
  constructor(
    readonly layers: readonly ServerLayer[],
    private readonly slot: StackSlot,
  ) {}

  /**
   * Runs the layers the request has not met yet: false when it passed them all, true when
   * one answers it, LATER when one decides later. A ProxyError a layer throws refuses it.
   */
  arrive(req: StackedRequest, answerer: Answerer): Verdict {
    const layers = this.layers;
    for (let i = req[this.slot]; i < layers.length; i++) {
      const verdict = layers[i]!.arrive(req, answerer);
      req[this.slot] = i + 1;
      if (verdict !== false) return verdict;
    }
    return false;
  }

  /** The request is finished: the layers it met give back what they took, last first. */
  leave(req: StackedRequest): void {
    const layers = this.layers;
    for (let i = req[this.slot] - 1; i >= 0; i--) layers[i]!.leave?.(req);
  }
}

/** A service with no layers of its own. */
export const NO_LAYERS = new LayerStack([], "servicePassed");
