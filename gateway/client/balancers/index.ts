// The load balancer kinds Linkerd 1 has, for the plugin registry; p2c is the default.

import type { Plugin } from "../../plugins/registry.js";
import { apertureBalancer } from "./aperture.js";
import { ewmaBalancer } from "./ewma.js";
import { heapBalancer } from "./heap.js";
import { p2cBalancer } from "./p2c.js";
import { roundRobinBalancer } from "./round-robin.js";

export const LOAD_BALANCERS: readonly Plugin<"loadBalancer">[] = [
  p2cBalancer,
  ewmaBalancer,
  apertureBalancer,
  heapBalancer,
  roundRobinBalancer,
];
