// The delegation tree and binding as text for `lintel delegate`: one line per step,
// the dentry that produced each name on its right, and the binding the router uses.

import {
  type Addr,
  addressKey,
  type BoundName,
  type DelegateNode,
  type Dentry,
  type NameTree,
  type State,
  showDentry,
} from "../naming/index.js";
import type { Explanation } from "./explain.js";

function addrText(a: Addr): string {
  switch (a.kind) {
    case "bound":
      return a.addresses.length === 0
        ? "no addresses"
        : a.addresses
            .map((x) => (x.weight === 1 ? addressKey(x) : `${addressKey(x)}*${x.weight}`))
            .join(", ");
    case "neg":
      return "no such name (neg)";
    case "failed":
      return `failed: ${a.error.message}`;
    default:
      return "addresses pending";
  }
}

function boundText(b: BoundName): string {
  const residual = b.residual.isEmpty ? "" : `, residual ${b.residual.show}`;
  return `${b.id.show} [${addrText(b.addr.sample())}]${residual}`;
}

const via = (d: Dentry | null) => (d ? `   (${showDentry(d)})` : "");

function render(n: DelegateNode, lines: string[], prefix: string, childPrefix: string): void {
  const child = (c: DelegateNode, last: boolean, label = "") =>
    render(
      c,
      lines,
      `${childPrefix}${last ? "└─ " : "├─ "}${label}`,
      `${childPrefix}${last ? "   " : "│  "}`,
    );
  switch (n.type) {
    case "delegate": {
      const c = n.delegate;
      // A name that resolves to nothing further (neg/fail/empty) reads best on one line.
      if ((c.type === "neg" || c.type === "fail" || c.type === "empty") && c.path.equals(n.path)) {
        render(c, lines, prefix, childPrefix);
        return;
      }
      lines.push(`${prefix}${n.path.show}${via(n.dentry)}`);
      child(c, true);
      return;
    }
    case "alt":
      lines.push(
        `${prefix}${n.path.show}${via(n.dentry)}  — ${n.alt.length} possible resolution paths, the first that binds wins`,
      );
      n.alt.forEach((c, i) => {
        child(c, i === n.alt.length - 1, `${i + 1}. `);
      });
      return;
    case "union":
      lines.push(`${prefix}${n.path.show}${via(n.dentry)}  — weighted union`);
      n.union.forEach((w, i) => {
        child(w.tree, i === n.union.length - 1, `${w.weight} × `);
      });
      return;
    case "leaf":
      lines.push(`${prefix}${n.path.show}${via(n.dentry)}  → bound ${boundText(n.bound)}`);
      return;
    case "transformation":
      lines.push(`${prefix}transformer ${n.name}: ${n.bound.id.show}`);
      child(n.tree, true);
      return;
    case "neg":
      lines.push(`${prefix}${n.path.show}${via(n.dentry)}  → neg (nothing matches)`);
      return;
    case "fail":
      lines.push(`${prefix}${n.path.show}${via(n.dentry)}  → fail (!)`);
      return;
    case "empty":
      lines.push(`${prefix}${n.path.show}${via(n.dentry)}  → empty ($)`);
      return;
    case "exception":
      lines.push(`${prefix}${n.path.show}${via(n.dentry)}  → error: ${n.message}`);
      return;
  }
}

function renderBound(t: NameTree<BoundName>, lines: string[], indent: string, label = ""): void {
  switch (t.kind) {
    case "leaf":
      lines.push(`${indent}${label}${boundText(t.value)}`);
      return;
    case "union":
      lines.push(`${indent}${label}weighted union, chosen per request:`);
      for (const w of t.trees) renderBound(w.tree, lines, `${indent}  `, `${w.weight} × `);
      return;
    case "alt":
      lines.push(`${indent}${label}alternates:`);
      for (const x of t.trees) renderBound(x, lines, `${indent}  `);
      return;
    case "neg":
      lines.push(`${indent}${label}neg: no dentry or namer binds this name`);
      return;
    case "fail":
      lines.push(`${indent}${label}fail: the dtab says this name must fail (!)`);
      return;
    case "empty":
      lines.push(`${indent}${label}empty: bound to no endpoints ($)`);
      return;
  }
}

export function bindingText(bound: State<NameTree<BoundName>>): string[] {
  const lines: string[] = [];
  if (bound.status === "pending") lines.push("  pending: a namer has not answered yet");
  else if (bound.status === "failed") lines.push(`  error: ${bound.error.message}`);
  else renderBound(bound.value, lines, "  ");
  return lines;
}

export function explanationText(e: Explanation): string {
  const lines: string[] = [];
  if ("error" in e.delegation) lines.push(`error: ${e.delegation.error.message}`);
  else render(e.delegation.tree, lines, "", "");
  lines.push("", "Binding (what the router uses):", ...bindingText(e.bound));
  if (!e.settled) lines.push("", "(some lookups had not answered before the timeout)");
  return lines.join("\n");
}
