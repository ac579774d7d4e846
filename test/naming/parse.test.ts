import { describe, expect, it } from "vitest";
import {
  ANY,
  DEFAULT_WEIGHT,
  Dtab,
  NameParseError,
  Path,
  readDentry,
  readDtab,
  readNameTree,
  readPath,
  readPrefix,
  showPathTree,
} from "../../gateway/naming/index.js";
import { dtabShape, parseError, pathShape, prefixShape, segShape } from "./helpers.js";

describe("paths", () => {
  it("reads `/` as the empty path", () => {
    const p = readPath("/");
    expect(p.isEmpty).toBe(true);
    expect(p.segments).toEqual([]);
    expect(p).toBe(Path.empty);
    expect(p.show).toBe("/");
  });

  it("reads `/a/b` as two segments", () => {
    const p = readPath("/a/b");
    expect(p.segments).toEqual(["a", "b"]);
    expect(p.size).toBe(2);
    expect(p.show).toBe("/a/b");
  });

  it("accepts every showable punctuation character `_:.#$%-` bare inside a segment", () => {
    const p = readPath("/a_b:c.d#e$f%g-h/0-9/$/#");
    expect(p.segments).toEqual(["a_b:c.d#e$f%g-h", "0-9", "$", "#"]);
    expect(p.show).toBe("/a_b:c.d#e$f%g-h/0-9/$/#");
  });

  it("reads a typical namer path with `#`, `$` and dots", () => {
    expect(readPath("/#/io.l5d.fs/users").segments).toEqual(["#", "io.l5d.fs", "users"]);
    expect(readPath("/$/inet/127.0.0.1/8080").segments).toEqual(["$", "inet", "127.0.0.1", "8080"]);
  });

  it("decodes `\\xNN` escapes into the segment", () => {
    expect(readPath("/a\\x2fb").segments).toEqual(["a/b"]);
    expect(readPath("/\\x20").segments).toEqual([" "]);
    expect(readPath("/x\\x2ay").segments).toEqual(["x*y"]);
  });

  it("accepts upper- and lower-case hex digits in escapes", () => {
    expect(readPath("/\\x2F").segments).toEqual(["/"]);
    expect(readPath("/\\x2f").segments).toEqual(["/"]);
  });

  it("decodes consecutive escapes as one UTF-8 sequence", () => {
    expect(readPath("/caf\\xc3\\xa9").segments).toEqual(["café"]);
    expect(readPath("/\\xf0\\x9f\\x98\\x80").segments).toEqual(["😀"]);
    expect(readPath("/\\xe2\\x82\\xac1").segments).toEqual(["€1"]);
  });

  it("decodes an escape of a showable character to the bare character", () => {
    const p = readPath("/\\x61\\x62c");
    expect(p.segments).toEqual(["abc"]);
    expect(p.show).toBe("/abc");
  });

  it("shows non-showable characters as lower-case `\\xNN` escapes of their UTF-8 bytes", () => {
    expect(Path.of("a/b").show).toBe("/a\\x2fb");
    expect(Path.of("a b").show).toBe("/a\\x20b");
    expect(Path.of("*").show).toBe("/\\x2a");
    expect(Path.of("back\\slash").show).toBe("/back\\x5cslash");
    expect(Path.of("café").show).toBe("/caf\\xc3\\xa9");
    expect(Path.of("😀").show).toBe("/\\xf0\\x9f\\x98\\x80");
    expect(readPath("/\\xC3\\xA9").show).toBe("/\\xc3\\xa9");
  });

  it("round-trips segments with any characters through Path.show and readPath", () => {
    const samples = [
      ["a"],
      ["a/b", "c d"],
      ["*", "!", "~", "(", ")", "&", "|", ";", "=>", "\\"],
      ["café", "日本語", "😀", "\u00a0"],
      ["_:.#$%-", "0"],
      ["\t", "\n", "x\u0000y"],
    ];
    for (const segs of samples) {
      const p = Path.of(...segs);
      const back = readPath(p.show);
      expect(back.segments).toEqual(segs);
      expect(back.equals(p)).toBe(true);
    }
  });

  // Regression: escapes were decoded as UTF-8 text, so a byte sequence that is not valid UTF-8 is
  // replaced by U+FFFD: `/\xff` and `/\xfe` both read as the segment "\uFFFD" and are the same
  // Path. Finagle labels are bytes (Buf), so these are two different names. Either keep the
  // bytes distinct or reject invalid UTF-8 with a NameParseError — never conflate them.
  it("does not conflate two different invalid UTF-8 escapes into one name", () => {
    let distinct: boolean;
    try {
      distinct = !readPath("/\\xff").equals(readPath("/\\xfe"));
    } catch (e) {
      distinct = e instanceof NameParseError;
    }
    expect(distinct).toBe(true);
  });
});

