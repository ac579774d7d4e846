// The bundle's module loader: tsconfig.ui.json compiles the UI's modules into one file of
// AMD `define(name, deps, factory)` calls, and this runs them once the page has parsed,
// starting from "main". It is a script, not a module, so it comes first in the bundle.

type Factory = (...deps: unknown[]) => void;

const definitions = new Map<
  string,
  { readonly deps: readonly string[]; readonly factory: Factory }
>();
const instances = new Map<string, Record<string, unknown>>();

function requireModule(name: string): Record<string, unknown> {
  const known = instances.get(name);
  if (known) return known;
  const d = definitions.get(name);
  if (!d) throw new Error(`the UI bundle has no module "${name}"`);
  const exports: Record<string, unknown> = {};
  instances.set(name, exports);
  d.factory(
    ...d.deps.map((dep) =>
      dep === "exports" ? exports : dep === "require" ? requireModule : requireModule(dep),
    ),
  );
  return exports;
}

(globalThis as unknown as { define: unknown }).define = (
  name: string,
  deps: readonly string[],
  factory: Factory,
) => {
  definitions.set(name, { deps, factory });
};

(globalThis as unknown as { addEventListener(t: string, f: () => void): void }).addEventListener(
  "DOMContentLoaded",
  () => requireModule("main"),
);
