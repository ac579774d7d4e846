import { afterEach, describe, expect, it } from "vitest";
import {
  addrBound,
  address,
  alt,
  type BoundName,
  bindPath,
  computed,
  leaf,
  type NameTree,
  readDtab,
  readPath,
  sampleRead,
  transformLeaves,
  union,
  weighted,
} from "../../gateway/naming/index.js";
import { portTransformer } from "../../gateway/transformers/port.js";
import {
  addrText,
  decodeIssues,
  Observations,
  onlyBound,
  stateText,
  waitUntil,
} from "../namers/helpers.js";
import { cellBound, transformerEnv } from "./helpers.js";

const obs = new Observations();
afterEach(() => obs.stopAll());

const PREFIX = "/%/io.l5d.port/4141";

describe("io.l5d.port", () => {
  it("puts its prefix in front of the bound id and keeps the residual", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name } = cellBound("/#/io.l5d.fs/users", [["192.0.2.1", 8080]], "/v1/x");
    const s = t.transformLeaf(name, sampleRead);
    expect(stateText(s)).toBe("/%/io.l5d.port/4141/#/io.l5d.fs/users residual=/v1/x");
  });

  it("sends every address to the port, keeping hosts, weights and metadata", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name } = cellBound("/#/io.l5d.fs/users", [
      ["192.0.2.1", 8080, 2, { hostname: "a.example" }],
      ["2001:db8::1", 9090, 0.5, { zone: "b" }],
    ]);
    const out = onlyBound(t.transformLeaf(name, sampleRead));
    const a = out.addr.sample();
    expect(addrText(a)).toBe("192.0.2.1:4141*2,[2001:db8::1]:4141*0.5");
    expect(a.kind === "bound" && a.addresses.map((x) => x.meta)).toEqual([
      { hostname: "a.example" },
      { zone: "b" },
    ]);
  });

  it("makes addresses on one host a single endpoint carrying their combined weight", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name } = cellBound("/#/io.l5d.fs/users", [
      ["192.0.2.1", 8080],
      ["192.0.2.1", 8081, 2],
      ["192.0.2.7", 8080],
    ]);
    expect(addrText(onlyBound(t.transformLeaf(name, sampleRead)).addr.sample())).toBe(
      "192.0.2.1:4141*3,192.0.2.7:4141*1",
    );
  });

  it("returns the same BoundName object for the same input on repeated calls", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name } = cellBound("/#/io.l5d.fs/users", [["192.0.2.1", 8080]]);
    const first = onlyBound(t.transformLeaf(name, sampleRead));
    const second = onlyBound(t.transformLeaf(name, sampleRead));
    expect(second).toBe(first);
    expect(second.addr).toBe(first.addr);
    // A different input gives a different name.
    const other = cellBound("/#/io.l5d.fs/users", [["192.0.2.1", 8080]]).name;
    expect(onlyBound(t.transformLeaf(other, sampleRead))).not.toBe(first);
  });

  it("follows address changes of the original name while observed", async () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name, cell } = cellBound("/#/io.l5d.fs/users", [["192.0.2.1", 8080]]);
    const out = onlyBound(t.transformLeaf(name, sampleRead));
    const live = obs.live(out.addr);
    cell.set(addrBound([address("192.0.2.7", 8080), address("192.0.2.8", 8081)]));
    await waitUntil(() => live.values.length > 0, "a change");
    expect(addrText(out.addr.sample())).toBe("192.0.2.7:4141*1,192.0.2.8:4141*1");
  });

  it("passes non-bound Addr states through unchanged", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name, cell } = cellBound("/#/x", [["192.0.2.1", 80]]);
    const out = onlyBound(t.transformLeaf(name, sampleRead));
    cell.set({ kind: "pending" });
    expect(out.addr.sample().kind).toBe("pending");
    cell.set({ kind: "neg" });
    expect(out.addr.sample().kind).toBe("neg");
  });

  it("turns a name with no addresses into a neg Addr", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name } = cellBound("/#/x", []);
    expect(onlyBound(t.transformLeaf(name, sampleRead)).addr.sample().kind).toBe("neg");
  });

  it("transforms every leaf of a union and an alternate", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const a = cellBound("/#/a", [["192.0.2.1", 80]]).name;
    const b = cellBound("/#/b", [["192.0.2.2", 80]]).name;
    const u: NameTree<BoundName> = union(weighted(1, leaf(a)), weighted(2, leaf(b)));
    expect(stateText(transformLeaves(u, t, sampleRead))).toBe(
      "/%/io.l5d.port/4141/#/a & 2 * /%/io.l5d.port/4141/#/b",
    );
    expect(stateText(transformLeaves(alt(leaf(a), leaf(b)), t, sampleRead))).toBe(
      "/%/io.l5d.port/4141/#/a | /%/io.l5d.port/4141/#/b",
    );
  });

  it("applies to a binding through bindPath, leaving neg alone", () => {
    const env = transformerEnv();
    const t = env.make(portTransformer, { port: 4141 }, PREFIX);
    const ctx = {
      dtab: readDtab("/svc/web => /$/inet/127.0.0.1/8080"),
      namers: env.ctx(PREFIX).globalNamers,
      transformers: [t],
    };
    const s = bindPath(ctx, readPath("/svc/web/r"), sampleRead);
    expect(stateText(s)).toBe("/%/io.l5d.port/4141/$/inet/127.0.0.1/8080 residual=/r");
    expect(addrText(onlyBound(s).addr.sample())).toBe("127.0.0.1:4141*1");
    expect(stateText(bindPath(ctx, readPath("/svc/other"), sampleRead))).toBe("~");
  });

  it("gives the same transformed name across recomputations of a binding", () => {
    const t = transformerEnv().make(portTransformer, { port: 4141 }, PREFIX);
    const { name, cell } = cellBound("/#/x", [["192.0.2.1", 80]]);
    const seen = new Set<BoundName>();
    const c = computed((read) => {
      read(cell); // recompute on every address change
      const s = t.transformLeaf(name, read);
      seen.add(onlyBound(s));
      return s;
    });
    obs.live(c);
    cell.set(addrBound([address("192.0.2.2", 80)]));
    cell.set(addrBound([address("192.0.2.3", 80)]));
    expect(seen.size).toBe(1);
  });

  it("requires a port and uses /io.l5d.port/<port> as its default prefix", () => {
    expect(decodeIssues(portTransformer, {})).toEqual(["port: missing (expected a port number)"]);
    expect(decodeIssues(portTransformer, { port: 70000 })).toEqual([
      "port: expected a port number, got 70000",
    ]);
    expect(portTransformer.defaultPrefix?.({ port: 4141 })).toBe("/io.l5d.port/4141");
  });
});
