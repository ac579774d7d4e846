// Loads the native uWebSockets.js build directly. The package silently falls back to a
// slow JavaScript shim when its binary does not load; lintel refuses that instead, with a
// message saying why and what to do.

import { createRequire } from "node:module";

export type Uws = typeof import("@trufflesuite/uws-js-unofficial");

let loaded: Uws | undefined;

export function loadUws(): Uws {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const binary = `@trufflesuite/uws-js-unofficial/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  let mod: Uws;
  try {
    mod = require(binary) as Uws;
  } catch (e) {
    throw new Error(
      `the uws engine needs the native uWebSockets.js module, which does not load here (${binary}: ${(e as Error).message}); ` +
        `use engine: net, or run on Linux/macOS x64/arm64 with Node ${process.versions.node.split(".")[0]}`,
    );
  }
  if (typeof mod.SSLApp !== "function" || !String(mod.SSLApp).includes("[native code]")) {
    throw new Error(
      "the uWebSockets.js module loaded is not the native build (SSLApp is missing or not native)",
    );
  }
  loaded = mod;
  return mod;
}
