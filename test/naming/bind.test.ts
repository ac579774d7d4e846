import { describe, expect, it } from "vitest";
import {
  type Addr,
  addrBound,
  address,
  alt,
  BindingError,
  type BoundName,
  bindPath,
  boundName,
  boundStateEquals,
  Cell,
  computed,
  constant,
  constantOk,
  Empty,
  Fail,
  failed,
  leaf,
  MAX_DEPTH,
  MAX_LOOKUPS,
  type Name,
  type NameTree,
  type NamingContext,
  Neg,
  ok,
  Path,
  PENDING,
  pathName,
  readDtab,
  readPath,
  type State,
  sampleRead,
  settle,
  type Transformer,
  union,
  type Var,
  weighted,
} from "../../gateway/naming/index.js";
import { type FakeNamers, fakeNamers, type Special, stateShape } from "./helpers.js";

function ctxOf(dtab: string, namers: FakeNamers, transformers?: Transformer[]): NamingContext {
  return { dtab: readDtab(dtab), namers: namers.lookup, transformers };
}

/** Binds `path` once with `dtab` and the fake namers (knowing the services `known`). */
function bind(
  dtab: string,
  path: string,
  known: readonly string[] = [],
  specials: Record<string, Special> = {},
  transformers?: Transformer[],
) {
  const namers = fakeNamers(known, specials);
  const state = bindPath(ctxOf(dtab, namers, transformers), readPath(path), sampleRead);
  return { state, shape: stateShape(state), calls: namers.calls };
}

function errorOf(s: State<unknown>): Error {
  if (s.status !== "failed") throw new Error(`expected a failed state, got ${s.status}`);
  return s.error;
}

/** A transformer that prefixes bound ids with /%/<name>, as Linkerd's transformers do. */
function prefixer(name: string, calls?: string[]): Transformer {
  return {
    name,
    transformLeaf(b) {
      calls?.push(b.id.show);
      return ok(leaf(boundName(Path.of("%", name).concat(b.id), b.addr, b.residual)));
    },
  };
}

const addrA: Var<Addr> = constant(addrBound([address("10.1.1.1", 80)]));
const boundDyn = (id: string, addr: Var<Addr> = addrA): State<NameTree<Name>> =>
  ok(leaf<Name>(boundName(readPath(id), addr, Path.empty)));

describe("lookup order", () => {
  it("rewrites a path through a dentry to a namer path that binds", () => {
    expect(bind("/svc=>/#/fs/users", "/svc", ["users"]).shape).toBe("/#/fs/users");
  });

  it("tries a later dentry before an earlier one", () => {
    expect(bind("/svc=>/#/fs/a;/svc=>/#/fs/b", "/svc", ["a", "b"]).shape).toBe("/#/fs/b");
  });

  it("falls back to an earlier dentry when the later one binds to neg", () => {
    const r = bind("/svc=>/#/fs/a;/svc=>/#/fs/b", "/svc", ["a"]);
    expect(r.shape).toBe("/#/fs/a");
    expect(r.calls).toEqual(["/#/fs/b", "/#/fs/a"]);
  });

  it("prefers a later, shorter prefix over an earlier, longer one (order, not specificity)", () => {
    expect(bind("/svc/users=>/#/fs/a;/svc=>/#/fs/b", "/svc/users", ["a", "b"]).shape).toBe(
      "/#/fs/b (residual /users)",
    );
  });

  it("looks a rewritten path up again from the bottom, reaching an earlier dentry", () => {
    expect(bind("/x=>/#/fs/x;/svc=>/x", "/svc", ["x"]).shape).toBe("/#/fs/x");
  });

  it("looks a rewritten path up again from the bottom, reaching a later dentry", () => {
    expect(bind("/svc=>/x;/x=>/#/fs/x", "/svc", ["x"]).shape).toBe("/#/fs/x");
  });

  it("looks a rewritten path up in the whole dtab, the last-defined match first", () => {
    const dtab = "/x=>/#/fs/a;/svc=>/x;/x=>/#/fs/b";
    expect(bind(dtab, "/svc", ["a", "b"]).shape).toBe("/#/fs/b");
    expect(bind(dtab, "/svc", ["a"]).shape).toBe("/#/fs/a");
  });

  it("follows a chain of several rewrites", () => {
    expect(bind("/a=>/b;/b=>/c;/c=>/d;/d=>/#/fs/end", "/a", ["end"]).shape).toBe("/#/fs/end");
  });
});

