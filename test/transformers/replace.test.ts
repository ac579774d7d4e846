import { afterEach, describe, expect, it } from "vitest";
import {
  type BoundName,
  bindPath,
  boundStateEquals,
  computed,
  Empty,
  Fail,
  leaf,
  type NameTree,
  Neg,
  readDtab,
  readPath,
  sampleRead,
  union,
  weighted,
} from "../../gateway/naming/index.js";
import { constTransformer, replaceTransformer } from "../../gateway/transformers/replace.js";
import {
  addrText,
  decodeIssues,
  Observations,
  onlyBound,
  stateText,
  waitForState,
} from "../namers/helpers.js";
import { cellBound, transformerEnv } from "./helpers.js";

const obs = new Observations();
afterEach(() => obs.stopAll());

describe("io.l5d.replace", () => {
  it("replaces a bound leaf by the binding of its path", () => {
    const env = transformerEnv();
    const t = env.make(replaceTransformer, { path: "/$/inet/127.0.0.1/4141" });
    const { name } = cellBound("/#/io.l5d.fs/users", [["192.0.2.1", 8080]], "/r");
    const s = t.transformLeaf(name, sampleRead);
    expect(stateText(s)).toBe("/$/inet/127.0.0.1/4141");
    expect(addrText(onlyBound(s).addr.sample())).toBe("127.0.0.1:4141*1");
  });

  it("replaces every leaf of a union", () => {
    const env = transformerEnv();
    const t = env.make(replaceTransformer, { path: "/$/inet/127.0.0.1/4141" });
    const ctx = {
      dtab: readDtab("/svc/web => /$/inet/192.0.2.1/80 & 2 * /$/inet/192.0.2.2/80"),
      namers: env.ctx("/%/io.l5d.replace").globalNamers,
      transformers: [t],
    };
    const s = bindPath(ctx, readPath("/svc/web"), sampleRead);
    expect(stateText(s)).toBe("/$/inet/127.0.0.1/4141 & 2 * /$/inet/127.0.0.1/4141");
  });

  it("leaves a neg binding neg when applied through bindPath", () => {
    const env = transformerEnv();
    const t = env.make(replaceTransformer, { path: "/$/inet/127.0.0.1/4141" });
    const ctx = {
      dtab: readDtab("/svc/web => /$/inet/192.0.2.1/80"),
      namers: env.ctx("/%/io.l5d.replace").globalNamers,
      transformers: [t],
    };
    expect(stateText(bindPath(ctx, readPath("/svc/nobody"), sampleRead))).toBe("~");
    expect(stateText(bindPath(ctx, readPath("/svc/web"), sampleRead))).toBe(
      "/$/inet/127.0.0.1/4141",
    );
  });

  it("leaves fail and empty bindings alone", () => {
    const env = transformerEnv();
    const t = env.make(replaceTransformer, { path: "/$/inet/127.0.0.1/4141" });
    const ctx = {
      dtab: readDtab("/svc/bad => !; /svc/none => $"),
      namers: env.ctx("/%/io.l5d.replace").globalNamers,
      transformers: [t],
    };
    expect(stateText(bindPath(ctx, readPath("/svc/bad"), sampleRead))).toBe("!");
    expect(stateText(bindPath(ctx, readPath("/svc/none"), sampleRead))).toBe("$");
  });

  it("binds its path through the /$/ namers only, not the router's dtab", () => {
    const env = transformerEnv();
    const t = env.make(replaceTransformer, { path: "/svc/elsewhere" });
    const ctx = {
      dtab: readDtab("/svc => /$/inet/192.0.2.1/80"),
      namers: env.ctx("/%/io.l5d.replace").globalNamers,
      transformers: [t],
    };
    // /svc/elsewhere is bound with an empty dtab: no namer knows it, so the leaf is neg.
    expect(stateText(bindPath(ctx, readPath("/svc/web"), sampleRead))).toBe("~");
  });

  it("follows its path's binding when it resolves a host name", async () => {
    const env = transformerEnv({ "gw.example": ["192.0.2.50"] });
    const t = env.make(replaceTransformer, { path: "/$/inet/gw.example/4141" });
    const { name } = cellBound("/#/x", [["192.0.2.1", 80]]);
    const c = computed((read) => t.transformLeaf(name, read), boundStateEquals);
    obs.live(c);
    await waitForState(c, "/$/inet/gw.example/4141");
  });

  it("requires a path", () => {
    expect(decodeIssues(replaceTransformer, {})).toEqual([
      "path: missing (expected a path such as /svc)",
    ]);
  });
});

describe("io.l5d.const", () => {
  it("replaces even a neg binding", () => {
    const env = transformerEnv();
    const t = env.make(constTransformer, { path: "/$/inet/127.0.0.1/4141" });
    const ctx = {
      dtab: readDtab("/svc/web => /$/inet/192.0.2.1/80"),
      namers: env.ctx("/%/io.l5d.const").globalNamers,
      transformers: [t],
    };
    const s = bindPath(ctx, readPath("/svc/nobody"), sampleRead);
    expect(stateText(s)).toBe("/$/inet/127.0.0.1/4141");
    expect(addrText(onlyBound(s).addr.sample())).toBe("127.0.0.1:4141*1");
  });

  it("replaces a bound tree, a union and fail as a whole", () => {
    const env = transformerEnv();
    const t = env.make(constTransformer, { path: "/$/inet/127.0.0.1/4141" });
    const a = cellBound("/#/a", [["192.0.2.1", 80]]).name;
    const b = cellBound("/#/b", [["192.0.2.2", 80]]).name;
    const u: NameTree<BoundName> = union(weighted(1, leaf(a)), weighted(2, leaf(b)));
    const whole = (tree: NameTree<BoundName>) => stateText(t.transformTree!(tree, sampleRead));
    expect(whole(u)).toBe("/$/inet/127.0.0.1/4141");
    expect(whole(Neg)).toBe("/$/inet/127.0.0.1/4141");
    expect(whole(Fail)).toBe("/$/inet/127.0.0.1/4141");
    expect(whole(Empty)).toBe("/$/inet/127.0.0.1/4141");
    expect(stateText(t.transformLeaf(a, sampleRead))).toBe("/$/inet/127.0.0.1/4141");
  });

  it("binds to nil or fail when its path says so", () => {
    const env = transformerEnv();
    const nil = env.make(constTransformer, { path: "/$/nil" });
    const fail = env.make(constTransformer, { path: "/$/fail" });
    expect(stateText(nil.transformTree!(Neg, sampleRead))).toBe("$");
    expect(stateText(fail.transformTree!(Neg, sampleRead))).toBe("!");
  });

  it("requires a path", () => {
    expect(decodeIssues(constTransformer, { path: 3 })).toEqual([
      "path: expected a path such as /svc, got 3",
    ]);
  });
});
