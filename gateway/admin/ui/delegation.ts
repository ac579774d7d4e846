// A delegation tree from /delegator.json (Linkerd's shape: nodes with type, path, dentry,
// and bound leaves) as lines of text, one per node, indented by depth: easy to read, and
// two trees compare line by line.

export interface Dentry {
  readonly prefix: string;
  readonly dst: string;
}

export interface Bound {
  readonly id: string;
  readonly residual: string;
  readonly addr: { readonly type: string; readonly cause?: string };
  readonly addrs: readonly { readonly ip: string; readonly port: number }[];
}

export interface DelegationNode {
  readonly type: string;
  readonly path?: string;
  readonly dentry?: Dentry | null;
  readonly bound?: Bound;
  readonly delegate?: DelegationNode;
  readonly tree?: DelegationNode;
  readonly alt?: readonly DelegationNode[];
  readonly union?: readonly { readonly weight: number; readonly tree: DelegationNode }[];
  readonly message?: string;
  readonly name?: string;
  /** On the root: what the router binds the path to. */
  readonly binding?: DelegationNode;
}

export interface TreeLine {
  readonly depth: number;
  readonly text: string;
}

/** The bound id (unless it is the node's path already), residual and addresses. */
function boundText(b: Bound, path: string): string {
  const addrs =
    b.addr.type === "bound"
      ? b.addrs.map((a) => `${a.ip}:${a.port}`).join(", ") || "no addresses"
      : b.addr.type === "failed"
        ? `failed: ${b.addr.cause ?? "unknown"}`
        : b.addr.type;
  const residual = b.residual && b.residual !== "/" ? ` (residual ${b.residual})` : "";
  return `${b.id === path ? "" : `${b.id}${residual} `}→ ${addrs}`;
}

function nodeText(n: DelegationNode): string {
  const via = n.dentry ? `  [${n.dentry.prefix} => ${n.dentry.dst}]` : "";
  const path = n.path ?? "";
  switch (n.type) {
    case "leaf":
      return `${path}${via} ${n.bound ? boundText(n.bound, path) : "bound"}`;
    case "transformation":
      return `${path} transformed by ${n.name ?? "a transformer"} ${n.bound ? boundText(n.bound, path) : ""}`;
    case "exception":
      return `${path}${via} ✗ ${n.message ?? "error"}`;
    case "neg":
      return `${path}${via} ✗ neg (no dentry matches)`;
    case "fail":
      return `${path}${via} ✗ fail`;
    case "empty":
      return `${path}${via} ∅ empty`;
    default:
      return `${path}${via}${n.type === "delegate" ? "" : ` (${n.type})`}`;
  }
}

/** The tree as indented lines, depth first. */
export function treeLines(n: DelegationNode, depth = 0, out: TreeLine[] = []): TreeLine[] {
  out.push({ depth, text: nodeText(n) });
  if (n.delegate) treeLines(n.delegate, depth + 1, out);
  if (n.tree) treeLines(n.tree, depth + 1, out);
  for (const a of n.alt ?? []) treeLines(a, depth + 1, out);
  for (const w of n.union ?? []) {
    out.push({ depth: depth + 1, text: `weight ${w.weight}` });
    treeLines(w.tree, depth + 2, out);
  }
  return out;
}

/** The bound ids a binding tree reaches, in order. */
export function boundIds(n: DelegationNode | undefined): string[] {
  if (!n) return [];
  const ids: string[] = [];
  const walk = (x: DelegationNode) => {
    if (x.bound) ids.push(x.bound.id);
    if (x.tree) walk(x.tree);
    for (const a of x.alt ?? []) walk(a);
    for (const w of x.union ?? []) walk(w.tree);
  };
  walk(n);
  return ids;
}