describe("the residual", () => {
  it("appends the unmatched rest of the path to the destination", () => {
    const r = bind("/svc=>/#/fs", "/svc/users/extra/more", ["users"]);
    expect(r.calls).toEqual(["/#/fs/users/extra/more"]);
    expect(r.shape).toBe("/#/fs/users (residual /extra/more)");
  });

  it("appends nothing when the prefix matches the whole path", () => {
    expect(bind("/svc/users=>/#/fs/a", "/svc/users", ["a"]).shape).toBe("/#/fs/a");
  });

  it("appends the rest to every leaf of the destination tree", () => {
    const r = bind("/svc=>/#/fs/nope | /#/fs", "/svc/a/b", ["a"]);
    expect(r.calls).toEqual(["/#/fs/nope/a/b", "/#/fs/a/b"]);
    expect(r.shape).toBe("/#/fs/a (residual /b)");
  });

  it("carries the rest through a chain of rewrites", () => {
    const r = bind("/svc=>/mid;/mid=>/#/fs", "/svc/users/x", ["users"]);
    expect(r.calls).toEqual(["/#/fs/users/x"]);
    expect(r.shape).toBe("/#/fs/users (residual /x)");
  });
});

describe("`*` in prefixes", () => {
  it("matches any one segment and consumes it", () => {
    const r = bind("/svc/*/users=>/#/fs/users", "/svc/prod/users/v1", ["users"]);
    expect(r.shape).toBe("/#/fs/users (residual /v1)");
  });

  it("does not match when a literal segment after `*` differs", () => {
    const r = bind("/svc/*/users=>/#/fs/users", "/svc/prod/orders", ["users"]);
    expect(r.shape).toBe("~");
    expect(r.calls).toEqual(["/svc/prod/orders"]);
  });

  it("needs a segment to be present for `*`", () => {
    expect(bind("/svc/*=>/#/fs/a", "/svc", ["a"]).shape).toBe("~");
    expect(bind("/svc/*=>/#/fs/a", "/svc/x", ["a"]).shape).toBe("/#/fs/a");
  });

  it("drops the segment `*` matched and appends only what follows", () => {
    expect(bind("/host/*=>/#/fs/a", "/host/anything/x/y", ["a"]).shape).toBe(
      "/#/fs/a (residual /x/y)",
    );
  });
});

describe("alternates", () => {
  it("fall through to the next alternate on neg", () => {
    expect(bind("/svc=>/#/fs/missing | /#/fs/b", "/svc", ["b"]).shape).toBe("/#/fs/b");
  });

  it("stop at the first alternate that binds and never look at the rest", () => {
    const r = bind("/svc=>/#/fs/a | /#/fs/b", "/svc", ["a", "b"]);
    expect(r.shape).toBe("/#/fs/a");
    expect(r.calls).toEqual(["/#/fs/a"]);
  });

  it("fall through when an alternate is neg only after further rewrites", () => {
    expect(bind("/svc=>/x | /#/fs/b;/x=>/#/fs/missing", "/svc", ["b"]).shape).toBe("/#/fs/b");
  });

  it("skip a literal `~` alternate", () => {
    expect(bind("/svc=>~ | /#/fs/b", "/svc", ["b"]).shape).toBe("/#/fs/b");
  });

  it("are neg when every alternate is neg", () => {
    expect(bind("/svc=>/#/fs/m1 | ~ | /#/fs/m2", "/svc").shape).toBe("~");
  });

  it("stop at fail (`!`) even when a later alternate would bind", () => {
    const r = bind("/svc=>! | /#/fs/b", "/svc", ["b"]);
    expect(r.shape).toBe("!");
    expect(r.calls).toEqual([]);
  });

  it("stop at a fail reached through further rewrites", () => {
    const r = bind("/svc=>/dead | /#/fs/b;/dead=>!", "/svc", ["b"]);
    expect(r.shape).toBe("!");
    expect(r.calls).not.toContain("/#/fs/b");
  });

  it("stop at a fail a namer returns", () => {
    const r = bind("/svc=>/$/fail | /#/fs/b", "/svc", ["b"], { "/$/fail": ok(Fail) });
    expect(r.shape).toBe("!");
    expect(r.calls).toEqual(["/$/fail"]);
  });

  it("stop at fail across dentries: a later dentry's `!` hides an earlier dentry", () => {
    expect(bind("/svc=>/#/fs/a;/svc=>!", "/svc", ["a"]).shape).toBe("!");
  });

  it("let empty (`$`) win over later alternates", () => {
    expect(bind("/svc=>$ | /#/fs/b", "/svc", ["b"]).shape).toBe("$");
    expect(bind("/svc=>/#/fs/missing | $ | /#/fs/b", "/svc", ["b"]).shape).toBe("$");
  });

  it("let a later dentry's empty win over an earlier dentry", () => {
    expect(bind("/svc=>/#/fs/a;/svc=>$", "/svc", ["a"]).shape).toBe("$");
  });

  it("do not fall through when an alternate's namer failed", () => {
    const boom = new Error("boom");
    const r = bind("/svc=>/#/fs/boom | /#/fs/b", "/svc", ["b"], { "/#/fs/boom": failed(boom) });
    expect(r.state.status).toBe("failed");
    expect(errorOf(r.state)).toBe(boom);
    expect(r.calls).not.toContain("/#/fs/b");
  });

  it("do not skip ahead while an earlier alternate's namer is pending", () => {
    const r = bind("/svc=>/#/fs/slow | /#/fs/b", "/svc", ["b"], { "/#/fs/slow": PENDING });
    expect(r.state.status).toBe("pending");
    expect(r.calls).not.toContain("/#/fs/b");
  });
});

