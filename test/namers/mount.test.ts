import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../gateway/log.js";
import { FsNamer } from "../../gateway/namers/fs.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import {
  CONFIGURED_NAMER_ROOT,
  globalLookup,
  type MountedNamer,
  namerLookup,
  TRANSFORMER_ROOT,
  withTransformers,
} from "../../gateway/namers/mount.js";
import {
  type Activity,
  addrBound,
  address,
  bindPath,
  boundName,
  constant,
  Empty,
  Fail,
  failed,
  leaf,
  type Name,
  type Namer,
  type NameTree,
  Neg,
  ok,
  Path,
  PENDING,
  pathName,
  readDtab,
  readPath,
  type State,
  sampleRead,
  type Transformer,
  union,
  weighted,
} from "../../gateway/naming/index.js";
import { portTransformer } from "../../gateway/transformers/port.js";
import { noServices } from "../support/plugin-services.js";
import {
  addrText,
  decode,
  fakeDns,
  fakeResolver,
  Observations,
  onlyBound,
  stateText,
  waitForState,
} from "./helpers.js";

const obs = new Observations();
const cleanups: Array<() => void> = [];
afterEach(() => {
  obs.stopAll();
  for (const c of cleanups.splice(0)) c();
});

const resolver = fakeResolver(fakeDns().lookup);
const global = createGlobalNamer(resolver);

/** A namer answering from a table keyed by the path it is given; records what it was asked. */
function tableNamer(table: Record<string, State<NameTree<Name>>>): Namer & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    lookup(path) {
      asked.push(path.show);
      const s = table[path.show] ?? ok(Neg);
      return constant(s) as Activity<NameTree<Name>>;
    },
  };
}

const boundTree = (id: string, ip = "192.0.2.1", port = 80, residual = "/"): NameTree<Name> =>
  leaf<Name>(
    boundName(
      readPath(id),
      constant(addrBound([address(ip, port)])),
      residual === "/" ? Path.empty : readPath(residual),
    ),
  );

const bound = (id: string, ip = "192.0.2.1", port = 80, residual = "/") =>
  ok(boundTree(id, ip, port, residual));

const mount = (prefix: string, namer: Namer): MountedNamer => ({
  prefix: readPath(prefix),
  namer,
});

const lookupText = (lookup: ReturnType<typeof namerLookup>, path: string) =>
  stateText(lookup(readPath(path), sampleRead));

