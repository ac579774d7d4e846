// The listener engines by the name a server's `engine` field gives. `node` (Node's own
// HTTP server, the default until the net engine) is now served by the net engine, which
// does everything it did: configs that name it keep running.

import type { Engine, ExchangeHandler, Listener, ListenerOptions } from "./listener.js";
import { listenNet } from "./net/net-engine.js";
import { listenUws } from "./uws-engine.js";

export type Listen = (opts: ListenerOptions, handler: ExchangeHandler) => Promise<Listener>;

export const LISTENERS: Readonly<Record<Engine, Listen>> = {
  net: listenNet,
  node: listenNet,
  uws: listenUws,
};
