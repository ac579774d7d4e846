import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../gateway/log.js";
import { fsNamer } from "../../gateway/namers/fs.js";
import { Path, sameName } from "../../gateway/naming/index.js";
import type { NamerInstance } from "../../gateway/plugins/types.js";
import { noResolver, noServices } from "../support/plugin-services.js";
import {
  addrText,
  decode,
  decodeIssues,
  Observations,
  onlyBound,
  problemText,
  sleep,
  stateText,
  TempDirs,
  waitForState,
  waitUntil,
} from "./helpers.js";

const dirs = new TempDirs();
const obs = new Observations();
const namers: NamerInstance[] = [];

afterEach(() => {
  obs.stopAll();
  for (const n of namers.splice(0)) n.close?.();
  dirs.cleanup();
});

const PREFIX = Path.of("#", "io.l5d.fs");

function namerFor(rootDir: string, checkIntervalMs = 20): NamerInstance {
  const config = decode(fsNamer, { rootDir, checkIntervalMs });
  const n = fsNamer.create(config, {
    ...noServices,
    log: silentLogger,
    prefix: PREFIX,
    resolver: noResolver,
  });
  namers.push(n);
  return n;
}

/** A temp rootDir holding `files` (relative name → content; subdirectories are created). */
function disco(files: Record<string, string> = {}): string {
  const root = dirs.make("lintel-fs-namer-");
  for (const [name, content] of Object.entries(files)) {
    const full = join(root, name);
    mkdirSync(join(full, ".."), { recursive: true });
    writeFileSync(full, content);
  }
  return root;
}

const p = (...segs: string[]) => Path.of(...segs);

describe("io.l5d.fs namer: lookups", () => {
  it("binds a file to the bound id /#/io.l5d.fs/<name> with the rest as residual", () => {
    const root = disco({ users: "192.0.2.1 8080\n192.0.2.2 8080 * 2\n" });
    const s = namerFor(root)
      .lookup(p("users", "v1", "list"))
      .sample();
    expect(stateText(s)).toBe("/#/io.l5d.fs/users residual=/v1/list");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.1:8080*1,192.0.2.2:8080*2");
  });

  it("binds with an empty residual when the path is just the file", () => {
    const root = disco({ web: "192.0.2.9 80" });
    const b = onlyBound(namerFor(root).lookup(p("web")).sample());
    expect(b.id.show).toBe("/#/io.l5d.fs/web");
    expect(b.residual.isEmpty).toBe(true);
  });

  it("uses the namer's mount prefix in the bound id", () => {
    const root = disco({ web: "192.0.2.9 80" });
    const n = fsNamer.create(decode(fsNamer, { rootDir: root }), {
      ...noServices,
      log: silentLogger,
      prefix: Path.of("#", "disco"),
      resolver: noResolver,
    });
    namers.push(n);
    expect(stateText(n.lookup(p("web")).sample())).toBe("/#/disco/web");
  });

  it("answers neg for a missing file", () => {
    const root = disco({ users: "192.0.2.1 8080" });
    expect(stateText(namerFor(root).lookup(p("nobody", "x")).sample())).toBe("~");
  });

  it("answers neg for the empty path", () => {
    expect(stateText(namerFor(disco()).lookup(Path.empty).sample())).toBe("~");
  });

  it("nests subdirectories: /<dir>/<name> binds rootDir/<dir>/<name>", () => {
    const root = disco({ "prod/users": "192.0.2.1 80", "staging/users": "192.0.2.2 80" });
    const n = namerFor(root);
    const prod = n.lookup(p("prod", "users", "v1")).sample();
    expect(stateText(prod)).toBe("/#/io.l5d.fs/prod/users residual=/v1");
    expect(addrText(onlyBound(prod).addr.sample())).toBe("192.0.2.1:80*1");
    const staging = n.lookup(p("staging", "users")).sample();
    expect(addrText(onlyBound(staging).addr.sample())).toBe("192.0.2.2:80*1");
  });

  it("answers neg for a path that ends at a directory", () => {
    const root = disco({ "prod/users": "192.0.2.1 80" });
    expect(stateText(namerFor(root).lookup(p("prod")).sample())).toBe("~");
  });

  it("does not let `..` or `.` climb out of rootDir", () => {
    const outer = disco({ secret: "192.0.2.66 22", "root/users": "192.0.2.1 80" });
    const n = namerFor(join(outer, "root"));
    expect(stateText(n.lookup(p("..", "secret")).sample())).toBe("~");
    expect(stateText(n.lookup(p(".", "users")).sample())).toBe("~");
    expect(stateText(n.lookup(p("users")).sample())).toBe("/#/io.l5d.fs/users");
  });

  it("does not treat a segment containing `/` as nested directories", () => {
    const outer = disco({ secret: "192.0.2.66 22", "root/prod/users": "192.0.2.1 80" });
    const n = namerFor(join(outer, "root"));
    expect(stateText(n.lookup(p("prod/users")).sample())).toBe("~");
    expect(stateText(n.lookup(p("../secret")).sample())).toBe("~");
  });

  it("returns the same activity and the same bound name for repeated lookups", () => {
    const root = disco({ users: "192.0.2.1 80" });
    const n = namerFor(root);
    const a = n.lookup(p("users", "x"));
    const live = obs.live(a);
    expect(n.lookup(p("users", "x"))).toBe(a);
    const first = onlyBound(live.current());
    const again = onlyBound(n.lookup(p("users", "x")).sample());
    expect(sameName(first, again)).toBe(true);
  });

  it("binds an empty file to no addresses", () => {
    const root = disco({ empty: "# nobody yet\n" });
    const b = onlyBound(namerFor(root).lookup(p("empty")).sample());
    const a = b.addr.sample();
    expect(a.kind).toBe("bound");
    expect(addrText(a)).toBe("");
  });

  it("keeps the good lines of a file that also has bad ones", () => {
    const root = disco({ web: "192.0.2.1 80\nnot a line at all\n192.0.2.2 notaport\n" });
    const b = onlyBound(namerFor(root).lookup(p("web")).sample());
    expect(addrText(b.addr.sample())).toBe("192.0.2.1:80*1");
  });

  it("gives a failed Addr naming file:line when every line is bad", () => {
    const root = disco({ web: "# comment\n192.0.2.1\n192.0.2.2 99999\n" });
    const b = onlyBound(namerFor(root).lookup(p("web")).sample());
    const a = b.addr.sample();
    expect(a.kind).toBe("failed");
    expect(addrText(a)).toBe(
      `failed: ${join(root, "web")}:2: expected \`host port\` or \`host port * weight\`: "192.0.2.1"`,
    );
  });

  it("refuses an address file larger than 1 MiB with a failed Addr", () => {
    const root = disco({ big: `192.0.2.1 80\n${"#".repeat(1 << 20)}\n` });
    const a = onlyBound(namerFor(root).lookup(p("big")).sample()).addr.sample();
    expect(a.kind).toBe("failed");
    expect(addrText(a)).toContain(`${join(root, "big")}: larger than`);
  });
});