describe("prefixes", () => {
  it("reads `/` as the empty prefix", () => {
    expect(readPrefix("/").size).toBe(0);
    expect(readPrefix("/").show).toBe("/");
  });

  it("reads `*` as the any-segment element", () => {
    const p = readPrefix("/svc/*/users");
    expect(p.elems[1]).toBe(ANY);
    expect(prefixShape(p)).toEqual(["svc", "<ANY>", "users"]);
    expect(p.show).toBe("/svc/*/users");
  });

  it("reads a prefix made only of `*` segments", () => {
    expect(prefixShape(readPrefix("/*"))).toEqual(["<ANY>"]);
    expect(prefixShape(readPrefix("/*/*"))).toEqual(["<ANY>", "<ANY>"]);
  });

  it("reads an escaped star `\\x2a` as a literal segment, not as `*`", () => {
    const p = readPrefix("/\\x2a");
    expect(p.elems).toEqual(["*"]);
    expect(p.elems[0]).not.toBe(ANY);
    expect(p.show).toBe("/\\x2a");
    expect(p.matches(Path.of("*"))).toBe(true);
    expect(p.matches(Path.of("x"))).toBe(false);
  });

  it("decodes escapes in literal prefix segments", () => {
    expect(prefixShape(readPrefix("/a\\x2fb/*"))).toEqual(["a/b", "<ANY>"]);
  });
});