describe("unions", () => {
  it("keep the branches that bind and drop the neg ones", () => {
    expect(bind("/svc=>/#/fs/a & /#/fs/missing & /#/fs/b", "/svc", ["a", "b"]).shape).toEqual({
      union: [
        [1, "/#/fs/a"],
        [1, "/#/fs/b"],
      ],
    });
  });

  it("keep the weights of the surviving branches", () => {
    expect(bind("/svc=>0.3 * /#/fs/a & 0.7 * /#/fs/b", "/svc", ["a", "b"]).shape).toEqual({
      union: [
        [0.3, "/#/fs/a"],
        [0.7, "/#/fs/b"],
      ],
    });
    expect(
      bind("/svc=>0.2 * /#/fs/a & 0.3 * /#/fs/missing & 0.5 * /#/fs/b", "/svc", ["a", "b"]).shape,
    ).toEqual({
      union: [
        [0.2, "/#/fs/a"],
        [0.5, "/#/fs/b"],
      ],
    });
  });

  it("become the single surviving branch", () => {
    expect(bind("/svc=>0.3 * /#/fs/a & 0.7 * /#/fs/missing", "/svc", ["a"]).shape).toBe("/#/fs/a");
  });

  it("are neg when every branch is neg", () => {
    expect(bind("/svc=>/#/fs/m1 & /#/fs/m2 & ~", "/svc").shape).toBe("~");
  });

  it("let an all-neg union fall through to the next alternate", () => {
    expect(bind("/svc=>(/#/fs/m1 & /#/fs/m2) | /#/fs/b", "/svc", ["b"]).shape).toBe("/#/fs/b");
  });

  it("bind each branch through further rewrites and alternates", () => {
    expect(
      bind("/svc=>/x & (/#/fs/missing | /y);/x=>/#/fs/a;/y=>/#/fs/b", "/svc", ["a", "b"]).shape,
    ).toEqual({
      union: [
        [1, "/#/fs/a"],
        [1, "/#/fs/b"],
      ],
    });
  });

  it("bind every branch (unlike alternates)", () => {
    const r = bind("/svc=>/#/fs/a & /#/fs/b", "/svc", ["a", "b"]);
    expect(r.calls).toEqual(["/#/fs/a", "/#/fs/b"]);
  });

  it("are ok with the ok branch when another branch is pending", () => {
    const r = bind("/svc=>0.4 * /#/fs/slow & 0.6 * /#/fs/a", "/svc", ["a"], {
      "/#/fs/slow": PENDING,
    });
    expect(r.shape).toBe("/#/fs/a");
  });

  it("are ok with the ok branches when another branch failed", () => {
    const r = bind("/svc=>/#/fs/boom & /#/fs/a & /#/fs/b", "/svc", ["a", "b"], {
      "/#/fs/boom": failed("boom"),
    });
    expect(r.shape).toEqual({
      union: [
        [1, "/#/fs/a"],
        [1, "/#/fs/b"],
      ],
    });
  });

  it("are failed with the first failure when no branch is ok and one failed", () => {
    const first = new Error("first");
    const r = bind("/svc=>/#/fs/slow & /#/fs/f1 & /#/fs/f2", "/svc", [], {
      "/#/fs/slow": PENDING,
      "/#/fs/f1": failed(first),
      "/#/fs/f2": failed("second"),
    });
    expect(errorOf(r.state)).toBe(first);
  });

  it("are pending when every branch is pending", () => {
    const r = bind("/svc=>/#/fs/s1 & /#/fs/s2", "/svc", [], {
      "/#/fs/s1": PENDING,
      "/#/fs/s2": PENDING,
    });
    expect(r.state.status).toBe("pending");
  });

  it("drop a branch that loops past the depth limit when another branch binds", () => {
    // Finagle's bindUnion keeps the Ok branches and drops failed ones.
    expect(bind("/svc=>/#/fs/a & /loop;/loop=>/loop/x", "/svc", ["a"]).shape).toBe("/#/fs/a");
  });
});

