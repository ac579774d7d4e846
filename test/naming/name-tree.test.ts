import { describe, expect, it } from "vitest";
import {
  ANY,
  alt,
  Dtab,
  Empty,
  Fail,
  leaf,
  mapTree,
  type NameTree,
  Neg,
  Path,
  Prefix,
  readDtab,
  readNameTree,
  readPath,
  rewrite,
  showPathTree,
  showTree,
  simplify,
  union,
  weighted,
} from "../../gateway/naming/index.js";
import { pathShape, segShape } from "./helpers.js";

const p = (text: string) => readPath(text);
const L = (text: string): NameTree<Path> => leaf(p(text));

describe("name tree constructors", () => {
  it("has frozen singleton terminals", () => {
    expect(Neg.kind).toBe("neg");
    expect(Fail.kind).toBe("fail");
    expect(Empty.kind).toBe("empty");
    expect(Object.isFrozen(Neg) && Object.isFrozen(Fail) && Object.isFrozen(Empty)).toBe(true);
  });

  it("builds leaves, alternates, unions and weighted branches", () => {
    const t = alt(L("/a"), union(weighted(0.5, L("/b")), weighted(2, Neg)));
    expect(pathShape(t)).toEqual({
      alt: [
        "/a",
        {
          union: [
            [0.5, "/b"],
            [2, "~"],
          ],
        },
      ],
    });
  });
});

describe("mapTree", () => {
  it("maps every leaf and keeps the structure and weights", () => {
    const t = readNameTree("/a | 0.3 * /b & 0.7 * (/c | !) | $ | ~");
    const m = mapTree(t, (x) => x.concat(Path.of("z")));
    expect(pathShape(m)).toEqual({
      alt: [
        "/a/z",
        {
          union: [
            [0.3, "/b/z"],
            [0.7, { alt: ["/c/z", "!"] }],
          ],
        },
        "$",
        "~",
      ],
    });
  });

  it("returns terminals unchanged", () => {
    expect(mapTree(Neg, () => 1)).toBe(Neg);
    expect(mapTree(Fail, () => 1)).toBe(Fail);
    expect(mapTree(Empty, () => 1)).toBe(Empty);
  });

  it("does not modify the input tree", () => {
    const t = readNameTree("/a & /b");
    const before = segShape(t);
    mapTree(t, (x) => x.concat(Path.of("z")));
    expect(segShape(t)).toEqual(before);
  });
});