describe("name trees", () => {
  it("reads a path leaf", () => {
    expect(pathShape(readNameTree("/a/b"))).toBe("/a/b");
  });

  it("reads `!` as fail, `~` as neg and `$` as empty", () => {
    expect(readNameTree("!").kind).toBe("fail");
    expect(readNameTree("~").kind).toBe("neg");
    expect(readNameTree("$").kind).toBe("empty");
  });

  it("reads `/$` as a path, not as empty", () => {
    const t = readNameTree("/$");
    expect(t.kind).toBe("leaf");
    expect(pathShape(t)).toBe("/$");
  });

  it("reads `/` as a leaf of the empty path", () => {
    const t = readNameTree("/");
    expect(t.kind).toBe("leaf");
    expect(t.kind === "leaf" && t.value.isEmpty).toBe(true);
  });

  it("reads `|` as alternates in order", () => {
    expect(pathShape(readNameTree("/a | /b | ~ | !"))).toEqual({ alt: ["/a", "/b", "~", "!"] });
  });

  it("reads `&` as a union with the default weight 1 on every branch", () => {
    expect(pathShape(readNameTree("/a & /b"))).toEqual({
      union: [
        [1, "/a"],
        [1, "/b"],
      ],
    });
    expect(DEFAULT_WEIGHT).toBe(1);
  });

  it("reads explicit weights `0.3 * /a & 0.7 * /b`", () => {
    expect(pathShape(readNameTree("0.3 * /a & 0.7 * /b"))).toEqual({
      union: [
        [0.3, "/a"],
        [0.7, "/b"],
      ],
    });
  });

  it("mixes explicit and default weights", () => {
    expect(pathShape(readNameTree("/a & 2 * /b & 0.25*/c"))).toEqual({
      union: [
        [1, "/a"],
        [2, "/b"],
        [0.25, "/c"],
      ],
    });
  });

  it("reads a weight starting with a dot, `.5 * /a`, as 0.5 and keeps it on a single branch", () => {
    expect(pathShape(readNameTree(".5 * /a"))).toEqual({ union: [[0.5, "/a"]] });
  });

  it("drops the union around a single branch with weight 1", () => {
    expect(pathShape(readNameTree("1 * /a"))).toBe("/a");
    expect(pathShape(readNameTree("1.0 * /a"))).toBe("/a");
  });

  it("reads a weight of 0", () => {
    expect(pathShape(readNameTree("0 * /a & /b"))).toEqual({
      union: [
        [0, "/a"],
        [1, "/b"],
      ],
    });
  });

  it("binds `&` tighter than `|`", () => {
    expect(pathShape(readNameTree("/a & /b | /c"))).toEqual({
      alt: [
        {
          union: [
            [1, "/a"],
            [1, "/b"],
          ],
        },
        "/c",
      ],
    });
    expect(pathShape(readNameTree("/a | /b & /c"))).toEqual({
      alt: [
        "/a",
        {
          union: [
            [1, "/b"],
            [1, "/c"],
          ],
        },
      ],
    });
  });

  it("groups with parentheses, including weighted groups", () => {
    expect(pathShape(readNameTree("(/a | /b) & /c"))).toEqual({
      union: [
        [1, { alt: ["/a", "/b"] }],
        [1, "/c"],
      ],
    });
    expect(pathShape(readNameTree("0.5 * (/a | /b) & 0.5 * /c"))).toEqual({
      union: [
        [0.5, { alt: ["/a", "/b"] }],
        [0.5, "/c"],
      ],
    });
    expect(pathShape(readNameTree("((/a))"))).toBe("/a");
  });

  it("reads nested alternates inside parentheses as a nested alt", () => {
    expect(pathShape(readNameTree("(/a | /b) | /c"))).toEqual({
      alt: [{ alt: ["/a", "/b"] }, "/c"],
    });
  });

  it("needs no whitespace between tokens and tolerates lots of it", () => {
    expect(pathShape(readNameTree("0.3*/a&0.7*/b|~"))).toEqual(
      pathShape(readNameTree("  0.3   *  /a\n &\t0.7 * /b  |  ~  ")),
    );
  });

  it("skips `#` comments between tokens of a name tree", () => {
    const t = readNameTree(
      "0.5 # weight\n * # star\n ( # open\n /a # leaf\n | # bar\n /b ) # close\n & /c # end",
    );
    expect(pathShape(t)).toEqual({
      union: [
        [0.5, { alt: ["/a", "/b"] }],
        [1, "/c"],
      ],
    });
  });
});

describe("dentries", () => {
  it("reads `prefix => tree`", () => {
    const d = readDentry("/svc => /#/io.l5d.fs");
    expect(prefixShape(d.prefix)).toEqual(["svc"]);
    expect(pathShape(d.dst)).toBe("/#/io.l5d.fs");
  });

  it("reads a dentry without whitespace and with a `*` prefix", () => {
    const d = readDentry("/svc/*/x=>/a|/b");
    expect(prefixShape(d.prefix)).toEqual(["svc", "<ANY>", "x"]);
    expect(pathShape(d.dst)).toEqual({ alt: ["/a", "/b"] });
  });

  it("reads the empty prefix `/=>`", () => {
    const d = readDentry("/=>/a");
    expect(d.prefix.size).toBe(0);
  });
});