describe("namers", () => {
  it("are asked with the whole path when no dentry matches", () => {
    const r = bind("", "/#/fs/a/r", ["a"]);
    expect(r.calls).toEqual(["/#/fs/a/r"]);
    expect(r.shape).toBe("/#/fs/a (residual /r)");
  });

  it("are not asked about a path that a dentry matches", () => {
    const r = bind("/svc=>/#/fs/a", "/svc", ["a"]);
    expect(r.calls).toEqual(["/#/fs/a"]);
  });

  it("give neg when they do not know the name", () => {
    const r = bind("/other=>/x", "/svc");
    expect(r.calls).toEqual(["/svc"]);
    expect(r.shape).toBe("~");
  });

  it("answer a path whose only matching dentry is `~` (the dtab lookup is neg)", () => {
    const r = bind("/#/fs/a=>~", "/#/fs/a", ["a"]);
    expect(r.shape).toBe("/#/fs/a");
  });

  it("are not asked when matching dentries give alternates that are all neg", () => {
    const r = bind("/#/fs/a=>~;/#/fs/a=>~", "/#/fs/a", ["a"]);
    expect(r.shape).toBe("~");
    expect(r.calls).toEqual([]);
  });

  it("return the namer's bound name itself as the leaf", () => {
    const b = boundName(readPath("/#/fs/x"), addrA, Path.of("r"));
    const r = bind("/svc=>/#/fs/x", "/svc", [], { "/#/fs/x": ok(leaf<Name>(b)) });
    expect(r.state.status === "ok" && r.state.value.kind === "leaf" && r.state.value.value).toBe(b);
  });

  it("can answer with a path, which is bound further through the dtab", () => {
    const r = bind("/svc=>/$/rw/x;/next=>/#/fs/a", "/svc", ["a"], {
      "/$/rw/x": ok(leaf(pathName(readPath("/next")))),
    });
    expect(r.shape).toBe("/#/fs/a");
    expect(r.calls).toEqual(["/$/rw/x", "/#/fs/a"]);
  });

  it("can answer with alternates of paths and bound names", () => {
    const r = bind("", "/$/multi", ["b"], {
      "/$/multi": ok(
        alt<Name>(leaf(pathName(readPath("/#/fs/missing"))), leaf(pathName(readPath("/#/fs/b")))),
      ),
    });
    expect(r.shape).toBe("/#/fs/b");
  });

  it("propagate a pending state as pending", () => {
    expect(
      bind("/svc=>/x;/x=>/#/fs/slow", "/svc", [], { "/#/fs/slow": PENDING }).state.status,
    ).toBe("pending");
  });

  it("propagate a failed state as failed, with the namer's error", () => {
    const boom = new Error("namer down");
    const r = bind("/svc=>/#/fs/boom", "/svc", [], { "/#/fs/boom": failed(boom) });
    expect(errorOf(r.state)).toBe(boom);
  });
});

describe("the depth limit", () => {
  it("fails a self-extending rewrite `/a => /a/a` with LINTEL_BIND_DEPTH", () => {
    const r = bind("/a=>/a/a", "/a");
    const e = errorOf(r.state);
    expect(e).toBeInstanceOf(BindingError);
    expect(e.name).toBe("BindingError");
    expect((e as BindingError).code).toBe("LINTEL_BIND_DEPTH");
    expect(e.message).toContain("binding /a");
    expect(e.message).toContain(String(MAX_DEPTH));
  });

  it("fails a two-dentry loop with LINTEL_BIND_DEPTH", () => {
    expect((errorOf(bind("/a=>/b;/b=>/a", "/a").state) as BindingError).code).toBe(
      "LINTEL_BIND_DEPTH",
    );
  });

  it("fails a loop through alternates with LINTEL_BIND_DEPTH instead of overflowing the stack", () => {
    const e = errorOf(bind("/a=>/a | /#/fs/b", "/a", ["b"]).state);
    expect(e).toBeInstanceOf(BindingError);
    expect((e as BindingError).code).toBe("LINTEL_BIND_DEPTH");
  });

  // Finagle's Namer.bind fails when depth > 100; the tree a lookup returns is bound one level
  // deeper, so a chain of 99 rewrites (100 lookups) binds and a chain of 100 does not.
  const chain = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      i === n - 1 ? `/p${i}=>/#/fs/end` : `/p${i}=>/p${i + 1}`,
    ).join(";");

  it(`binds a chain of ${MAX_DEPTH - 1} rewrites`, () => {
    expect(MAX_DEPTH).toBe(100);
    expect(bind(chain(MAX_DEPTH - 1), "/p0", ["end"]).shape).toBe("/#/fs/end");
  });

  it(`fails a chain of ${MAX_DEPTH} rewrites with LINTEL_BIND_DEPTH`, () => {
    const e = errorOf(bind(chain(MAX_DEPTH), "/p0", ["end"]).state) as BindingError;
    expect(e.code).toBe("LINTEL_BIND_DEPTH");
  });
});