describe("simplify", () => {
  it("drops fail branches from a union, as Finagle does", () => {
    const t = union(weighted(1, L("/a")), weighted(2, Fail), weighted(3, L("/b")));
    expect(simplify(t)).toEqual(union(weighted(1, L("/a")), weighted(3, L("/b"))));
    expect(simplify(union(weighted(1, Fail), weighted(1, Neg)))).toBe(Neg);
  });

  it("ends alternates at the first fail (later alternates can never be reached)", () => {
    expect(simplify(alt(Neg, L("/a"), Fail, L("/b")))).toEqual(alt(L("/a"), Fail));
    expect(simplify(alt(Neg, Fail, L("/b")))).toBe(Fail);
  });

  it("returns leaves and terminals as they are", () => {
    const l = L("/a");
    expect(simplify(l)).toBe(l);
    expect(simplify(Neg)).toBe(Neg);
    expect(simplify(Fail)).toBe(Fail);
    expect(simplify(Empty)).toBe(Empty);
  });

  it("drops neg alternates and keeps the order of the rest", () => {
    expect(pathShape(simplify(alt(Neg, L("/a"), Neg, L("/b"), Neg)))).toEqual({
      alt: ["/a", "/b"],
    });
  });

  it("replaces an alternate list with a single survivor by that survivor", () => {
    expect(pathShape(simplify(alt(Neg, L("/a"), Neg)))).toBe("/a");
    expect(pathShape(simplify(alt(L("/a"))))).toBe("/a");
  });

  it("turns an alternate list of only negs, or no trees at all, into neg", () => {
    expect(simplify(alt(Neg, Neg))).toBe(Neg);
    expect(simplify(alt<Path>())).toBe(Neg);
  });

  it("flattens nested alternates (evaluation-equivalent)", () => {
    expect(pathShape(simplify(alt(alt(L("/a"), L("/b")), L("/c"), alt(Neg, L("/d")))))).toEqual({
      alt: ["/a", "/b", "/c", "/d"],
    });
  });

  it("keeps fail and empty alternates", () => {
    expect(pathShape(simplify(alt(Neg, Empty, L("/a"))))).toEqual({ alt: ["$", "/a"] });
    expect(pathShape(simplify(alt(Neg, Fail)))).toBe("!");
  });

  it("drops neg union branches and keeps the weights of the others", () => {
    const t = union(weighted(0.3, L("/a")), weighted(0.2, Neg), weighted(0.5, L("/b")));
    expect(pathShape(simplify(t))).toEqual({
      union: [
        [0.3, "/a"],
        [0.5, "/b"],
      ],
    });
  });

  it("replaces a union with a single surviving branch by that branch's tree (weight dropped)", () => {
    expect(pathShape(simplify(union(weighted(0.3, L("/a")), weighted(0.7, Neg))))).toBe("/a");
    expect(pathShape(simplify(union(weighted(4, L("/a")))))).toBe("/a");
  });

  it("turns a union of only negs, or no branches at all, into neg", () => {
    expect(simplify(union(weighted(1, Neg), weighted(2, Neg)))).toBe(Neg);
    expect(simplify(union<Path>())).toBe(Neg);
  });

  it("drops a branch that simplifies to neg (a union of negs inside a union)", () => {
    const inner = union(weighted(1, Neg), weighted(1, alt(Neg, Neg)));
    expect(pathShape(simplify(union(weighted(0.5, inner), weighted(0.5, L("/a")))))).toBe("/a");
  });

  it("simplifies inside union branches but does not flatten nested unions (weights would change)", () => {
    const t = union(
      weighted(1, L("/a")),
      weighted(2, union(weighted(1, L("/b")), weighted(3, L("/c")))),
    );
    expect(pathShape(simplify(t))).toEqual({
      union: [
        [1, "/a"],
        [
          2,
          {
            union: [
              [1, "/b"],
              [3, "/c"],
            ],
          },
        ],
      ],
    });
  });

  it("simplifies alternates inside unions and unions inside alternates", () => {
    const t = alt(Neg, union(weighted(1, alt(Neg, L("/a"))), weighted(1, alt(L("/b"), Neg))));
    expect(pathShape(simplify(t))).toEqual({
      union: [
        [1, "/a"],
        [1, "/b"],
      ],
    });
  });

  it("keeps empty union branches", () => {
    expect(pathShape(simplify(union(weighted(1, Empty), weighted(1, L("/a")))))).toEqual({
      union: [
        [1, "$"],
        [1, "/a"],
      ],
    });
  });

  it("is a fixpoint: simplifying twice gives the same tree as once", () => {
    const trees = [
      "~ | /a | (~ | (/b | ~)) | $",
      "0.2 * ~ & 0.3 * (/a | ~) & 0.5 * (~ & ~)",
      "((/a & ~) | ~) & (/b | /c)",
      "~ | ~",
      "!",
    ].map(readNameTree);
    for (const t of trees) {
      const once = simplify(t);
      expect(pathShape(simplify(once))).toEqual(pathShape(once));
    }
  });

  it("does not modify the input tree", () => {
    const t = readNameTree("~ | /a | 0.5 * ~ & /b");
    const before = segShape(t);
    simplify(t);
    expect(segShape(t)).toEqual(before);
  });
});

