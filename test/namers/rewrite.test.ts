import { describe, expect, it } from "vitest";
import { silentLogger } from "../../gateway/log.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { namerLookup } from "../../gateway/namers/mount.js";
import { rewriteNamer } from "../../gateway/namers/rewrite.js";
import { bindPath, Path, readDtab, readPath, sampleRead } from "../../gateway/naming/index.js";
import { noResolver, noServices } from "../support/plugin-services.js";
import { decode, decodeIssues, fakeDns, fakeResolver, problemText, stateText } from "./helpers.js";

const PREFIX = Path.of("#", "io.l5d.rewrite");

function rewriter(pattern: string, name: string) {
  return rewriteNamer.create(decode(rewriteNamer, { pattern, name }), {
    ...noServices,
    log: silentLogger,
    prefix: PREFIX,
    resolver: noResolver,
  });
}

const look = (n: ReturnType<typeof rewriter>, path: string) =>
  stateText(n.lookup(readPath(path)).sample());

const validate = (pattern: string, name: string) =>
  rewriteNamer.validate!(decode(rewriteNamer, { pattern, name })).map(problemText);

describe("io.l5d.rewrite", () => {
  it("substitutes {captures} into the name", () => {
    const n = rewriter("/{service}/api", "/srv/{service}/http");
    expect(look(n, "/users/api")).toBe("path:/srv/users/http");
  });

  it("drops what follows the matched pattern", () => {
    const n = rewriter("/{service}/api", "/srv/{service}");
    expect(look(n, "/users/api/v1/list")).toBe("path:/srv/users");
  });

  it("matches any one segment with `*` without capturing it", () => {
    const n = rewriter("/*/{ns}/{svc}", "/k8s/{ns}/http/{svc}");
    expect(look(n, "/dc1/prod/users")).toBe("path:/k8s/prod/http/users");
    expect(look(n, "/dc2/staging/web/x")).toBe("path:/k8s/staging/http/web");
  });

  it("uses a capture twice and in the middle of a segment", () => {
    const n = rewriter("/{a}/{b}", "/x/{b}-{a}/{a}");
    expect(look(n, "/one/two")).toBe("path:/x/two-one/one");
  });

  it("answers neg when the path does not match the pattern", () => {
    const n = rewriter("/{service}/api", "/srv/{service}");
    expect(look(n, "/users/web")).toBe("~");
    expect(look(n, "/users")).toBe("~");
  });

  it("binds the rewritten name further through the dtab", () => {
    const n = rewriter("/{service}/api", "/srv/{service}");
    const global = createGlobalNamer(fakeResolver(fakeDns().lookup));
    const ctx = {
      dtab: readDtab("/svc => /#/io.l5d.rewrite; /srv/users => /$/inet/127.0.0.1/8080"),
      namers: namerLookup([{ prefix: PREFIX, namer: n }], global),
    };
    expect(stateText(bindPath(ctx, readPath("/svc/users/api/v2"), sampleRead))).toBe(
      "/$/inet/127.0.0.1/8080",
    );
    expect(stateText(bindPath(ctx, readPath("/svc/other/api"), sampleRead))).toBe("~");
  });

  it("validate accepts a name using only captured variables", () => {
    expect(validate("/{service}/{version}", "/srv/{version}/{service}")).toEqual([]);
    expect(validate("/*/x", "/fixed")).toEqual([]);
  });

  it("validate rejects a name using an uncaptured variable", () => {
    const problems = validate("/{service}", "/srv/{service}/{version}");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("{version}");
    expect(problems[0]).toContain("does not capture");
  });

  it("validate names every uncaptured variable", () => {
    const problems = validate("/*", "/srv/{a}/{b}");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("{a}");
    expect(problems[0]).toContain("{b}");
  });

  it("validate rejects a name that is not a path", () => {
    const problems = validate("/{service}", "srv/{service}");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("name is not a path");
  });

  it("requires pattern and name", () => {
    expect(decodeIssues(rewriteNamer, {})).toEqual([
      "pattern: missing (expected a path pattern such as /{service}/api)",
      "name: missing (expected a path template such as /srv/{service})",
    ]);
  });
});