describe("dtabs", () => {
  it("reads `;`-separated dentries in order", () => {
    const d = readDtab("/a=>/b;/c=>/d;/e=>!");
    expect(d.size).toBe(3);
    expect(dtabShape(d)).toEqual([
      { prefix: ["a"], dst: '["b"]' },
      { prefix: ["c"], dst: '["d"]' },
      { prefix: ["e"], dst: "!" },
    ]);
  });

  it("accepts a trailing `;`", () => {
    expect(dtabShape(readDtab("/a=>/b;"))).toEqual(dtabShape(readDtab("/a=>/b")));
    expect(readDtab("/a=>/b ; \n").size).toBe(1);
  });

  it("reads the empty string, blanks, lone `;`s and comment-only text as the empty dtab", () => {
    for (const text of ["", "   ", "\n\n", ";", ";;", " ; ; ", "# just a comment", "# a\n# b\n"]) {
      expect(readDtab(text).size, JSON.stringify(text)).toBe(0);
    }
  });

  it("ignores empty dentries between `;;`", () => {
    expect(readDtab(";/a=>/b;;/c=>/d;").size).toBe(2);
  });

  it("reads a multi-line dtab with comments on their own lines and after dentries", () => {
    const d = readDtab(
      [
        "# the router's dtab",
        "/srv => /#/io.l5d.fs ; # files",
        "  # a comment line",
        "/svc => /srv  # then the fallback",
        "       | /$/inet/127.0.0.1/8080 ;",
        "/host/* => /svc # wildcard",
      ].join("\n"),
    );
    expect(d.size).toBe(3);
    expect(d.dentries.map((x) => x.prefix.show)).toEqual(["/srv", "/svc", "/host/*"]);
    expect(pathShape(d.dentries[0]!.dst)).toBe("/#/io.l5d.fs");
    expect(pathShape(d.dentries[1]!.dst)).toEqual({ alt: ["/srv", "/$/inet/127.0.0.1/8080"] });
    expect(pathShape(d.dentries[2]!.dst)).toBe("/svc");
  });

  it("treats `#` at the start of a path segment as part of the path, not a comment", () => {
    const d = readDtab("/#/io.l5d.fs => /#/io.l5d.k8s/default/http");
    expect(prefixShape(d.dentries[0]!.prefix)).toEqual(["#", "io.l5d.fs"]);
    expect(pathShape(d.dentries[0]!.dst)).toBe("/#/io.l5d.k8s/default/http");
  });

  it("treats `#` right after a label character as part of the segment", () => {
    const d = readDtab("/a#b => /c#d # real comment");
    expect(prefixShape(d.dentries[0]!.prefix)).toEqual(["a#b"]);
    expect(pathShape(d.dentries[0]!.dst)).toBe("/c#d");
  });

  it("ends a comment at the newline, so the next dentry is read", () => {
    const d = readDtab("/a => /b # comment ; /x => /y\n; /c => /d");
    expect(d.dentries.map((x) => x.prefix.show)).toEqual(["/a", "/c"]);
  });

  it("accepts comments between the prefix and `=>`, and between `=>` and the tree", () => {
    const d = readDtab("/a # c1\n => # c2\n /b");
    expect(dtabShape(d)).toEqual([{ prefix: ["a"], dst: '["b"]' }]);
  });
});

