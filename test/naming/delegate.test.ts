import { describe, expect, it } from "vitest";
import {
  type BoundName,
  bindPath,
  boundName,
  type DelegateNode,
  delegatePath,
  failed,
  leaf,
  MAX_DELEGATE_NODES,
  MAX_DEPTH,
  type Name,
  type NameTree,
  type NamingContext,
  ok,
  Path,
  PENDING,
  pathName,
  readDtab,
  readPath,
  sampleRead,
  showDentry,
  type Transformer,
} from "../../gateway/naming/index.js";
import { allNodes, fakeNamers, type Special, stateShape } from "./helpers.js";

function explain(
  dtabText: string,
  path: string,
  known: readonly string[] = [],
  specials: Record<string, Special> = {},
  transformers?: Transformer[],
) {
  const dtab = readDtab(dtabText);
  const namers = fakeNamers(known, specials);
  const ctx: NamingContext = { dtab, namers: namers.lookup, transformers };
  const { tree, pending } = delegatePath(ctx, readPath(path), sampleRead);
  return { tree, pending, dtab, ctx, d: (i: number) => dtab.dentries[i]! };
}

/** Narrows a node to a type, failing the test with a readable message otherwise. */
function as<T extends DelegateNode["type"]>(n: DelegateNode, type: T): DelegateNode & { type: T } {
  expect(n.type, `node at ${n.path.show}`).toBe(type);
  return n as DelegateNode & { type: T };
}

const dentryOf = (n: DelegateNode) => ("dentry" in n ? n.dentry : undefined);

function prefixer(name: string): Transformer {
  return {
    name,
    transformLeaf: (b) => ok(leaf(boundName(Path.of("%", name).concat(b.id), b.addr, b.residual))),
  };
}

describe("delegatePath: rewrite chains", () => {
  it("starts at the given path with no dentry", () => {
    const { tree } = explain("/svc=>/#/fs/a", "/svc", ["a"]);
    expect(tree.path.show).toBe("/svc");
    expect(dentryOf(tree)).toBeNull();
  });

  it("shows each rewrite as a delegate node carrying the dentry that produced its path", () => {
    const { tree, pending, d } = explain("/svc=>/x;/x=>/#/fs/a", "/svc", ["a"]);
    expect(pending).toBe(false);
    const root = as(tree, "delegate");
    expect(root.path.show).toBe("/svc");
    expect(root.dentry).toBeNull();
    const x = as(root.delegate, "delegate");
    expect(x.path.show).toBe("/x");
    expect(x.dentry).toBe(d(0));
    const l = as(x.delegate, "leaf");
    expect(l.path.show).toBe("/#/fs/a");
    expect(l.dentry).toBe(d(1));
    expect(l.bound.id.show).toBe("/#/fs/a");
    expect(l.bound.residual.isEmpty).toBe(true);
  });

  it("shows the residual appended to the rewritten path and kept on the bound name", () => {
    const { tree, d } = explain("/svc=>/#/fs", "/svc/a/r", ["a"]);
    const root = as(tree, "delegate");
    const l = as(root.delegate, "leaf");
    expect(l.path.show).toBe("/#/fs/a/r");
    expect(l.dentry).toBe(d(0));
    expect(l.bound.id.show).toBe("/#/fs/a");
    expect(l.bound.residual.show).toBe("/r");
  });

  it("shows a `*` dentry like any other", () => {
    const { tree, d } = explain("/svc/*=>/#/fs/a", "/svc/prod/x", ["a"]);
    const l = as(as(tree, "delegate").delegate, "leaf");
    expect(l.path.show).toBe("/#/fs/a/x");
    expect(l.dentry).toBe(d(0));
  });

  it("shows a path bound directly by a namer as a leaf at the root", () => {
    const { tree } = explain("", "/#/fs/a", ["a"]);
    const l = as(tree, "leaf");
    expect(l.path.show).toBe("/#/fs/a");
    expect(l.dentry).toBeNull();
    expect(l.bound.id.show).toBe("/#/fs/a");
  });
});