describe("pathological dtabs", () => {
  const doubling = (op: "&" | "|", n = 20) =>
    Array.from({ length: n }, (_, i) => `/p${i}=>/p${i + 1} ${op} /p${i + 1}`).join(";");

  it("an exponential tree of alternates that never bind fails with LINTEL_BIND_TOO_COMPLEX", () => {
    const r = bind(doubling("|"), "/p0");
    const e = errorOf(r.state) as BindingError;
    expect(e).toBeInstanceOf(BindingError);
    expect(e.code).toBe("LINTEL_BIND_TOO_COMPLEX");
    expect(e.message).toContain(String(MAX_LOOKUPS));
    expect(r.calls.length).toBeLessThanOrEqual(MAX_LOOKUPS);
  });

  it("an exponential union stops after at most MAX_LOOKUPS lookups", () => {
    const bound = bind(`${doubling("&")};/p20=>/#/fs/a`, "/p0", ["a"]);
    expect(bound.calls.length).toBeGreaterThan(0);
    expect(bound.calls.length).toBeLessThanOrEqual(MAX_LOOKUPS);
    const neg = bind(doubling("&"), "/p0");
    expect(neg.calls.length).toBeLessThanOrEqual(MAX_LOOKUPS);
  });

  // Regression: when the lookup budget ran out inside a union, the branches bound so far are kept and
  // the rest (failed with LINTEL_BIND_TOO_COMPLEX) are dropped like any failed union branch, so
  // the binding is ok: a union of an arbitrary subset of the 2^20 leaves when /p20 binds, or
  // ok(neg) when it does not. The budget is a limit on the whole binding, not a branch failure;
  // the result must be failed(LINTEL_BIND_TOO_COMPLEX), as it is for alternates.
  it("an exponential union fails with LINTEL_BIND_TOO_COMPLEX (leaves bind)", () => {
    const r = bind(`${doubling("&")};/p20=>/#/fs/a`, "/p0", ["a"]);
    expect(r.state.status).toBe("failed");
    expect((errorOf(r.state) as BindingError).code).toBe("LINTEL_BIND_TOO_COMPLEX");
  });

  // Regression: same as above; with neg leaves the binding currently returns ok(neg).
  it("an exponential union fails with LINTEL_BIND_TOO_COMPLEX (leaves are neg)", () => {
    const r = bind(doubling("&"), "/p0");
    expect(r.state.status).toBe("failed");
    expect((errorOf(r.state) as BindingError).code).toBe("LINTEL_BIND_TOO_COMPLEX");
  });

  it("a dtab just under the budget still binds completely", () => {
    // 2^10 = 1024 leaves, about 2k lookups: well under MAX_LOOKUPS
    const r = bind(`${doubling("&", 10)};/p10=>/#/fs/a`, "/p0", ["a"]);
    expect(r.state.status).toBe("ok");
    expect(r.calls.length).toBe(1024);
  });
});