describe("namerLookup", () => {
  it("mounts configured namers under /#/ and transformers under /%/", () => {
    expect(CONFIGURED_NAMER_ROOT.show).toBe("/#");
    expect(TRANSFORMER_ROOT.show).toBe("/%");
  });

  it("passes the part after the mount prefix to the namer", () => {
    const n = tableNamer({ "/users/v1": bound("/#/a/users", "192.0.2.1", 80, "/v1") });
    const lookup = namerLookup([mount("/#/a", n)], global);
    expect(lookupText(lookup, "/#/a/users/v1")).toBe("/#/a/users residual=/v1");
    expect(n.asked).toEqual(["/users/v1"]);
  });

  it("tries configured namers in config order; the first answer that is not neg wins", () => {
    const first = tableNamer({ "/web": bound("/#/x/web", "192.0.2.1") });
    const second = tableNamer({
      "/web": bound("/#/x/web-second", "192.0.2.2"),
      "/api": bound("/#/x/api", "192.0.2.3"),
    });
    const lookup = namerLookup([mount("/#/x", first), mount("/#/x", second)], global);
    expect(lookupText(lookup, "/#/x/web")).toBe("/#/x/web");
    expect(second.asked).toEqual([]);
    // neg from the first passes to the next namer that matches.
    expect(lookupText(lookup, "/#/x/api")).toBe("/#/x/api");
    expect(first.asked).toEqual(["/web", "/api"]);
    expect(second.asked).toEqual(["/api"]);
  });

  it("skips namers whose prefix does not match", () => {
    const a = tableNamer({});
    const b = tableNamer({ "/web": bound("/#/b/web") });
    const lookup = namerLookup([mount("/#/a", a), mount("/#/b", b)], global);
    expect(lookupText(lookup, "/#/b/web")).toBe("/#/b/web");
    expect(a.asked).toEqual([]);
  });

  it("matches the mount prefix by whole segments", () => {
    const a = tableNamer({ "/": bound("/#/io.l5d.fs") });
    const lookup = namerLookup([mount("/#/io.l5d.fs", a)], global);
    expect(lookupText(lookup, "/#/io.l5d.fsx/web")).toBe("~");
    expect(a.asked).toEqual([]);
  });

  it("falls through to the /$/ namers when every configured namer answers neg", () => {
    const a = tableNamer({});
    const lookup = namerLookup([mount("/$", a)], global);
    expect(lookupText(lookup, "/$/inet/127.0.0.1/9000")).toBe("/$/inet/127.0.0.1/9000");
    expect(a.asked).toEqual(["/inet/127.0.0.1/9000"]);
  });

  it("answers neg for a /#/ path no namer knows", () => {
    const lookup = namerLookup([mount("/#/a", tableNamer({}))], global);
    expect(lookupText(lookup, "/#/a/nobody")).toBe("~");
    expect(lookupText(lookup, "/#/unmounted/x")).toBe("~");
  });

  it("stops at a failed or pending answer instead of trying the next namer", () => {
    const failing = tableNamer({ "/web": failed("backend down"), "/slow": PENDING });
    const next = tableNamer({ "/web": bound("/#/x/web"), "/slow": bound("/#/x/slow") });
    const lookup = namerLookup([mount("/#/x", failing), mount("/#/x", next)], global);
    expect(lookupText(lookup, "/#/x/web")).toBe("failed: backend down");
    expect(lookupText(lookup, "/#/x/slow")).toBe("pending");
    expect(next.asked).toEqual([]);
  });

  it("lets a namer's fail or empty answer stand (only neg falls through)", () => {
    const a = tableNamer({ "/f": ok(Fail), "/e": ok(Empty) });
    const b = tableNamer({ "/f": bound("/#/x/f"), "/e": bound("/#/x/e") });
    const lookup = namerLookup([mount("/#/x", a), mount("/#/x", b)], global);
    expect(lookupText(lookup, "/#/x/f")).toBe("!");
    expect(lookupText(lookup, "/#/x/e")).toBe("$");
    expect(b.asked).toEqual([]);
  });

  it("globalLookup reaches only the /$/ namers", () => {
    const lookup = globalLookup(global);
    expect(lookupText(lookup, "/$/inet/127.0.0.1/1")).toBe("/$/inet/127.0.0.1/1");
    expect(lookupText(lookup, "/#/io.l5d.fs/web")).toBe("~");
  });

  it("binds through a real io.l5d.fs namer and falls back to an alternate on neg", () => {
    const root = mkdtempSync(join(tmpdir(), "lintel-mount-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    writeFileSync(join(root, "users"), "192.0.2.1 8080\n");
    const fs = new FsNamer(root, readPath("/#/io.l5d.fs"), silentLogger, 20);
    cleanups.push(() => fs.close());
    const ctx = {
      dtab: readDtab("/svc => /#/io.l5d.fs | /$/inet/127.0.0.1/9999"),
      namers: namerLookup([mount("/#/io.l5d.fs", fs)], global),
    };
    expect(stateText(bindPath(ctx, readPath("/svc/users/x"), sampleRead))).toBe(
      "/#/io.l5d.fs/users residual=/x",
    );
    // `/svc/web/x` has no file: the fs alternate is neg and the inet one takes over.
    expect(stateText(bindPath(ctx, readPath("/svc/web/x"), sampleRead))).toBe(
      "/$/inet/127.0.0.1/9999 residual=/web/x",
    );
  });
});

describe("withTransformers", () => {
  const port = (p: number): Transformer =>
    portTransformer.create(decode(portTransformer, { port: p }), {
      ...noServices,
      log: silentLogger,
      prefix: Path.of("%", "io.l5d.port", String(p)),
      globalNamers: globalLookup(global),
      resolver,
    });

  it("returns the namer itself when there are no transformers", () => {
    const n = tableNamer({});
    expect(withTransformers(n, [])).toBe(n);
  });

  it("applies the transformers to what the namer binds", () => {
    const n = tableNamer({ "/web": bound("/#/a/web", "192.0.2.1", 8080, "/r") });
    const t = withTransformers(n, [port(4141)]);
    const s = t.lookup(readPath("/web")).sample();
    expect(stateText(s)).toBe("/%/io.l5d.port/4141/#/a/web residual=/r");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.1:4141*1");
  });

  it("applies several transformers in order, each adding its prefix in front", () => {
    const n = tableNamer({ "/web": bound("/#/a/web", "192.0.2.1", 8080) });
    const s = withTransformers(n, [port(1), port(2)])
      .lookup(readPath("/web"))
      .sample();
    expect(stateText(s)).toBe("/%/io.l5d.port/2/%/io.l5d.port/1/#/a/web");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.1:2*1");
  });

  it("transforms every leaf of a union", () => {
    const tree = union<Name>(
      weighted(1, boundTree("/#/a/one", "192.0.2.1")),
      weighted(3, boundTree("/#/a/two", "192.0.2.2")),
    );
    const n = tableNamer({ "/web": ok(tree) });
    const s = withTransformers(n, [port(4141)])
      .lookup(readPath("/web"))
      .sample();
    expect(stateText(s)).toBe("/%/io.l5d.port/4141/#/a/one & 3 * /%/io.l5d.port/4141/#/a/two");
  });

  it("passes neg, failed and not-yet-bound (path) answers through untouched", () => {
    const n = tableNamer({
      "/fail": failed("boom"),
      "/path": ok(leaf<Name>(pathName(readPath("/srv/web")))),
    });
    const t = withTransformers(n, [port(4141)]);
    expect(stateText(t.lookup(readPath("/none")).sample())).toBe("~");
    expect(stateText(t.lookup(readPath("/fail")).sample())).toBe("failed: boom");
    expect(stateText(t.lookup(readPath("/path")).sample())).toBe("path:/srv/web");
  });

  it("returns a transformer's failure", () => {
    const broken: Transformer = {
      name: "broken",
      transformLeaf: () => failed("cannot transform"),
    };
    const n = tableNamer({ "/web": bound("/#/a/web") });
    expect(stateText(withTransformers(n, [broken]).lookup(readPath("/web")).sample())).toBe(
      "failed: cannot transform",
    );
  });

  it("returns the same activity for repeated lookups while observed", () => {
    const n = tableNamer({ "/web": bound("/#/a/web") });
    const t = withTransformers(n, [port(4141)]);
    const a = t.lookup(readPath("/web"));
    obs.live(a);
    expect(t.lookup(readPath("/web"))).toBe(a);
  });

  it("follows the namer's changes while observed", async () => {
    const root = mkdtempSync(join(tmpdir(), "lintel-mount-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const fs = new FsNamer(root, readPath("/#/io.l5d.fs"), silentLogger, 20);
    cleanups.push(() => fs.close());
    const a = withTransformers(fs, [port(4141)]).lookup(readPath("/users/x"));
    obs.live(a);
    expect(stateText(a.sample())).toBe("~");
    writeFileSync(join(root, "users"), "192.0.2.1 8080\n");
    await waitForState(a, "/%/io.l5d.port/4141/#/io.l5d.fs/users residual=/x");
    const b = onlyBound(a.sample());
    obs.live(b.addr);
    expect(addrText(b.addr.sample())).toBe("192.0.2.1:4141*1");
    rmSync(join(root, "users"));
    await waitForState(a, "~");
  });
});