describe("delegatePath: several matching dentries", () => {
  it("shows them as an alt node, the last-defined dentry first", () => {
    const { tree, d } = explain("/svc=>/#/fs/a;/svc=>/#/fs/b", "/svc", ["a", "b"]);
    const root = as(tree, "alt");
    expect(root.path.show).toBe("/svc");
    expect(root.dentry).toBeNull();
    expect(root.alt.map((n) => n.path.show)).toEqual(["/#/fs/b", "/#/fs/a"]);
    expect(root.alt.map(dentryOf)).toEqual([d(1), d(0)]);
    expect(root.alt.map((n) => n.type)).toEqual(["leaf", "leaf"]);
  });

  it("follows every alternate, also those after one that binds", () => {
    const { tree } = explain("/svc=>/#/fs/a;/svc=>/#/fs/b;/svc=>/#/fs/missing", "/svc", ["a", "b"]);
    const root = as(tree, "alt");
    expect(root.alt.map((n) => n.type)).toEqual(["delegate", "leaf", "leaf"]);
    expect(as(as(root.alt[0]!, "delegate").delegate, "neg").path.show).toBe("/#/fs/missing");
  });

  it("keeps the producing dentry on an alt node below the root", () => {
    const { tree, d } = explain("/svc=>/x;/x=>/#/fs/a;/x=>/#/fs/b", "/svc", ["a", "b"]);
    const root = as(tree, "delegate");
    const x = as(root.delegate, "alt");
    expect(x.path.show).toBe("/x");
    expect(x.dentry).toBe(d(0));
    expect(x.alt.map(dentryOf)).toEqual([d(2), d(1)]);
  });
});

describe("delegatePath: destination trees", () => {
  it("shows alternates of one dentry as an alt node whose children carry that dentry", () => {
    const { tree, d } = explain("/svc=>/#/fs/missing | /#/fs/b", "/svc", ["b"]);
    const root = as(tree, "alt");
    expect(root.path.show).toBe("/svc");
    expect(root.dentry).toBeNull();
    const [first, second] = root.alt;
    const neg = as(as(first!, "delegate").delegate, "neg");
    expect(neg.path.show).toBe("/#/fs/missing");
    expect(neg.dentry).toBe(d(0));
    expect(as(second!, "leaf").dentry).toBe(d(0));
  });

  it("shows a union as a union node with weighted children carrying the weights", () => {
    const { tree, d } = explain("/svc=>0.3 * /#/fs/a & 0.7 * /#/fs/b", "/svc", ["a", "b"]);
    const u = as(tree, "union");
    expect(u.path.show).toBe("/svc");
    expect(u.dentry).toBeNull();
    expect(u.union.map((w) => w.type)).toEqual(["weighted", "weighted"]);
    expect(u.union.map((w) => w.weight)).toEqual([0.3, 0.7]);
    expect(u.union.map((w) => w.tree.type)).toEqual(["leaf", "leaf"]);
    expect(u.union.map((w) => w.tree.path.show)).toEqual(["/#/fs/a", "/#/fs/b"]);
    expect(u.union.map((w) => dentryOf(w.tree))).toEqual([d(0), d(0)]);
  });

  it("shows union branches that do not bind, with the default weight 1", () => {
    const { tree } = explain("/svc=>/#/fs/a & /#/fs/missing", "/svc", ["a"]);
    const u = as(tree, "union");
    expect(u.union.map((w) => w.weight)).toEqual([1, 1]);
    expect(u.union.map((w) => w.tree.type)).toEqual(["leaf", "delegate"]);
  });

  it("shows `!`, `$` and `~` as fail, empty and neg leaves with the dentry that produced them", () => {
    const { tree, d } = explain("/svc=>! | $ | ~", "/svc");
    const root = as(tree, "alt");
    expect(root.alt.map((n) => n.type)).toEqual(["fail", "empty", "neg"]);
    expect(root.alt.map((n) => n.path.show)).toEqual(["/svc", "/svc", "/svc"]);
    expect(root.alt.map(dentryOf)).toEqual([d(0), d(0), d(0)]);
  });

  it("shows a single `!` destination as a fail node under the delegate", () => {
    const { tree, d } = explain("/svc=>!", "/svc");
    const root = as(tree, "delegate");
    expect(root.dentry).toBeNull();
    const f = as(root.delegate, "fail");
    expect(f.path.show).toBe("/svc");
    expect(f.dentry).toBe(d(0));
  });

  it("shows a path nothing knows as neg", () => {
    const { tree } = explain("/other=>/x", "/nowhere");
    const root = as(tree, "delegate");
    expect(root.path.show).toBe("/nowhere");
    const n = as(root.delegate, "neg");
    expect(n.path.show).toBe("/nowhere");
    expect(n.dentry).toBeNull();
  });
});