describe("Dtab.show round trip", () => {
  const cases = [
    "/a=>/b",
    "/svc=>/#/io.l5d.fs;/svc/users=>/$/inet/127.0.0.1/8080",
    "/svc=>/a|/b|~|!|$",
    "/svc=>0.3 * /a & 0.7 * /b",
    "/svc=>/a & 2 * /b & 0.25 * /c",
    "/svc=>.5 * /a",
    "/svc=>0 * /a & /b",
    "/svc=>(/a | /b) & /c",
    "/svc=>/a & (/b & /c)",
    "/svc=>(/a | /b) | /c",
    "/svc=>/a | (/b | (/c & 3 * /d))",
    "/svc=>0.5 * (/a | /b) & 0.5 * (/c | ~)",
    "/svc/*/x=>/y;/*=>/z",
    "/=>/;/a=>/",
    "/a\\x2fb=>/caf\\xc3\\xa9/\\x20/\\x2a;/\\x2a=>/\\xf0\\x9f\\x98\\x80",
    "/#/io.l5d.fs=>/#/io.l5d.k8s/default/http",
    "# comment\n/a => /b ; # c\n/c => /d | ( /e & /f )\n",
  ];

  for (const text of cases) {
    it(`parse(show(x)) equals x structurally for ${JSON.stringify(text)}`, () => {
      const x = readDtab(text);
      const shown = x.show;
      const y = readDtab(shown);
      expect(dtabShape(y)).toEqual(dtabShape(x));
      // and show is a fixpoint after one round
      expect(y.show).toBe(shown);
    });
  }

  it("prints dentries joined by `;` with `=>` and no spaces around them", () => {
    expect(readDtab("/a => /b ; /c => /d | /e").show).toBe("/a=>/b;/c=>/d | /e");
  });

  it("prints the empty dtab as the empty string, which reads back as empty", () => {
    expect(Dtab.empty.show).toBe("");
    expect(readDtab(Dtab.empty.show).size).toBe(0);
  });

  it("prints weights other than 1 and omits the default", () => {
    expect(readDtab("/s=>0.3*/a&1*/b&2*/c").show).toBe("/s=>0.3 * /a & /b & 2 * /c");
  });

  it("parenthesises a group only where precedence needs it", () => {
    expect(showPathTree(readNameTree("(/a & /b) | /c"))).toBe("/a & /b | /c");
    expect(showPathTree(readNameTree("(/a | /b) & /c"))).toBe("(/a | /b) & /c");
  });

  // Regression: Dtab.show printed weights with JavaScript's default number formatting, which uses
  // exponent notation for very small and very large numbers (`1e-7`, `1e+21`), but the parser only
  // accepts digits with an optional fraction. So parse(show(x)) throws NameParseError
  // "expected '*' after the weight" for a dtab that parsed fine. Finagle prints weights in a
  // form its parser reads back.
  it("round-trips very small and very large weights through show", () => {
    for (const text of ["/s=>0.0000001 * /a & /b", "/s=>1000000000000000000000 * /a & /b"]) {
      const x = readDtab(text);
      let y: Dtab | undefined;
      try {
        y = readDtab(x.show);
      } catch {
        y = undefined;
      }
      expect(y, `show gave ${x.show}`).toBeDefined();
      expect(dtabShape(y!)).toEqual(dtabShape(x));
    }
  });
});