describe("io.l5d.fs namer: watching", () => {
  it("turns neg into bound when the file appears, and back to neg when it goes away", async () => {
    const root = disco();
    const n = namerFor(root);
    const a = n.lookup(p("users", "v1"));
    const live = obs.live(a);
    expect(stateText(live.current())).toBe("~");

    writeFileSync(join(root, "users"), "192.0.2.1 8080\n");
    await waitForState(a, "/#/io.l5d.fs/users residual=/v1");
    expect(addrText(onlyBound(a.sample()).addr.sample())).toBe("192.0.2.1:8080*1");
    expect(live.values.map(stateText)).toContain("/#/io.l5d.fs/users residual=/v1");

    rmSync(join(root, "users"));
    await waitForState(a, "~");
    expect(stateText(live.values.at(-1)!)).toBe("~");
  });

  it("binds a file that appears in a new subdirectory", async () => {
    const root = disco();
    const a = namerFor(root).lookup(p("prod", "users"));
    obs.live(a);
    mkdirSync(join(root, "prod"));
    writeFileSync(join(root, "prod", "users"), "192.0.2.7 80\n");
    await waitForState(a, "/#/io.l5d.fs/prod/users");
  });

  it("follows edits of the file in the bound name's addresses", async () => {
    const root = disco({ users: "192.0.2.1 8080\n" });
    const b = onlyBound(namerFor(root).lookup(p("users")).sample());
    const addr = obs.live(b.addr);
    expect(addrText(addr.current())).toBe("192.0.2.1:8080*1");

    writeFileSync(join(root, "users"), "192.0.2.1 8080\n192.0.2.2 8081 * 3\n");
    await waitUntil(
      () => addrText(b.addr.sample()) === "192.0.2.1:8080*1,192.0.2.2:8081*3",
      () => `the new addresses (now ${addrText(b.addr.sample())})`,
    );
    expect(addr.values.map(addrText)).toContain("192.0.2.1:8080*1,192.0.2.2:8081*3");

    writeFileSync(join(root, "users"), "192.0.2.3 9000\n");
    await waitUntil(
      () => addrText(b.addr.sample()) === "192.0.2.3:9000*1",
      () => `the replaced address (now ${addrText(b.addr.sample())})`,
    );
  });

  it("keeps the same bound name while the file is edited", async () => {
    const root = disco({ users: "192.0.2.1 8080\n" });
    const a = namerFor(root).lookup(p("users"));
    const tree = obs.live(a);
    const b = onlyBound(a.sample());
    obs.live(b.addr);
    writeFileSync(join(root, "users"), "192.0.2.5 8080\n");
    await waitUntil(() => addrText(b.addr.sample()) === "192.0.2.5:8080*1", "the edit");
    // An edit changes addresses, not the binding: the tree reported no change.
    expect(tree.values).toEqual([]);
    expect(onlyBound(a.sample())).toBe(b);
  });

  it("turns the addresses failed when an edit leaves only bad lines, and back when fixed", async () => {
    const root = disco({ users: "192.0.2.1 8080\n" });
    const b = onlyBound(namerFor(root).lookup(p("users")).sample());
    obs.live(b.addr);
    writeFileSync(join(root, "users"), "\n\n192.0.2.1 eighty\n");
    const file = join(root, "users");
    await waitUntil(() => b.addr.sample().kind === "failed", "the failed addr");
    expect(addrText(b.addr.sample())).toBe(
      `failed: ${file}:3: not a port number (1-65535): "192.0.2.1 eighty"`,
    );
    writeFileSync(file, "192.0.2.1 80\n");
    await waitUntil(() => addrText(b.addr.sample()) === "192.0.2.1:80*1", "the fixed addr");
  });

  it("binds the file again with its addresses when it is re-created with the same content", async () => {
    const root = disco({ users: "192.0.2.1 8080\n" });
    const file = join(root, "users");
    const a = namerFor(root).lookup(p("users"));
    obs.live(a);
    const first = onlyBound(a.sample());
    obs.live(first.addr); // a client still holds the first bound name's addresses
    rmSync(file);
    await waitForState(a, "~");
    writeFileSync(file, "192.0.2.1 8080\n");
    await waitForState(a, "/#/io.l5d.fs/users");
    const again = onlyBound(a.sample());
    const addr = obs.live(again.addr);
    // Regression: after the file was deleted the addr Cell holds failed(ENOENT) while it still
    // remembers the old text, and readAddr answers "unchanged text → keep the current
    // value"; re-creating the file with the same content therefore leaves the addresses
    // failed for good (until the content changes).
    await waitUntil(
      () => addrText(again.addr.sample()) === "192.0.2.1:8080*1",
      () => `the re-created file's addresses (now ${addrText(again.addr.sample())})`,
      1500,
    );
    expect(addrText(addr.current())).toBe("192.0.2.1:8080*1");
  });

  it("does not notify observers of a neg lookup while nothing changes", async () => {
    const root = disco({ other: "192.0.2.1 80\n" });
    const a = namerFor(root).lookup(p("missing"));
    const live = obs.live(a);
    await sleep(250); // about a dozen periodic checks at checkIntervalMs 20
    expect(stateText(a.sample())).toBe("~");
    // Regression: every check re-evaluates the lookup to a fresh `ok(Neg)` object, which
    // Cell.set treats as a change: an observed neg lookup notifies its observers on every
    // periodic check (each second by default) although nothing changed.
    expect(live.values.length).toBe(0);
  });

  it("does not notify observers of a bound lookup while nothing changes", async () => {
    const root = disco({ users: "192.0.2.1 80\n" });
    const a = namerFor(root).lookup(p("users", "x"));
    const live = obs.live(a);
    const b = onlyBound(a.sample());
    const addr = obs.live(b.addr);
    await sleep(150);
    expect(live.values).toEqual([]);
    expect(addr.values).toEqual([]);
    expect(onlyBound(a.sample())).toBe(b);
  });

  it("stops following the directory after close()", async () => {
    const root = disco();
    const n = namerFor(root);
    const a = n.lookup(p("late"));
    const live = obs.live(a);
    n.close?.();
    writeFileSync(join(root, "late"), "192.0.2.1 80\n");
    await sleep(200);
    expect(stateText(a.sample())).toBe("~");
    expect(live.values.map(stateText).filter((t) => t !== "~")).toEqual([]);
  });
});