describe("delegatePath: namers", () => {
  it("shows a namer's bound name as a leaf with `bound`", () => {
    const { tree, ctx } = explain("/svc=>/#/fs/a", "/svc", ["a"]);
    const l = as(as(tree, "delegate").delegate, "leaf");
    const bound = bindPath(ctx, readPath("/svc"), sampleRead);
    expect(bound.status === "ok" && bound.value.kind === "leaf" && bound.value.value.addr).toBe(
      l.bound.addr,
    );
  });

  it("shows a namer failure as an exception node with the error message, without throwing", () => {
    const { tree, pending, d } = explain("/svc=>/#/fs/boom", "/svc", [], {
      "/#/fs/boom": failed("namer exploded"),
    });
    expect(pending).toBe(false);
    const e = as(as(tree, "delegate").delegate, "exception");
    expect(e.path.show).toBe("/#/fs/boom");
    expect(e.dentry).toBe(d(0));
    expect(e.message).toBe("namer exploded");
  });

  it("sets pending when a namer has not answered, showing that step as an exception", () => {
    const { tree, pending } = explain("/svc=>/#/fs/slow | /#/fs/a", "/svc", ["a"], {
      "/#/fs/slow": PENDING,
    });
    expect(pending).toBe(true);
    const root = as(tree, "alt");
    const e = as(root.alt[0]!, "exception");
    expect(e.path.show).toBe("/#/fs/slow");
    expect(e.message).toBe("a namer has not answered yet");
    expect(as(root.alt[1]!, "leaf").bound.id.show).toBe("/#/fs/a");
  });

  it("does not set pending when every namer answered", () => {
    expect(explain("/svc=>/#/fs/a | /#/fs/missing", "/svc", ["a"]).pending).toBe(false);
  });

  it("follows a path a namer answers with", () => {
    const { tree } = explain("/svc=>/$/rw;/next=>/#/fs/a", "/svc/x", ["a"], {
      "/$/rw/x": ok(leaf<Name>(pathName(readPath("/next")))),
    });
    const rw = as(as(tree, "delegate").delegate, "delegate");
    expect(rw.path.show).toBe("/$/rw/x");
    const next = as(rw.delegate, "delegate");
    expect(next.path.show).toBe("/next");
    expect(as(next.delegate, "leaf").bound.id.show).toBe("/#/fs/a");
  });

  // Linkerd's delegator passes the dentry that led to a rewriting namer on to the path the
  // namer produced (here `/svc=>/$/rw`, which produced /$/rw/x, shows again on /next).
  it("gives a path produced by a namer the dentry that led to the namer", () => {
    const { tree } = explain("/svc=>/$/rw;/next=>/#/fs/a", "/svc/x", ["a"], {
      "/$/rw/x": ok(leaf<Name>(pathName(readPath("/next")))),
    });
    const rw = as(as(tree, "delegate").delegate, "delegate");
    const next = as(rw.delegate, "delegate");
    expect(next.path.show).toBe("/next");
    expect(next.dentry && showDentry(next.dentry)).toBe("/svc=>/$/rw");
  });

  // Regression: a dentry whose destination is `~` makes Dtab.lookup neg, so binding asks the namers
  // (Finagle/Linkerd ConfiguredNamersInterpreter: `dtab.lookup(path) match { case Neg => namers }`)
  // and `/#/fs/a` binds. The delegator instead shows a neg leaf and never asks the namers, so the
  // explanation disagrees with the binding. Input: dtab `/#/fs/a=>~`, path /#/fs/a, namer binds
  // /#/fs/a. Expected: the tree contains the namer's leaf /#/fs/a; actual: delegate -> neg only.
  it("agrees with binding when the only matching dentry is `~` (the namers answer)", () => {
    const { tree, ctx } = explain("/#/fs/a=>~", "/#/fs/a", ["a"]);
    expect(stateShape(bindPath(ctx, readPath("/#/fs/a"), sampleRead))).toBe("/#/fs/a");
    const leaves = allNodes(tree).filter((n) => n.type === "leaf");
    expect(leaves.map((n) => (n.type === "leaf" ? n.bound.id.show : ""))).toEqual(["/#/fs/a"]);
  });
});