describe("showTree", () => {
  it("prints terminals as `~`, `!` and `$`", () => {
    expect(showPathTree(Neg)).toBe("~");
    expect(showPathTree(Fail)).toBe("!");
    expect(showPathTree(Empty)).toBe("$");
  });

  it("prints leaves with the given function", () => {
    expect(showTree(leaf(42), (n) => `<${n}>`)).toBe("<42>");
    expect(showTree(alt(leaf(1), leaf(2)), (n) => `#${n}`)).toBe("#1 | #2");
  });

  it("prints alternates with ` | ` and unions with ` & `", () => {
    expect(showPathTree(alt(L("/a"), L("/b"), Neg))).toBe("/a | /b | ~");
    expect(showPathTree(union(weighted(1, L("/a")), weighted(1, L("/b"))))).toBe("/a & /b");
  });

  it("prints weights other than 1 as `w * tree`", () => {
    expect(
      showPathTree(union(weighted(0.3, L("/a")), weighted(1, L("/b")), weighted(2, L("/c")))),
    ).toBe("0.3 * /a & /b & 2 * /c");
  });

  it("parenthesises an alternate inside a union", () => {
    expect(showPathTree(union(weighted(1, alt(L("/a"), L("/b"))), weighted(1, L("/c"))))).toBe(
      "(/a | /b) & /c",
    );
  });

  it("parenthesises a weighted alternate", () => {
    expect(showPathTree(union(weighted(0.5, alt(L("/a"), L("/b"))), weighted(0.5, L("/c"))))).toBe(
      "0.5 * (/a | /b) & 0.5 * /c",
    );
  });

  it("does not parenthesise a union inside an alternate", () => {
    expect(showPathTree(alt(union(weighted(1, L("/a")), weighted(1, L("/b"))), L("/c")))).toBe(
      "/a & /b | /c",
    );
  });

  it("parenthesises a union inside a union and an alternate inside an alternate", () => {
    expect(
      showPathTree(
        union(weighted(1, L("/a")), weighted(1, union(weighted(1, L("/b")), weighted(1, L("/c"))))),
      ),
    ).toBe("/a & (/b & /c)");
    expect(showPathTree(alt(L("/a"), alt(L("/b"), L("/c"))))).toBe("/a | (/b | /c)");
    expect(showPathTree(alt(alt(L("/a"), L("/b")), L("/c")))).toBe("(/a | /b) | /c");
  });

  it("parenthesises deep nestings at every level that needs it", () => {
    const inner = alt(union(weighted(1, L("/a")), weighted(1, L("/b"))), L("/c"));
    const t = union(
      weighted(2, inner),
      weighted(1, alt(L("/d"), union(weighted(1, alt(L("/e"), L("/f"))), weighted(1, L("/g"))))),
    );
    expect(showPathTree(t)).toBe("2 * (/a & /b | /c) & (/d | (/e | /f) & /g)");
  });

  it("prints text that reads back as the same tree", () => {
    const trees: NameTree<Path>[] = [
      alt(union(weighted(1, L("/a")), weighted(1, L("/b"))), L("/c")),
      union(weighted(1, alt(L("/a"), L("/b"))), weighted(1, L("/c"))),
      alt(alt(L("/a"), L("/b")), alt(L("/c"), Fail)),
      union(weighted(0.5, union(weighted(1, L("/a")), weighted(3, L("/b")))), weighted(0.5, Empty)),
      union(
        weighted(0.5, alt(L("/a"), union(weighted(2, alt(L("/b"), Neg)), weighted(1, L("/c"))))),
        weighted(1, L("/d")),
      ),
      leaf(Path.of("a b", "*", "é")),
    ];
    for (const t of trees) {
      expect(segShape(readNameTree(showPathTree(t)))).toEqual(segShape(t));
    }
  });
});

describe("Path", () => {
  it("Path.of builds a path from raw segments without parsing", () => {
    const x = Path.of("a", "b/c", "*");
    expect(x.segments).toEqual(["a", "b/c", "*"]);
    expect(x.size).toBe(3);
  });

  it("Path.of with no segments is the empty path", () => {
    expect(Path.of()).toBe(Path.empty);
    expect(Path.empty.isEmpty).toBe(true);
    expect(Path.empty.size).toBe(0);
    expect(Path.empty.show).toBe("/");
  });

  it("Path.of refuses empty segments", () => {
    expect(() => Path.of("")).toThrow("a path segment may not be empty");
    expect(() => Path.of("a", "", "b")).toThrow("a path segment may not be empty");
  });

  it("fromTrusted of no segments is the empty path", () => {
    expect(Path.fromTrusted([])).toBe(Path.empty);
    expect(Path.fromTrusted(["a"]).segments).toEqual(["a"]);
  });

  it("startsWith compares whole segments", () => {
    const x = p("/svc/users/v1");
    expect(x.startsWith(p("/svc"))).toBe(true);
    expect(x.startsWith(p("/svc/users"))).toBe(true);
    expect(x.startsWith(x)).toBe(true);
    expect(x.startsWith(Path.empty)).toBe(true);
    expect(x.startsWith(p("/sv"))).toBe(false);
    expect(x.startsWith(p("/users"))).toBe(false);
    expect(x.startsWith(p("/svc/users/v1/extra"))).toBe(false);
    expect(Path.empty.startsWith(p("/a"))).toBe(false);
    expect(Path.empty.startsWith(Path.empty)).toBe(true);
  });

  it("take keeps the first n segments", () => {
    const x = p("/a/b/c");
    expect(x.take(0)).toBe(Path.empty);
    expect(x.take(1).show).toBe("/a");
    expect(x.take(2).show).toBe("/a/b");
    expect(x.take(3)).toBe(x);
    expect(x.take(10)).toBe(x);
    expect(x.take(-1)).toBe(Path.empty);
  });

  it("drop removes the first n segments", () => {
    const x = p("/a/b/c");
    expect(x.drop(0)).toBe(x);
    expect(x.drop(-2)).toBe(x);
    expect(x.drop(1).show).toBe("/b/c");
    expect(x.drop(2).show).toBe("/c");
    expect(x.drop(3)).toBe(Path.empty);
    expect(x.drop(10)).toBe(Path.empty);
  });

  it("take and drop split a path into parts that concatenate back", () => {
    const x = p("/a/b/c/d");
    for (let n = 0; n <= 5; n++) expect(x.take(n).concat(x.drop(n)).equals(x)).toBe(true);
  });

  it("concat appends the other path's segments", () => {
    expect(p("/a/b").concat(p("/c")).segments).toEqual(["a", "b", "c"]);
    expect(p("/c").concat(p("/a/b")).segments).toEqual(["c", "a", "b"]);
  });

  it("concat with the empty path returns the other path itself", () => {
    const x = p("/a");
    expect(x.concat(Path.empty)).toBe(x);
    expect(Path.empty.concat(x)).toBe(x);
    expect(Path.empty.concat(Path.empty)).toBe(Path.empty);
  });

  it("concat does not modify either operand", () => {
    const a = p("/a");
    const b = p("/b");
    a.concat(b);
    expect(a.segments).toEqual(["a"]);
    expect(b.segments).toEqual(["b"]);
  });

  it("equals compares segments, not identity", () => {
    expect(p("/a/b").equals(Path.of("a", "b"))).toBe(true);
    expect(p("/a/b").equals(p("/a/c"))).toBe(false);
    expect(p("/a/b").equals(p("/a"))).toBe(false);
    expect(Path.of().equals(p("/"))).toBe(true);
  });

  it("equals distinguishes one segment containing `/` from two segments", () => {
    expect(Path.of("a/b").equals(Path.of("a", "b"))).toBe(false);
    expect(p("/a\\x2fb").equals(Path.of("a/b"))).toBe(true);
  });

  it("toString and toJSON give the shown form", () => {
    const x = Path.of("a", "b c");
    expect(String(x)).toBe("/a/b\\x20c");
    expect(JSON.stringify({ x })).toBe('{"x":"/a/b\\\\x20c"}');
  });
});

