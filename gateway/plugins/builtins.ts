// The built-in kinds. Adding a kind is one module plus one line here.

import { headerPathIdentifier } from "../identifiers/header-path.js";
import { headerTokenIdentifier } from "../identifiers/header-token.js";
import { methodAndHostIdentifier } from "../identifiers/method-and-host.js";
import { pathIdentifier } from "../identifiers/path.js";
import { staticIdentifier } from "../identifiers/static.js";
import { defaultInterpreter } from "../interpreters/default.js";
import { fsInterpreter } from "../interpreters/fs.js";
import { fsNamer } from "../namers/fs.js";
import { rewriteNamer } from "../namers/rewrite.js";
import { localhostTransformer } from "../transformers/localhost.js";
import { portTransformer } from "../transformers/port.js";
import { constTransformer, replaceTransformer } from "../transformers/replace.js";
import { specificHostTransformer } from "../transformers/specific-host.js";
import { type AnyPlugin, Registry } from "./registry.js";

export const BUILTIN_PLUGINS: readonly AnyPlugin[] = [
  headerTokenIdentifier,
  methodAndHostIdentifier,
  pathIdentifier,
  headerPathIdentifier,
  staticIdentifier,
  fsNamer,
  rewriteNamer,
  portTransformer,
  localhostTransformer,
  specificHostTransformer,
  replaceTransformer,
  constTransformer,
  defaultInterpreter,
  fsInterpreter,
];

/** A registry holding the built-in kinds. */
export function builtinRegistry(): Registry {
  const r = new Registry();
  for (const p of BUILTIN_PLUGINS) r.register(p);
  return r;
}