describe("delegatePath: limits", () => {
  it("ends a looping dtab with an exception node at the depth limit instead of throwing", () => {
    const { tree, d } = explain("/a=>/a/a", "/a");
    let n: DelegateNode = tree;
    let delegates = 0;
    while (n.type === "delegate") {
      delegates++;
      n = n.delegate;
    }
    expect(delegates).toBe(MAX_DEPTH);
    const e = as(n, "exception");
    expect(e.message).toContain(`deeper than ${MAX_DEPTH}`);
    expect(e.path.size).toBe(MAX_DEPTH + 1);
    expect(e.dentry).toBe(d(0));
  });

  it("ends a two-dentry loop with an exception node", () => {
    const { tree } = explain("/a=>/b;/b=>/a", "/a");
    const exceptions = allNodes(tree).filter((n) => n.type === "exception");
    expect(exceptions).toHaveLength(1);
    expect(as(exceptions[0]!, "exception").message).toContain("the dtab loops");
  });

  const doubling = (op: "&" | "|", n = 20) =>
    Array.from({ length: n }, (_, i) => `/p${i}=>/p${i + 1} ${op} /p${i + 1}`).join(";");

  it("bounds the tree of an exponential union with MAX_DELEGATE_NODES", () => {
    const { tree } = explain(`${doubling("&")};/p20=>/#/fs/a`, "/p0", ["a"]);
    const nodes = allNodes(tree);
    expect(nodes.length).toBeLessThan(4 * MAX_DELEGATE_NODES);
    const budget = nodes.filter(
      (n) =>
        n.type === "exception" &&
        n.message === `delegation tree larger than ${MAX_DELEGATE_NODES} nodes`,
    );
    expect(budget.length).toBeGreaterThan(0);
    expect(nodes.some((n) => n.type === "leaf")).toBe(true);
  });

  it("bounds the tree of exponential alternates with MAX_DELEGATE_NODES", () => {
    const { tree } = explain(doubling("|"), "/p0");
    const nodes = allNodes(tree);
    expect(nodes.length).toBeLessThan(4 * MAX_DELEGATE_NODES);
    expect(
      nodes.some((n) => n.type === "exception" && n.message.includes(String(MAX_DELEGATE_NODES))),
    ).toBe(true);
  });

  it("does not hit the node budget for a small dtab", () => {
    const { tree } = explain(`${doubling("&", 5)};/p5=>/#/fs/a`, "/p0", ["a"]);
    const nodes = allNodes(tree);
    expect(nodes.filter((n) => n.type === "exception")).toEqual([]);
    expect(nodes.filter((n) => n.type === "leaf")).toHaveLength(32);
  });
});

