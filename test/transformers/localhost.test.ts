import { afterEach, describe, expect, it, vi } from "vitest";
import { addrBound, address, sampleRead } from "../../gateway/naming/index.js";
import {
  isLoopback,
  localAddresses,
  localhostTransformer,
} from "../../gateway/transformers/localhost.js";
import { addrText, decodeIssues, Observations, onlyBound, stateText } from "../namers/helpers.js";
import { cellBound, transformerEnv } from "./helpers.js";

// This host's interfaces, fixed so the test does not depend on the machine it runs on.
vi.mock("node:os", async (importOriginal) => {
  const os = await importOriginal<typeof import("node:os")>();
  const networkInterfaces = () => ({
    lo: [
      { address: "127.0.0.1", family: "IPv4", internal: true },
      { address: "::1", family: "IPv6", internal: true },
    ],
    eth0: [
      { address: "10.1.2.3", family: "IPv4", internal: false },
      { address: "fd00::5", family: "IPv6", internal: false },
    ],
  });
  return { ...os, networkInterfaces, default: { ...os, networkInterfaces } };
});

const obs = new Observations();
afterEach(() => obs.stopAll());

const PREFIX = "/%/io.l5d.localhost";

describe("io.l5d.localhost", () => {
  it("knows the host's interface addresses", () => {
    expect([...localAddresses()].sort()).toEqual(["10.1.2.3", "127.0.0.1", "::1", "fd00::5"]);
  });

  it("recognizes loopback addresses", () => {
    expect(isLoopback("127.0.0.1")).toBe(true);
    expect(isLoopback("127.10.0.5")).toBe(true);
    expect(isLoopback("::1")).toBe(true);
    expect(isLoopback("::ffff:127.0.0.1")).toBe(true);
    expect(isLoopback("10.1.2.3")).toBe(false);
    expect(isLoopback("128.0.0.1")).toBe(false);
  });

  it("keeps loopback and local interface addresses and drops the others", () => {
    const t = transformerEnv().make(localhostTransformer, {}, PREFIX);
    const { name } = cellBound(
      "/#/io.l5d.fs/users",
      [
        ["127.0.0.1", 8080],
        ["127.0.0.2", 8080, 2],
        ["10.1.2.3", 8080, 3],
        ["10.1.2.4", 8080],
        ["fd00::5", 8080],
        ["fd00::6", 8080],
        ["198.51.100.7", 8080],
      ],
      "/r",
    );
    const s = t.transformLeaf(name, sampleRead);
    expect(stateText(s)).toBe("/%/io.l5d.localhost/#/io.l5d.fs/users residual=/r");
    expect(addrText(onlyBound(s).addr.sample())).toBe(
      "10.1.2.3:8080*3,127.0.0.1:8080*1,127.0.0.2:8080*2,[fd00::5]:8080*1",
    );
  });

  it("makes the Addr neg when every address is dropped", () => {
    const t = transformerEnv().make(localhostTransformer, {}, PREFIX);
    const { name } = cellBound("/#/x", [
      ["198.51.100.7", 80],
      ["203.0.113.9", 80],
    ]);
    expect(onlyBound(t.transformLeaf(name, sampleRead)).addr.sample().kind).toBe("neg");
  });

  it("follows address changes: a local instance appearing turns neg into bound", () => {
    const t = transformerEnv().make(localhostTransformer, {}, PREFIX);
    const { name, cell } = cellBound("/#/x", [["198.51.100.7", 80]]);
    const out = onlyBound(t.transformLeaf(name, sampleRead));
    const live = obs.live(out.addr);
    expect(out.addr.sample().kind).toBe("neg");
    cell.set(addrBound([address("198.51.100.7", 80), address("127.0.0.1", 80)]));
    expect(addrText(out.addr.sample())).toBe("127.0.0.1:80*1");
    cell.set(addrBound([address("198.51.100.8", 80)]));
    expect(live.values.map(addrText)).toEqual(["127.0.0.1:80*1", "neg"]);
  });

  it("takes no options", () => {
    expect(decodeIssues(localhostTransformer, {})).toEqual([]);
    expect(decodeIssues(localhostTransformer, { port: 1 })).toHaveLength(1);
  });
});