describe("transformers", () => {
  it("are applied to the bound leaf", () => {
    const r = bind("/svc=>/#/fs/a", "/svc", ["a"], {}, [prefixer("io.l5d.port")]);
    expect(r.shape).toBe("/%/io.l5d.port/#/fs/a");
  });

  it("are applied to every leaf of a union, keeping the weights", () => {
    const calls: string[] = [];
    const r = bind("/svc=>0.3 * /#/fs/a & 0.7 * /#/fs/b", "/svc", ["a", "b"], {}, [
      prefixer("t", calls),
    ]);
    expect(calls).toEqual(["/#/fs/a", "/#/fs/b"]);
    expect(r.shape).toEqual({
      union: [
        [0.3, "/%/t/#/fs/a"],
        [0.7, "/%/t/#/fs/b"],
      ],
    });
  });

  it("are applied in order, each to the previous one's output", () => {
    const r = bind("/svc=>/#/fs/a", "/svc", ["a"], {}, [prefixer("t1"), prefixer("t2")]);
    expect(r.shape).toBe("/%/t2/%/t1/#/fs/a");
  });

  it("keep the residual of the bound name they transform", () => {
    const r = bind("/svc=>/#/fs", "/svc/a/rest", ["a"], {}, [prefixer("t")]);
    expect(r.shape).toBe("/%/t/#/fs/a (residual /rest)");
  });

  it("use transformTree for the whole tree when the transformer has it", () => {
    const leafCalls: string[] = [];
    const whole: Transformer = {
      name: "whole",
      transformLeaf: (b) => {
        leafCalls.push(b.id.show);
        return ok(leaf(b));
      },
      transformTree: () => ok(Empty),
    };
    const r = bind("/svc=>/#/fs/a & /#/fs/b", "/svc", ["a", "b"], {}, [whole]);
    expect(r.shape).toBe("$");
    expect(leafCalls).toEqual([]);
  });

  it("drop a union branch whose leaf a transformer turns into neg", () => {
    const dropB: Transformer = {
      name: "drop-b",
      transformLeaf: (b) => (b.id.show === "/#/fs/b" ? ok(Neg) : ok(leaf(b))),
    };
    expect(bind("/svc=>/#/fs/a & /#/fs/b", "/svc", ["a", "b"], {}, [dropB]).shape).toBe("/#/fs/a");
  });

  it("are not applied when the binding is neg, pending or failed", () => {
    const calls: string[] = [];
    const t = [prefixer("t", calls)];
    expect(bind("/svc=>/#/fs/missing", "/svc", [], {}, t).shape).toBe("~");
    expect(bind("/svc=>/#/fs/s", "/svc", [], { "/#/fs/s": PENDING }, t).state.status).toBe(
      "pending",
    );
    expect(bind("/svc=>/#/fs/f", "/svc", [], { "/#/fs/f": failed("x") }, t).state.status).toBe(
      "failed",
    );
    expect(calls).toEqual([]);
  });

  it("make the binding failed or pending when they are", () => {
    const err = new Error("transformer broke");
    const failing: Transformer = { name: "f", transformLeaf: () => failed(err) };
    const waiting: Transformer = { name: "w", transformLeaf: () => PENDING };
    expect(errorOf(bind("/svc=>/#/fs/a", "/svc", ["a"], {}, [failing]).state)).toBe(err);
    expect(bind("/svc=>/#/fs/a", "/svc", ["a"], {}, [waiting]).state.status).toBe("pending");
  });
});

// ---- reactivity -------------------------------------------------------------------------------

/** A Cell that counts how often its source was started and stopped. */
function countingCell<T>(initial: T) {
  const counts = { starts: 0, stops: 0 };
  const cell = new Cell<T>(initial, () => {
    counts.starts++;
    return () => {
      counts.stops++;
    };
  });
  return { cell, counts };
}

