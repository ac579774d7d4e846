// What each plugin category is given when created, and what it returns.

import type { Identifier } from "../identifiers/identifier.js";
import type { Interpreter } from "../interpreters/interpreter.js";
import type { Logger } from "../log.js";
import type { HostResolver } from "../namers/dns.js";
import type { Dtab, Namer, NamerLookup, Path, Transformer } from "../naming/index.js";

export interface PluginContext {
  readonly log: Logger;
}

export interface IdentifierContext extends PluginContext {
  /** The router's dstPrefix (default /svc). */
  readonly dstPrefix: Path;
}

export interface NamerContext extends PluginContext {
  /** Where the namer is mounted, `/#/<prefix>`; bound ids start with it. */
  readonly prefix: Path;
}

export interface TransformerContext extends PluginContext {
  /** The transformer's id prefix, `/%/<prefix>`, to put in front of bound ids. */
  readonly prefix: Path;
  /** Resolves names through the `/$/` namers only (for io.l5d.replace / io.l5d.const). */
  readonly globalNamers: NamerLookup;
  readonly resolver: HostResolver;
}

export interface InterpreterContext extends PluginContext {
  readonly label: string;
  readonly routerDtab: Dtab;
  /** Configured namers (by prefix), then the `/$/` namers. */
  readonly namers: NamerLookup;
  readonly transformers: readonly Transformer[];
}

/** A namer instance; `close` stops its watches. */
export interface NamerInstance extends Namer {
  close?(): void;
}

export interface PluginContexts {
  identifier: IdentifierContext;
  namer: NamerContext;
  transformer: TransformerContext;
  interpreter: InterpreterContext;
}

export interface PluginInstances {
  identifier: Identifier;
  namer: NamerInstance;
  transformer: Transformer;
  interpreter: Interpreter;
}
