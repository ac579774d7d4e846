// The listener engines by the name a server's `engine` field gives.

import type { Engine, ExchangeHandler, Listener, ListenerOptions } from "./listener.js";
import { listenNet } from "./net/net-engine.js";
import { listenNode } from "./node-engine.js";
import { listenUws } from "./uws-engine.js";

export type Listen = (opts: ListenerOptions, handler: ExchangeHandler) => Promise<Listener>;

export const LISTENERS: Readonly<Record<Engine, Listen>> = {
  net: listenNet,
  node: listenNode,
  uws: listenUws,
};