describe("delegatePath: transformers", () => {
  it("shows a transformer as a transformation node above the bound leaf", () => {
    const { tree, d } = explain("/svc=>/#/fs/a", "/svc", ["a"], {}, [prefixer("io.l5d.port")]);
    const a = as(as(tree, "delegate").delegate, "delegate");
    expect(a.path.show).toBe("/#/fs/a");
    const t = as(a.delegate, "transformation");
    expect(t.name).toBe("io.l5d.port");
    expect(t.path.show).toBe("/#/fs/a");
    expect(t.bound.id.show).toBe("/#/fs/a");
    const l = as(t.tree, "leaf");
    expect(l.path.show).toBe("/%/io.l5d.port/#/fs/a");
    expect(l.bound.id.show).toBe("/%/io.l5d.port/#/fs/a");
    expect(l.dentry).toBe(d(0));
  });

  it("shows a transformation above every leaf of a union", () => {
    const { tree } = explain("/svc=>/#/fs/a & /#/fs/b", "/svc", ["a", "b"], {}, [prefixer("t")]);
    const ts = allNodes(tree).filter((n) => n.type === "transformation");
    expect(ts.map((n) => (n.type === "transformation" ? n.bound.id.show : ""))).toEqual([
      "/#/fs/a",
      "/#/fs/b",
    ]);
  });

  it("shows a failing transformer as an exception under its transformation node", () => {
    const broken: Transformer = { name: "broken", transformLeaf: () => failed("no port") };
    const { tree, pending } = explain("/svc=>/#/fs/a", "/svc", ["a"], {}, [broken]);
    expect(pending).toBe(false);
    const t = allNodes(tree).find((n) => n.type === "transformation");
    const e = as(as(t!, "transformation").tree, "exception");
    expect(e.message).toBe("no port");
  });

  it("sets pending when a transformer has not answered", () => {
    const waiting: Transformer = { name: "waiting", transformLeaf: () => PENDING };
    const { tree, pending } = explain("/svc=>/#/fs/a", "/svc", ["a"], {}, [waiting]);
    expect(pending).toBe(true);
    const t = allNodes(tree).find((n) => n.type === "transformation");
    expect(as(as(t!, "transformation").tree, "exception").message).toBe(
      "a transformer has not answered yet",
    );
  });

  // Regression: with two transformers the delegator stopped after the first one (`if (current.type !==
  // "leaf") break;` after wrapping the leaf in a transformation node), so it shows t1 only and a
  // leaf /%/t1/#/fs/a, while bindPath applies both and binds /%/t2/%/t1/#/fs/a. Linkerd's
  // transformDelegate (DelegateTree.flatMap) descends into Transformation nodes, giving
  // Transformation(t1, Transformation(t2, Leaf)). Input: dtab `/svc=>/#/fs/a`, transformers
  // [t1, t2], path /svc.
  it("shows every transformer, and ends at the name binding produces", () => {
    const { tree, ctx } = explain("/svc=>/#/fs/a", "/svc", ["a"], {}, [
      prefixer("t1"),
      prefixer("t2"),
    ]);
    const nodes = allNodes(tree);
    expect(
      nodes
        .filter((n) => n.type === "transformation")
        .map((n) => (n.type === "transformation" ? n.name : "")),
    ).toEqual(["t1", "t2"]);
    const leaves = nodes
      .filter((n) => n.type === "leaf")
      .map((n) => (n.type === "leaf" ? n.bound.id.show : ""));
    expect(stateShape(bindPath(ctx, readPath("/svc"), sampleRead))).toBe("/%/t2/%/t1/#/fs/a");
    expect(leaves).toEqual(["/%/t2/%/t1/#/fs/a"]);
  });
});

describe("delegatePath: consistency with binding", () => {
  const cases: Array<[string, string, string[]]> = [
    ["/svc=>/x;/x=>/#/fs/a", "/svc", ["a"]],
    ["/svc=>/#/fs/a;/svc=>/#/fs/b", "/svc", ["a", "b"]],
    ["/svc=>/#/fs/a;/svc=>/#/fs/b", "/svc", ["a"]],
    ["/svc=>/#/fs/missing | /#/fs/b", "/svc", ["b"]],
    ["/svc=>0.5 * /#/fs/a & 0.5 * /#/fs/b", "/svc", ["a", "b"]],
    ["/svc/*/x=>/#/fs", "/svc/prod/x/a/r", ["a"]],
  ];
  for (const [dtab, path, known] of cases) {
    it(`shows the name(s) binding chooses for ${dtab} ${path}`, () => {
      const { tree, ctx } = explain(dtab, path, known);
      const s = bindPath(ctx, readPath(path), sampleRead);
      expect(s.status).toBe("ok");
      const chosen = new Set<string>();
      const collect = (t: NameTree<BoundName>) => {
        if (t.kind === "leaf") chosen.add(t.value.id.show);
        if (t.kind === "union") for (const w of t.trees) collect(w.tree);
      };
      if (s.status === "ok") collect(s.value);
      expect(chosen.size).toBeGreaterThan(0);
      const shown = new Set(
        allNodes(tree).flatMap((n) => (n.type === "leaf" ? [n.bound.id.show] : [])),
      );
      for (const id of chosen) expect(shown.has(id), id).toBe(true);
    });
  }
});
