import { afterEach, describe, expect, it } from "vitest";
import { sampleRead } from "../../gateway/naming/index.js";
import { specificHostTransformer } from "../../gateway/transformers/specific-host.js";
import {
  addrText,
  decodeIssues,
  dnsError,
  Observations,
  onlyBound,
  stateText,
  waitUntil,
} from "../namers/helpers.js";
import { cellBound, transformerEnv } from "./helpers.js";

const obs = new Observations();
afterEach(() => obs.stopAll());

const PREFIX = "/%/io.l5d.specificHost";

const addresses: Array<[string, number, number?]> = [
  ["192.0.2.1", 8080],
  ["192.0.2.2", 8080, 2],
  ["192.0.2.2", 9090],
  ["192.0.2.3", 8080],
];

describe("io.l5d.specificHost", () => {
  it("keeps only the addresses of an IP host", () => {
    const env = transformerEnv();
    const t = env.make(specificHostTransformer, { host: "192.0.2.2" }, PREFIX);
    const { name } = cellBound("/#/io.l5d.fs/users", addresses, "/r");
    const s = t.transformLeaf(name, sampleRead);
    expect(stateText(s)).toBe("/%/io.l5d.specificHost/#/io.l5d.fs/users residual=/r");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.2:8080*2,192.0.2.2:9090*1");
    expect(env.dns.calls).toEqual([]);
  });

  it("makes the Addr neg when the host has none of the addresses", () => {
    const t = transformerEnv().make(specificHostTransformer, { host: "192.0.2.99" }, PREFIX);
    const { name } = cellBound("/#/x", addresses);
    expect(onlyBound(t.transformLeaf(name, sampleRead)).addr.sample().kind).toBe("neg");
  });

  it("resolves a host name through the resolver and keeps its addresses", async () => {
    const env = transformerEnv({ "node-a.example": ["192.0.2.3", "192.0.2.1"] });
    const t = env.make(specificHostTransformer, { host: "node-a.example" }, PREFIX);
    const { name } = cellBound("/#/x", addresses);
    const out = onlyBound(t.transformLeaf(name, sampleRead));
    obs.live(out.addr);
    await waitUntil(
      () => addrText(out.addr.sample()) === "192.0.2.1:8080*1,192.0.2.3:8080*1",
      () => `the resolved host's addresses (now ${addrText(out.addr.sample())})`,
    );
    expect(env.dns.calls[0]).toBe("node-a.example");
  });

  it("follows a DNS change of the host", async () => {
    const env = transformerEnv({ "node-a.example": ["192.0.2.1"] });
    const t = env.make(specificHostTransformer, { host: "node-a.example" }, PREFIX);
    const { name } = cellBound("/#/x", addresses);
    const out = onlyBound(t.transformLeaf(name, sampleRead));
    obs.live(out.addr);
    await waitUntil(() => addrText(out.addr.sample()) === "192.0.2.1:8080*1", "the first host");
    env.dns.set("node-a.example", ["192.0.2.2"]);
    await waitUntil(
      () => addrText(out.addr.sample()) === "192.0.2.2:8080*2,192.0.2.2:9090*1",
      () => `the moved host (now ${addrText(out.addr.sample())})`,
    );
  });

  it("keeps nothing (neg) while the host name does not resolve", async () => {
    const env = transformerEnv({ "down.example": dnsError("ETIMEOUT") });
    const t = env.make(specificHostTransformer, { host: "down.example" }, PREFIX);
    const { name } = cellBound("/#/x", addresses);
    const out = onlyBound(t.transformLeaf(name, sampleRead));
    obs.live(out.addr);
    await waitUntil(() => env.dns.count("down.example") >= 1, "a lookup");
    expect(out.addr.sample().kind).toBe("neg");
  });

  it("requires a valid host", () => {
    expect(decodeIssues(specificHostTransformer, {})).toEqual([
      "host: missing (expected an IP address or host name)",
    ]);
    expect(decodeIssues(specificHostTransformer, { host: "not a host" })).toEqual([
      'host: expected an IP address or host name, got "not a host"',
    ]);
  });
});