describe("Prefix and Dtab lookup", () => {
  it("a prefix matches paths that start with its segments, `*` matching any one segment", () => {
    const pre = new Prefix(["svc", ANY, "users"]);
    expect(pre.matches(p("/svc/prod/users"))).toBe(true);
    expect(pre.matches(p("/svc/dev/users/v1"))).toBe(true);
    expect(pre.matches(p("/svc/prod/orders"))).toBe(false);
    expect(pre.matches(p("/svc/prod"))).toBe(false);
    expect(pre.matches(p("/other/prod/users"))).toBe(false);
  });

  it("the empty prefix matches every path, including the empty one", () => {
    expect(Prefix.empty.matches(Path.empty)).toBe(true);
    expect(Prefix.empty.matches(p("/a/b"))).toBe(true);
  });

  it("Prefix.show escapes literal segments and prints `*` for any", () => {
    expect(new Prefix(["a b", ANY, "*"]).show).toBe("/a\\x20b/*/\\x2a");
    expect(Prefix.empty.show).toBe("/");
  });

  it("matching lists the matching dentries, the last-defined first", () => {
    const d = readDtab("/a=>/1;/b=>/2;/a/b=>/3;/*=>/4;/c=>/5");
    expect(d.matching(p("/a/b/c")).map((x) => x.dst)).toEqual([
      d.dentries[3]!.dst,
      d.dentries[2]!.dst,
      d.dentries[0]!.dst,
    ]);
  });

  it("lookup is neg when no dentry matches", () => {
    expect(readDtab("/a=>/b").lookup(p("/c"))).toBe(Neg);
    expect(Dtab.empty.lookup(p("/c"))).toBe(Neg);
  });

  it("lookup of one match is that dentry's tree with the rest of the path appended", () => {
    expect(pathShape(readDtab("/a=>/x | /y & /z").lookup(p("/a/r/s")))).toEqual({
      alt: [
        "/x/r/s",
        {
          union: [
            [1, "/y/r/s"],
            [1, "/z/r/s"],
          ],
        },
      ],
    });
  });

  it("lookup of several matches is an alternate list, the last-defined first", () => {
    expect(pathShape(readDtab("/a=>/1;/a/b=>/2;/*=>/3").lookup(p("/a/b/c")))).toEqual({
      alt: ["/3/b/c", "/2/c", "/1/b/c"],
    });
  });

  it("rewrite of an exact match returns the destination tree itself", () => {
    const d = readDtab("/a=>/x").dentries[0]!;
    expect(rewrite(d, p("/a"))).toBe(d.dst);
  });

  it("concat appends the other dtab's dentries after this one's", () => {
    const a = readDtab("/a=>/1");
    const b = readDtab("/b=>/2;/c=>/3");
    expect(a.concat(b).show).toBe("/a=>/1;/b=>/2;/c=>/3");
    expect(a.concat(Dtab.empty)).toBe(a);
    expect(Dtab.empty.concat(b)).toBe(b);
  });
});
