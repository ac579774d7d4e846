// The shared services every plugin context carries, for tests of kinds that use none of
// them: the real clock and a Kubernetes API that is not there.

import { systemClock } from "../../gateway/clock.js";
import type { KubeApi } from "../../gateway/k8s/api.js";
import { RedisClients } from "../../gateway/redis-clients.js";
import { SharedArena } from "../../gateway/shared-arena.js";
import { Registry } from "../../gateway/telemetry/registry.js";

export const noServices = {
  clock: systemClock,
  random: Math.random,
  kube: (): KubeApi => {
    throw new Error("this test gives its kinds no Kubernetes API");
  },
};

/** A namer context's resolver, for namers that resolve no host names. */
export const noResolver = {
  watch: (): never => {
    throw new Error("this test gives its kinds no DNS");
  },
};

/** What a layer's context adds: fresh metrics, a small shared arena, Redis connections. */
export function layerServices() {
  return {
    metrics: new Registry(),
    arena: new SharedArena(4 * 1024 * 1024),
    redis: new RedisClients(),
  };
}