describe("computed() + bindPath reactivity", () => {
  function setup(dtab: string, cells: Record<string, Cell<State<NameTree<Name>>>>) {
    const specials: Record<string, Special> = {};
    for (const [path, cell] of Object.entries(cells)) specials[path] = (_p, read) => read(cell);
    const namers = fakeNamers([], specials);
    let computations = 0;
    const v = computed((read) => {
      computations++;
      return bindPath(ctxOf(dtab, namers), readPath("/svc"), read);
    }, boundStateEquals);
    const seen: unknown[] = [];
    return {
      v,
      seen,
      observe: () => v.observe((s) => seen.push(stateShape(s))),
      computations: () => computations,
    };
  }

  it("notifies when the namer switches from neg to a bound leaf and back", () => {
    const { cell } = countingCell<State<NameTree<Name>>>(ok(Neg));
    const s = setup("/svc=>/#/fs/dyn", { "/#/fs/dyn": cell });
    const stop = s.observe();
    expect(stateShape(s.v.sample())).toBe("~");
    cell.set(boundDyn("/#/fs/dyn"));
    expect(s.seen).toEqual(["/#/fs/dyn"]);
    expect(stateShape(s.v.sample())).toBe("/#/fs/dyn");
    cell.set(ok(Neg));
    expect(s.seen).toEqual(["/#/fs/dyn", "~"]);
    stop();
  });

  it("notifies on pending -> ok and ok -> failed", () => {
    const { cell } = countingCell<State<NameTree<Name>>>(PENDING);
    const s = setup("/svc=>/#/fs/dyn", { "/#/fs/dyn": cell });
    const stop = s.observe();
    cell.set(boundDyn("/#/fs/dyn"));
    cell.set(failed("gone"));
    expect(s.seen).toEqual(["/#/fs/dyn", { failed: "gone" }]);
    stop();
  });

  it("does not notify when the recomputed tree is structurally equal", () => {
    const { cell } = countingCell<State<NameTree<Name>>>(boundDyn("/#/fs/dyn"));
    const s = setup("/svc=>/#/fs/dyn", { "/#/fs/dyn": cell });
    const stop = s.observe();
    const before = s.computations();
    // a new but equal state object: the cell fires, the binding is recomputed, nothing changes
    cell.set(boundDyn("/#/fs/dyn"));
    expect(s.computations()).toBe(before + 1);
    expect(s.seen).toEqual([]);
    // a different address source is a different bound name
    cell.set(boundDyn("/#/fs/dyn", constant(addrBound([]))));
    expect(s.seen).toEqual(["/#/fs/dyn"]);
    stop();
  });

  it("unsubscribes from a dependency it no longer reads, and resubscribes when it reads it again", () => {
    const a = countingCell<State<NameTree<Name>>>(ok(Neg));
    const b = countingCell<State<NameTree<Name>>>(boundDyn("/#/fs/b"));
    const s = setup("/svc=>/#/fs/a | /#/fs/b", { "/#/fs/a": a.cell, "/#/fs/b": b.cell });
    const stop = s.observe();
    expect(stateShape(s.v.sample())).toBe("/#/fs/b");
    expect(a.counts).toEqual({ starts: 1, stops: 0 });
    expect(b.counts).toEqual({ starts: 1, stops: 0 });

    a.cell.set(boundDyn("/#/fs/a")); // the first alternate binds: b is not read any more
    expect(s.seen).toEqual(["/#/fs/a"]);
    expect(b.counts).toEqual({ starts: 1, stops: 1 });
    expect(b.cell.observed).toBe(false);
    expect(a.counts).toEqual({ starts: 1, stops: 0 });

    b.cell.set(boundDyn("/#/fs/b", constant(addrBound([])))); // not observed: no recomputation
    expect(s.seen).toEqual(["/#/fs/a"]);

    a.cell.set(ok(Neg)); // back to b
    expect(b.counts).toEqual({ starts: 2, stops: 1 });
    expect(s.seen).toEqual(["/#/fs/a", "/#/fs/b"]);

    stop();
    expect(a.counts).toEqual({ starts: 1, stops: 1 });
    expect(b.counts).toEqual({ starts: 2, stops: 2 });
  });

  it("stops every source when the last observer leaves, and not before", () => {
    const a = countingCell<State<NameTree<Name>>>(boundDyn("/#/fs/a"));
    const s = setup("/svc=>/#/fs/a", { "/#/fs/a": a.cell });
    const stop1 = s.observe();
    const stop2 = s.observe();
    expect(a.counts).toEqual({ starts: 1, stops: 0 });
    stop1();
    expect(a.counts).toEqual({ starts: 1, stops: 0 });
    stop2();
    expect(a.counts).toEqual({ starts: 1, stops: 1 });
  });

  it("samples a fresh snapshot without starting sources when nobody observes", () => {
    const a = countingCell<State<NameTree<Name>>>(ok(Neg));
    const s = setup("/svc=>/#/fs/a", { "/#/fs/a": a.cell });
    expect(stateShape(s.v.sample())).toBe("~");
    a.cell.set(boundDyn("/#/fs/a"));
    expect(stateShape(s.v.sample())).toBe("/#/fs/a");
    expect(a.counts).toEqual({ starts: 0, stops: 0 });
  });

  it("records a dependency read by a transformer", () => {
    const port = countingCell<number>(8080);
    const t: Transformer = {
      name: "port",
      transformLeaf: (b, read) =>
        ok(
          leaf(
            boundName(
              Path.of("%", "port", String(read(port.cell))).concat(b.id),
              b.addr,
              b.residual,
            ),
          ),
        ),
    };
    const namers = fakeNamers(["a"]);
    const v = computed(
      (read) => bindPath(ctxOf("/svc=>/#/fs/a", namers, [t]), readPath("/svc"), read),
      boundStateEquals,
    );
    const seen: unknown[] = [];
    const stop = v.observe((s) => seen.push(stateShape(s)));
    expect(port.counts.starts).toBe(1);
    port.cell.set(9090);
    expect(seen).toEqual(["/%/port/9090/#/fs/a"]);
    stop();
    expect(port.counts.stops).toBe(1);
  });
});

