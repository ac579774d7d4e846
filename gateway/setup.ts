// The composition root of a config: the built-in kinds, user plugin modules, and the
// checks the engines and clients make of a config, wired into config/'s loader (which
// knows the schema language only). The CLI, the workers and the tests load configs here.

import { checkClientTls } from "./client/upstream-tls.js";
import { type LoadOptions, type LoadResult, loadConfig } from "./config/load.js";
import { builtinRegistry } from "./plugins/builtins.js";
import { loadPluginModule } from "./plugins/user-plugins.js";
import { checkServers } from "./server/config-checks.js";
import { checkTelemetry } from "./telemeters/telemeters.js";

/** Loads `file` with the built-in kinds (plus its plugins) and every check startup makes. */
export function loadLintelConfig(
  file: string,
  opts: Partial<LoadOptions> = {},
): Promise<LoadResult> {
  return loadConfig(file, {
    registry: builtinRegistry(),
    loadPlugin: loadPluginModule,
    checks: [checkServers, checkClientTls, checkTelemetry],
    ...opts,
  });
}
