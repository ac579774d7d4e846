// Path patterns as Linkerd uses them (io.l5d.rewrite, static client/service prefixes):
// `/`-separated segments, each a literal, `*` (any one segment) or `{name}` (captured).
// A pattern matches a path that starts with it; captures can be substituted into text.

import type { Path } from "./path.js";

type Seg = { kind: "literal"; text: string } | { kind: "any" } | { kind: "capture"; name: string };

export class PathPattern {
  private readonly segs: readonly Seg[];

  constructor(readonly source: string) {
    this.segs = source
      .split("/")
      .filter((s) => s.length > 0)
      .map((s): Seg => {
        if (s === "*") return { kind: "any" };
        if (s.startsWith("{") && s.endsWith("}") && s.length > 2)
          return { kind: "capture", name: s.slice(1, -1) };
        return { kind: "literal", text: s };
      });
  }

  get size(): number {
    return this.segs.length;
  }

  /** The variables captured when `path` starts with this pattern, or undefined. */
  match(path: Path): Record<string, string> | undefined {
    if (path.size < this.segs.length) return undefined;
    const vars: Record<string, string> = {};
    for (let i = 0; i < this.segs.length; i++) {
      const s = this.segs[i]!;
      const p = path.segments[i]!;
      if (s.kind === "literal" && s.text !== p) return undefined;
      if (s.kind === "capture") vars[s.name] = p;
    }
    return vars;
  }

  /** Names captured by this pattern. */
  get captures(): string[] {
    return this.segs.flatMap((s) => (s.kind === "capture" ? [s.name] : []));
  }
}

/** Replaces each `{name}` in `template` by its value. */
export function substitute(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{([^{}]+)\}/g, (whole, name: string) => vars[name] ?? whole);
}