describe("settle", () => {
  it("resolves at once with a state that is not pending", async () => {
    const s = await settle(constantOk(42));
    expect(s).toEqual({ status: "ok", value: 42 });
  });

  it("resolves with the first state that is not pending, and stops observing", async () => {
    const { cell, counts } = countingCell<State<number>>(PENDING);
    const p = settle(cell);
    expect(await Promise.race([p, Promise.resolve("not yet")])).toBe("not yet");
    expect(counts.starts).toBe(1);
    cell.set({ status: "pending" }); // a new pending object: still waiting
    expect(await Promise.race([p, Promise.resolve("not yet")])).toBe("not yet");
    cell.set(ok(1));
    cell.set(ok(2));
    expect(await p).toEqual({ status: "ok", value: 1 });
    expect(cell.observed).toBe(false);
    expect(counts.stops).toBe(1);
  });

  it("resolves with a failed state", async () => {
    const cell = new Cell<State<number>>(PENDING);
    const p = settle(cell);
    cell.set(failed("no"));
    const s = await p;
    expect(s.status).toBe("failed");
    expect(errorOf(s).message).toBe("no");
  });

  it("starts a lazy source by observing it and resolves when the source publishes on start", async () => {
    const counts = { starts: 0, stops: 0 };
    const cell = new Cell<State<string>>(PENDING, (c) => {
      counts.starts++;
      c.set(ok("ready"));
      return () => {
        counts.stops++;
      };
    });
    expect(await settle(cell)).toEqual({ status: "ok", value: "ready" });
    expect(counts).toEqual({ starts: 1, stops: 1 });
  });

  it("resolves with the current (pending) state when the signal aborts, and stops observing", async () => {
    const { cell, counts } = countingCell<State<number>>(PENDING);
    const ac = new AbortController();
    const p = settle(cell, ac.signal);
    expect(await Promise.race([p, Promise.resolve("not yet")])).toBe("not yet");
    ac.abort();
    expect((await p).status).toBe("pending");
    expect(cell.observed).toBe(false);
    expect(counts).toEqual({ starts: 1, stops: 1 });
  });

  it("resolves at once with the current state when the signal is already aborted", async () => {
    const cell = new Cell<State<number>>(PENDING);
    const ac = new AbortController();
    ac.abort();
    expect((await settle(cell, ac.signal)).status).toBe("pending");
    expect(cell.observed).toBe(false);
  });

  it("ignores an abort after it resolved", async () => {
    const cell = new Cell<State<number>>(PENDING);
    const ac = new AbortController();
    const p = settle(cell, ac.signal);
    cell.set(ok(7));
    ac.abort();
    expect(await p).toEqual({ status: "ok", value: 7 });
  });

  it("waits for a binding whose namer is pending", async () => {
    const { cell } = countingCell<State<NameTree<Name>>>(PENDING);
    const namers = fakeNamers([], { "/#/fs/dyn": (_p, read) => read(cell) });
    const v = computed(
      (read) => bindPath(ctxOf("/svc=>/#/fs/dyn", namers), readPath("/svc"), read),
      boundStateEquals,
    );
    const p = settle(v);
    expect(await Promise.race([p, Promise.resolve("not yet")])).toBe("not yet");
    cell.set(boundDyn("/#/fs/dyn"));
    expect(stateShape(await p)).toBe("/#/fs/dyn");
    expect(cell.observed).toBe(false);
  });
});

describe("boundStateEquals", () => {
  const b1: BoundName = boundName(readPath("/#/fs/a"), addrA, Path.empty);
  it("compares trees structurally and bound names by id, residual and address source", () => {
    const same = boundName(readPath("/#/fs/a"), addrA, Path.empty);
    expect(boundStateEquals(ok(leaf(b1)), ok(leaf(same)))).toBe(true);
    expect(
      boundStateEquals(
        ok(leaf(b1)),
        ok(leaf(boundName(readPath("/#/fs/a"), constant(addrBound([])), Path.empty))),
      ),
    ).toBe(false);
    expect(
      boundStateEquals(ok(leaf(b1)), ok(leaf(boundName(readPath("/#/fs/a"), addrA, Path.of("r"))))),
    ).toBe(false);
    expect(
      boundStateEquals(ok(union(weighted(1, leaf(b1)))), ok(union(weighted(2, leaf(same))))),
    ).toBe(false);
    expect(boundStateEquals(ok(Neg), ok(Neg))).toBe(true);
    expect(boundStateEquals(ok(Neg), ok(Empty))).toBe(false);
    expect(boundStateEquals(PENDING, { status: "pending" })).toBe(true);
    expect(boundStateEquals(failed("x"), failed("x"))).toBe(true);
    expect(boundStateEquals(failed("x"), failed("y"))).toBe(false);
    expect(boundStateEquals(PENDING, ok(Neg))).toBe(false);
  });
});
