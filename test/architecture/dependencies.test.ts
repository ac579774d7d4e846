// The dependency rules of the design (../shared/DESIGN.md, gateway/README.md), checked on
// every run over the import statements of every source file: tls/ never imports gateway/;
// gateway/naming/ is pure; config/ knows the schema language, not the kinds, clients or
// engines; only the composition roots (the CLI, workers, setup) reach the runtime.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

/** The project files `file` imports (static and dynamic), as paths from the root (.ts). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gms),
    ...text.matchAll(/^\s*import\s+"([^"]+)"/gm),
    ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((m) => m[1]!);
  return specs
    .filter((s) => s.startsWith("."))
    .map((s) => relative(root, resolve(root, dirname(file), s)).replace(/\.js$/, ".ts"));
}

const files = [...sources("gateway"), ...sources("tls")];
const graph = new Map(files.map((f) => [f, importsOf(f)]));

/** Every import from a file under `from` that `allowed` refuses, as "file -> import". */
function violations(from: string, allowed: (target: string) => boolean): string[] {
  const out: string[] = [];
  for (const [file, deps] of graph) {
    if (!file.startsWith(from)) continue;
    for (const d of deps) if (!allowed(d)) out.push(`${file} -> ${d}`);
  }
  return out;
}

const under =
  (...dirs: string[]) =>
  (target: string) =>
    dirs.some((d) => target.startsWith(d));

describe("dependency rules", () => {
  it("reads the imports of every source file", () => {
    expect(files.length).toBeGreaterThan(150);
    expect(graph.get("gateway/runtime.ts")).toContain("gateway/routing/router.ts");
    // Every import resolves to a file that exists.
    const missing = [...graph].flatMap(([f, deps]) =>
      deps.filter((d) => !graph.has(d)).map((d) => `${f} -> ${d}`),
    );
    expect(missing).toEqual([]);
  });

  it("tls/ never imports gateway/", () => {
    expect(violations("tls/", under("tls/"))).toEqual([]);
  });

  it("gateway/naming/ imports nothing else of the project", () => {
    expect(violations("gateway/naming/", under("gateway/naming/"))).toEqual([]);
  });

  it("config/ knows the schema language, not the kinds, clients or engines", () => {
    const allowed = under(
      "gateway/config/",
      "gateway/naming/",
      "gateway/http/cidr.ts",
      "gateway/plugins/registry.ts",
      "gateway/plugins/types.ts",
      "tls/acme/challenges.ts",
      "tls/acme/keys.ts",
    );
    expect(violations("gateway/config/", allowed)).toEqual([]);
  });

  it("only the composition roots import the runtime and the setup", () => {
    const roots = under(
      "gateway/cli/",
      "gateway/workers/",
      "gateway/setup.ts",
      "gateway/runtime.ts",
      // The two thread roles Runtime.start asks where the threads differ.
      "gateway/thread-role.ts",
      "gateway/control-thread.ts",
    );
    const offenders = [...graph]
      .filter(([f]) => !roots(f))
      .flatMap(([f, deps]) =>
        deps
          .filter((d) => d === "gateway/runtime.ts" || d === "gateway/setup.ts")
          .map((d) => `${f} -> ${d}`),
      );
    expect(offenders).toEqual([]);
  });

  it("nothing outside the CLI imports the CLI", () => {
    const outside = violations("gateway/", (t) => !t.startsWith("gateway/cli/"));
    expect(outside.filter((v) => !v.startsWith("gateway/cli/"))).toEqual([]);
  });
});
