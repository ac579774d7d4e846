// The delegation tree as JSON, shaped like Linkerd's /delegator.json: nodes with `type`,
// `path`, `dentry` {prefix, dst}, and for bound leaves `bound` {id, residual, addr,
// addrs [{ip, port, meta}]}. Shared by `lintel delegate --json` and the admin server.

import {
  type Addr,
  type BoundName,
  type DelegateNode,
  type Dentry,
  type NameTree,
  type Path,
  showPathTree,
} from "../naming/index.js";
import type { Explanation } from "./explain.js";

export interface JsonDentry {
  readonly prefix: string;
  readonly dst: string;
}

export interface JsonAddress {
  readonly ip: string;
  readonly port: number;
  readonly meta: Record<string, unknown>;
}

export interface JsonBound {
  readonly id: string;
  readonly residual: string;
  /** Linkerd's name for the residual. */
  readonly path: string;
  readonly addr: { readonly type: Addr["kind"]; readonly cause?: string };
  readonly addrs: readonly JsonAddress[];
}

export type JsonNode = Record<string, unknown> & { readonly type: string };

export function dentryJson(d: Dentry | null): JsonDentry | null {
  return d === null ? null : { prefix: d.prefix.show, dst: showPathTree(d.dst) };
}

export function boundJson(b: BoundName): JsonBound {
  const a = b.addr.sample();
  return {
    id: b.id.show,
    residual: b.residual.show,
    path: b.residual.show,
    addr: a.kind === "failed" ? { type: a.kind, cause: a.error.message } : { type: a.kind },
    addrs:
      a.kind === "bound"
        ? a.addresses.map((x) => ({
            ip: x.host,
            port: x.port,
            meta: x.weight === 1 ? { ...x.meta } : { ...x.meta, weight: x.weight },
          }))
        : [],
  };
}

export function delegateJson(n: DelegateNode): JsonNode {
  switch (n.type) {
    case "transformation":
      return {
        type: n.type,
        path: n.path.show,
        name: n.name,
        bound: boundJson(n.bound),
        tree: delegateJson(n.tree),
      };
    case "delegate":
      return {
        type: n.type,
        path: n.path.show,
        dentry: dentryJson(n.dentry),
        delegate: delegateJson(n.delegate),
      };
    case "alt":
      return {
        type: n.type,
        path: n.path.show,
        dentry: dentryJson(n.dentry),
        alt: n.alt.map(delegateJson),
      };
    case "union":
      return {
        type: n.type,
        path: n.path.show,
        dentry: dentryJson(n.dentry),
        union: n.union.map((w) => ({
          type: "weighted",
          weight: w.weight,
          tree: delegateJson(w.tree),
        })),
      };
    case "leaf":
      return {
        type: n.type,
        path: n.path.show,
        dentry: dentryJson(n.dentry),
        bound: boundJson(n.bound),
      };
    case "exception":
      return { type: n.type, path: n.path.show, dentry: dentryJson(n.dentry), message: n.message };
    default:
      return { type: n.type, path: n.path.show, dentry: dentryJson(n.dentry) };
  }
}

/** The binding the router uses, in the same vocabulary. */
export function boundTreeJson(tree: NameTree<BoundName>): JsonNode {
  switch (tree.kind) {
    case "leaf":
      return { type: "leaf", bound: boundJson(tree.value) };
    case "alt":
      return { type: "alt", alt: tree.trees.map(boundTreeJson) };
    case "union":
      return {
        type: "union",
        union: tree.trees.map((w) => ({
          type: "weighted",
          weight: w.weight,
          tree: boundTreeJson(w.tree),
        })),
      };
    default:
      return { type: tree.kind };
  }
}

/**
 * What `lintel delegate --json` and /delegator.json answer: Linkerd's delegation tree,
 * plus a `binding` field with what the router actually binds.
 */
export function delegationJson(e: Explanation, path: Path): JsonNode {
  const tree =
    "error" in e.delegation
      ? { type: "exception", path: path.show, dentry: null, message: e.delegation.error.message }
      : delegateJson(e.delegation.tree);
  const binding =
    e.bound.status === "ok"
      ? boundTreeJson(e.bound.value)
      : e.bound.status === "failed"
        ? { type: "exception", message: e.bound.error.message }
        : { type: "pending" };
  return { ...tree, binding };
}
