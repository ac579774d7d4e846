// Test doubles for the response layers' unit tests: a scripted client side (what the
// response writer did to it), the upstream's control, a request as layers see it, and a
// config decoded the way lintel decodes one.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatConfigError } from "../../../gateway/config/load.js";
import type { PluginConfig } from "../../../gateway/config/plugin-schema.js";
import { silentLogger } from "../../../gateway/log.js";
import type { ServerLayerContext } from "../../../gateway/plugins/types.js";
import { loadLintelConfig } from "../../../gateway/setup.js";
import { Registry } from "../../../gateway/telemetry/registry.js";
import { arriving, FakeControl, FakeExchange } from "../../support/fake-exchange.js";
import { layerServices, noServices } from "../../support/plugin-services.js";

export { arriving, FakeControl, FakeExchange };

/** A layer context with its own metrics registry (`metrics`). */
export function layerContext(metrics = new Registry()): ServerLayerContext {
  return {
    ...noServices,
    ...layerServices(),
    metrics,
    log: silentLogger,
    routerLabel: "r",
    limits: {
      maxTargetBytes: 1024,
      maxHeaderBytes: 8192,
      maxHeaderCount: 50,
      maxBodyBytes: undefined,
    },
  };
}

/**
 * The `layers` of a server written as `layers` (YAML flow), decoded as lintel decodes a
 * config: the decoded layers, or the config errors as text.
 */
export async function decodeLayers(
  layers: string,
): Promise<{ layers: readonly PluginConfig<"serverLayer">[] } | { errors: string }> {
  const dir = mkdtempSync(join(tmpdir(), "lintel-resp-"));
  try {
    const f = join(dir, "c.yaml");
    writeFileSync(f, `routers:\n- protocol: http\n  servers:\n  - {port: 0, layers: ${layers}}\n`);
    const r = await loadLintelConfig(f);
    if (!r.ok) return { errors: r.errors.map(formatConfigError).join("\n") };
    return { layers: r.config.routers[0]!.servers[0]!.layers ?? [] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits for zlib (on the thread pool, slower on a busy machine) to get `cond` true, up to 2 s. */
export async function until(cond: () => boolean): Promise<void> {
  for (let waited = 0; !cond() && waited < 2000; waited += 10)
    await new Promise((r) => setTimeout(r, 10));
}