describe("io.l5d.fs namer: config", () => {
  it("resolves a relative rootDir against the config directory", () => {
    const root = disco();
    const config = decode(fsNamer, { rootDir: "disco" }, root);
    expect(config.rootDir).toBe(join(root, "disco"));
    expect(config.checkIntervalMs).toBe(1000);
  });

  it("requires rootDir", () => {
    expect(decodeIssues(fsNamer, {})).toEqual(["rootDir: missing (expected a directory)"]);
  });

  it("validate reports a missing rootDir", () => {
    const root = disco();
    const missing = join(root, "nope");
    const problems = fsNamer.validate!(decode(fsNamer, { rootDir: missing })).map(problemText);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(missing);
    expect(problems[0]).toContain("does not exist");
  });

  it("validate reports a rootDir that is a file", () => {
    const root = disco({ file: "x" });
    const problems = fsNamer.validate!(decode(fsNamer, { rootDir: join(root, "file") })).map(
      problemText,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("is not a directory");
  });

  it("validate accepts an existing directory", () => {
    expect(fsNamer.validate!(decode(fsNamer, { rootDir: disco() }))).toEqual([]);
  });

  it("rejects a checkIntervalMs below 10", () => {
    expect(decodeIssues(fsNamer, { rootDir: "/tmp", checkIntervalMs: 5 })).toEqual([
      "checkIntervalMs: expected an integer of at least 10, got 5",
    ]);
  });
});