describe("parse errors", () => {
  // Every `fail(...)` call site of gateway/naming/parse.ts, one test (at least) each:
  //  Parser.expect          -> "expected ')' to close '('", "expected '*' after the weight",
  //                            "expected '=>' after the prefix"
  //  Parser.expectEnd       -> "unexpected 'c' after the name tree" / "... after the dentry"
  //  Parser.label           -> "expected 'x' after '\' ...", "expected two hex digits ...",
  //                            "expected a label character"
  //  Parser.path            -> "expected '/' to start a path"
  //  Parser.prefix          -> "expected '/' to start a prefix"
  //  Parser.number          -> "expected a digit after '.' in a weight", "weight is not a number"
  //  Parser.simple          -> "expected a name (...)" at end of input, and on a bad character
  //  Parser.dtab            -> "expected ';' between dentries"
  //  readPath               -> "expected a label character" (a second `/`), "unexpected 'c' in path"
  //  readPrefix             -> "unexpected 'c' in prefix"

  const NAME = "expected a name (a path, '!', '~', '$' or '(')";

  it("is a NameParseError (an Error) carrying reason, source and offset", () => {
    const e = parseError(() => readNameTree("/a )"));
    expect(e).toBeInstanceOf(NameParseError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("NameParseError");
    expect(e.reason).toBe("unexpected ')' after the name tree");
    expect(e.source).toBe("/a )");
    expect(e.offset).toBe(3);
    expect(e.message).toBe("unexpected ')' after the name tree at offset 3 (')')");
    expect(e.position).toEqual({ line: 1, column: 4 });
    expect(e.caret).toBe("/a )\n   ^");
  });

  it("Parser.expect: a missing `)` at end of input", () => {
    const e = parseError(() => readNameTree("(/a | /b"));
    expect(e.reason).toBe("expected ')' to close '('");
    expect(e.offset).toBe(8);
    expect(e.message).toBe("expected ')' to close '(' at offset 8 (end of input)");
    expect(e.position).toEqual({ line: 1, column: 9 });
    expect(e.caret).toBe("(/a | /b\n        ^");
  });

  it("Parser.expect: a `)` replaced by another token", () => {
    const e = parseError(() => readNameTree("(/a /b)"));
    expect(e.reason).toBe("expected ')' to close '('");
    expect(e.offset).toBe(4);
    expect(e.message).toBe("expected ')' to close '(' at offset 4 ('/')");
    expect(e.caret).toBe("(/a /b)\n    ^");
  });

  it("Parser.expect: a weight without `*`", () => {
    const e = parseError(() => readNameTree("0.5 /a"));
    expect(e.reason).toBe("expected '*' after the weight");
    expect(e.offset).toBe(4);
    expect(e.position).toEqual({ line: 1, column: 5 });
    expect(e.caret).toBe("0.5 /a\n    ^");
  });

  it("Parser.expect: a prefix without `=>`", () => {
    const e = parseError(() => readDtab("/a = /b"));
    expect(e.reason).toBe("expected '=>' after the prefix");
    expect(e.offset).toBe(3);
    expect(e.caret).toBe("/a = /b\n   ^");
  });

  it("Parser.expect: a dentry that ends after the prefix", () => {
    const e = parseError(() => readDentry("/a "));
    expect(e.reason).toBe("expected '=>' after the prefix");
    expect(e.offset).toBe(3);
    expect(e.message).toBe("expected '=>' after the prefix at offset 3 (end of input)");
  });

  it("Parser.expectEnd: trailing text after a name tree", () => {
    const e = parseError(() => readNameTree("/a & /b x"));
    expect(e.reason).toBe("unexpected 'x' after the name tree");
    expect(e.offset).toBe(8);
    expect(e.caret).toBe("/a & /b x\n        ^");
  });

  it("Parser.expectEnd: a `;` after a single dentry", () => {
    const e = parseError(() => readDentry("/a=>/b;"));
    expect(e.reason).toBe("unexpected ';' after the dentry");
    expect(e.offset).toBe(6);
    expect(e.position).toEqual({ line: 1, column: 7 });
    expect(e.caret).toBe("/a=>/b;\n      ^");
  });

  it("Parser.label: a backslash not followed by `x`", () => {
    const e = parseError(() => readPath("/a\\yz"));
    expect(e.reason).toBe("expected 'x' after '\\' (escapes are \\xNN)");
    expect(e.offset).toBe(3);
    expect(e.caret).toBe("/a\\yz\n   ^");
  });

  it("Parser.label: a backslash at the end of input", () => {
    const e = parseError(() => readNameTree("/a\\"));
    expect(e.reason).toBe("expected 'x' after '\\' (escapes are \\xNN)");
    expect(e.offset).toBe(3);
    expect(e.message).toContain("(end of input)");
  });

  it("Parser.label: an escape with a non-hex digit", () => {
    const e = parseError(() => readPath("/\\x4g"));
    expect(e.reason).toBe("expected two hex digits after '\\x'");
    expect(e.offset).toBe(3);
    expect(e.caret).toBe("/\\x4g\n   ^");
  });

  it("Parser.label: an escape cut short by the end of input", () => {
    const e = parseError(() => readDtab("/a=>/b\\x4"));
    expect(e.reason).toBe("expected two hex digits after '\\x'");
    expect(e.offset).toBe(8);
  });

  it("Parser.label: a path ending in `/`", () => {
    const e = parseError(() => readPath("/a/"));
    expect(e.reason).toBe("expected a label character");
    expect(e.offset).toBe(3);
    expect(e.message).toBe("expected a label character at offset 3 (end of input)");
  });

  it("Parser.label: `*` is not allowed in a path segment of a name tree", () => {
    const e = parseError(() => readNameTree("/a/*"));
    expect(e.reason).toBe("expected a label character");
    expect(e.offset).toBe(3);
    expect(e.caret).toBe("/a/*\n   ^");
  });

  it("Parser.label: a prefix with an empty segment", () => {
    const e = parseError(() => readDtab("/a/=>/b"));
    expect(e.reason).toBe("expected a label character");
    expect(e.offset).toBe(3);
  });

  it("Parser.path: readPath on text without a leading `/`", () => {
    const e = parseError(() => readPath("svc/users"));
    expect(e.reason).toBe("expected '/' to start a path");
    expect(e.offset).toBe(0);
    expect(e.message).toBe("expected '/' to start a path at offset 0 ('s')");
    expect(e.caret).toBe("svc/users\n^");
  });

  it("Parser.path: readPath on the empty string", () => {
    const e = parseError(() => readPath(""));
    expect(e.reason).toBe("expected '/' to start a path");
    expect(e.offset).toBe(0);
    expect(e.message).toBe("expected '/' to start a path at offset 0 (end of input)");
    expect(e.position).toEqual({ line: 1, column: 1 });
    expect(e.caret).toBe("\n^");
  });

  it("Parser.prefix: readPrefix without a leading `/`", () => {
    const e = parseError(() => readPrefix("svc"));
    expect(e.reason).toBe("expected '/' to start a prefix");
    expect(e.offset).toBe(0);
  });

  it("Parser.prefix: a dentry in a dtab not starting with `/`", () => {
    const e = parseError(() => readDtab("/a=>/b; svc=>/c"));
    expect(e.reason).toBe("expected '/' to start a prefix");
    expect(e.offset).toBe(8);
    expect(e.caret).toBe("/a=>/b; svc=>/c\n        ^");
  });

  it("Parser.number: a weight ending with `.`", () => {
    const e = parseError(() => readNameTree("1. * /a"));
    expect(e.reason).toBe("expected a digit after '.' in a weight");
    expect(e.offset).toBe(2);
    expect(e.caret).toBe("1. * /a\n  ^");
  });

  it("Parser.number: a lone `.` as a weight", () => {
    const e = parseError(() => readNameTree("/a & . * /b"));
    expect(e.reason).toBe("expected a digit after '.' in a weight");
    expect(e.offset).toBe(6);
  });

  it("Parser.number: a weight too large to be a finite number, reported at its start", () => {
    const text = `/x & ${"9".repeat(400)} * /a`;
    const e = parseError(() => readNameTree(text));
    expect(e.reason).toBe("weight is not a number");
    expect(e.offset).toBe(5);
    expect(e.position).toEqual({ line: 1, column: 6 });
  });

  it("Parser.simple: the empty name tree (end of input)", () => {
    const e = parseError(() => readNameTree(""));
    expect(e.reason).toBe(NAME);
    expect(e.offset).toBe(0);
    expect(e.message).toBe(`${NAME} at offset 0 (end of input)`);
  });

  it("Parser.simple: a dentry whose tree is missing after `|`", () => {
    const e = parseError(() => readDtab("/a => /b | "));
    expect(e.reason).toBe(NAME);
    expect(e.offset).toBe(11);
  });

  it("Parser.simple: a character that cannot start a name", () => {
    const e = parseError(() => readNameTree("/a & ?"));
    expect(e.reason).toBe(NAME);
    expect(e.offset).toBe(5);
    expect(e.message).toBe(`${NAME} at offset 5 ('?')`);
    expect(e.caret).toBe("/a & ?\n     ^");
  });

  it("Parser.simple: a negative weight is not a weight", () => {
    const e = parseError(() => readNameTree("-1 * /a"));
    expect(e.reason).toBe(NAME);
    expect(e.offset).toBe(0);
  });

  it("Parser.simple: an empty pair of parentheses", () => {
    const e = parseError(() => readNameTree("()"));
    expect(e.reason).toBe(NAME);
    expect(e.offset).toBe(1);
  });

  it("Parser.dtab: two dentries without `;` between them", () => {
    const e = parseError(() => readDtab("/a=>/b /c=>/d"));
    expect(e.reason).toBe("expected ';' between dentries");
    expect(e.offset).toBe(7);
    expect(e.caret).toBe("/a=>/b /c=>/d\n       ^");
  });

  it("Parser.dtab: a stray `)` after a dentry", () => {
    const e = parseError(() => readDtab("/a=>/b)"));
    expect(e.reason).toBe("expected ';' between dentries");
    expect(e.offset).toBe(6);
  });

  it("readPath: a second `/` where a label should be", () => {
    const e = parseError(() => readPath("//a"));
    expect(e.reason).toBe("expected a label character");
    expect(e.offset).toBe(1);
    expect(e.caret).toBe("//a\n ^");
  });

  it("readPath: a character that is not part of a path", () => {
    const e = parseError(() => readPath("/a b"));
    expect(e.reason).toBe("unexpected ' ' in path");
    expect(e.offset).toBe(2);
    const star = parseError(() => readPath("/*"));
    expect(star.reason).toBe("unexpected '*' in path");
    expect(star.offset).toBe(1);
  });

  it("readPrefix: a character after `*` in the same segment", () => {
    const e = parseError(() => readPrefix("/*x"));
    expect(e.reason).toBe("unexpected 'x' in prefix");
    expect(e.offset).toBe(2);
    const sp = parseError(() => readPrefix("/a b"));
    expect(sp.reason).toBe("unexpected ' ' in prefix");
    expect(sp.offset).toBe(2);
  });

  describe("in multi-line input", () => {
    it("reports line and column in the message, the position and the caret", () => {
      const text = "/a => /b;\n/c => /d\n  /e => /f";
      const e = parseError(() => readDtab(text));
      expect(e.reason).toBe("expected ';' between dentries");
      expect(e.offset).toBe(21);
      expect(e.position).toEqual({ line: 3, column: 3 });
      expect(e.message).toBe("expected ';' between dentries at line 3, column 3 ('/')");
      expect(e.caret).toBe("  /e => /f\n  ^");
    });

    it("points at the end of the last line for an error at end of input", () => {
      const e = parseError(() => readDtab("/a => /b;\n/c =>"));
      expect(e.reason).toBe(NAME);
      expect(e.offset).toBe(15);
      expect(e.position).toEqual({ line: 2, column: 6 });
      expect(e.message).toBe(`${NAME} at line 2, column 6 (end of input)`);
      expect(e.caret).toBe("/c =>\n     ^");
    });

    it("counts a comment line as a line", () => {
      const e = parseError(() => readDtab("# header\n/a => /b; # ok\n/c => (/d"));
      expect(e.reason).toBe("expected ')' to close '('");
      expect(e.position).toEqual({ line: 3, column: 10 });
      expect(e.caret).toBe("/c => (/d\n         ^");
    });

    it("reports an error at the start of a line as column 1", () => {
      const e = parseError(() => readDtab("/a => /b;\nx"));
      expect(e.reason).toBe("expected '/' to start a prefix");
      expect(e.offset).toBe(10);
      expect(e.position).toEqual({ line: 2, column: 1 });
      expect(e.caret).toBe("x\n^");
    });

    it("points an end-of-input error after the last visible character, not past a trailing newline", () => {
      const e = parseError(() => readDtab("/a => (/b\n"));
      expect(e.reason).toBe("expected ')' to close '('");
      expect(e.offset).toBe(10);
      expect(e.position).toEqual({ line: 1, column: 10 });
      expect(e.caret).toBe("/a => (/b\n         ^");
    });
  });

  it("accepts the corrected versions of the erroneous inputs", () => {
    // guards against the error tests passing because everything fails
    expect(() => readNameTree("(/a | /b)")).not.toThrow();
    expect(() => readNameTree("0.5 * /a")).not.toThrow();
    expect(() => readDtab("/a => /b")).not.toThrow();
    expect(() => readDentry("/a=>/b")).not.toThrow();
    expect(() => readPath("/a\\x79z")).not.toThrow();
    expect(() => readPath("/a")).not.toThrow();
    expect(() => readPrefix("/*/x")).not.toThrow();
    expect(() => readDtab("/a=>/b;/c=>/d")).not.toThrow();
  });

  it("reads the same tree with and without a trailing comment (segShape sanity)", () => {
    expect(segShape(readNameTree("/a # c"))).toEqual(segShape(readNameTree("/a")));
  });
});
