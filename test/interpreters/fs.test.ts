import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DtabInterpreter } from "../../gateway/interpreters/default.js";
import { fsInterpreter, readDtabFile, watchDtabFile } from "../../gateway/interpreters/fs.js";
import type { Interpreter } from "../../gateway/interpreters/interpreter.js";
import { createLogger, type Level, silentLogger } from "../../gateway/log.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { globalLookup } from "../../gateway/namers/mount.js";
import { Dtab, readDtab, readPath } from "../../gateway/naming/index.js";
import type { NamingSetup } from "../../gateway/routing/naming-setup.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import {
  addrText,
  decode,
  decodeIssues,
  fakeDns,
  fakeResolver,
  Observations,
  onlyBound,
  problemText,
  sleep,
  stateText,
  TempDirs,
  waitForState,
  waitUntil,
} from "../namers/helpers.js";
import { noServices } from "../support/plugin-services.js";
import { buildFromYaml } from "./helpers.js";

const dirs = new TempDirs();
const obs = new Observations();
const closers: Array<() => void> = [];

afterEach(() => {
  obs.stopAll();
  for (const c of closers.splice(0)) c();
  dirs.cleanup();
});

const none = Dtab.empty;
const global = createGlobalNamer(fakeResolver(fakeDns().lookup));

/** Creates the io.l5d.fs interpreter on `dtabFile` (checked every 20 ms) with the /$/ namers. */
function fsInterp(dtabFile: string, routerDtab = "", log = silentLogger): Interpreter {
  const config = decode(fsInterpreter, { dtabFile, checkIntervalMs: 20 });
  const i = fsInterpreter.create(config, {
    ...noServices,
    log,
    label: "test",
    routerDtab: readDtab(routerDtab),
    namers: globalLookup(global),
    transformers: [],
  });
  closers.push(() => i.close());
  return i;
}

function dtabFile(content: string): string {
  const dir = dirs.make("lintel-fs-interp-");
  const file = join(dir, "dtab");
  writeFileSync(file, content);
  return file;
}

/** A logger that keeps `level message` lines. */
function recordingLogger() {
  const lines: string[] = [];
  const log = createLogger({
    level: "debug",
    sink: (line: string, level: Level) => {
      lines.push(`${level} ${line}`);
    },
  });
  return { log, lines };
}

describe("io.l5d.fs interpreter", () => {
  it("binds with the file's dtab", () => {
    const file = dtabFile("# services\n/svc => /$/nil;\n/svc/users => /$/inet/127.0.0.1/8001;\n");
    const i = fsInterp(file);
    expect(stateText(i.bind(none, readPath("/svc/users/x")).sample())).toBe(
      "/$/inet/127.0.0.1/8001 residual=/x",
    );
    expect(stateText(i.bind(none, readPath("/svc/other")).sample())).toBe("$");
  });

  it("is a DtabInterpreter whose file dentries come before the router dtab", () => {
    const file = dtabFile("/svc/users => /$/inet/127.0.0.1/1; /svc/web => /$/inet/127.0.0.1/2");
    const i = fsInterp(file, "/svc/users => /$/inet/127.0.0.1/3");
    expect(i).toBeInstanceOf(DtabInterpreter);
    // The router dtab comes later, so it wins; the file still serves what it alone matches.
    expect(stateText(i.bind(none, readPath("/svc/users")).sample())).toBe("/$/inet/127.0.0.1/3");
    expect(stateText(i.bind(none, readPath("/svc/web")).sample())).toBe("/$/inet/127.0.0.1/2");
    // The local dtab comes last of all.
    const local = readDtab("/svc/users => /$/inet/127.0.0.1/4");
    expect(stateText(i.bind(local, readPath("/svc/users")).sample())).toBe("/$/inet/127.0.0.1/4");
  });

  it("applies an edit without a restart", async () => {
    const file = dtabFile("/svc/users => /$/inet/127.0.0.1/8001");
    const i = fsInterp(file);
    const a = i.bind(none, readPath("/svc/users"));
    const live = obs.live(a);
    expect(stateText(a.sample())).toBe("/$/inet/127.0.0.1/8001");
    writeFileSync(file, "/svc/users => /$/inet/127.0.0.1/8002\n");
    await waitForState(a, "/$/inet/127.0.0.1/8002");
    expect(live.values.map(stateText)).toEqual(["/$/inet/127.0.0.1/8002"]);
  });

  it("keeps the last good dtab after a bad edit, then applies the fixed file", async () => {
    const { log, lines } = recordingLogger();
    const file = dtabFile("/svc/users => /$/inet/127.0.0.1/8001");
    const i = fsInterp(file, "", log);
    const a = i.bind(none, readPath("/svc/users"));
    const live = obs.live(a);

    writeFileSync(file, "/svc/users => /$/inet/127.0.0.1/8001;\n/svc/web => => nope\n");
    await waitUntil(
      () => lines.some((l) => l.includes("dtab file edit rejected")),
      "the rejected edit to be logged",
    );
    expect(stateText(a.sample())).toBe("/$/inet/127.0.0.1/8001");
    expect(live.values).toEqual([]);
    const rejected = lines.find((l) => l.includes("dtab file edit rejected"))!;
    expect(rejected).toMatch(/^error /);
    expect(rejected).toContain(`${file}:2:`);

    writeFileSync(file, "/svc/users => /$/inet/127.0.0.1/8003\n");
    await waitForState(a, "/$/inet/127.0.0.1/8003");
    expect(live.values.map(stateText)).toEqual(["/$/inet/127.0.0.1/8003"]);
  });

  it("keeps the last good dtab when the file is deleted, and applies it when it returns", async () => {
    const file = dtabFile("/svc/users => /$/inet/127.0.0.1/8001");
    const i = fsInterp(file);
    const a = i.bind(none, readPath("/svc/users"));
    obs.live(a);
    rmSync(file);
    await sleep(150);
    expect(stateText(a.sample())).toBe("/$/inet/127.0.0.1/8001");
    writeFileSync(file, "/svc/users => /$/inet/127.0.0.1/8004\n");
    await waitForState(a, "/$/inet/127.0.0.1/8004");
  });

  it("fails bindings while the file never parsed, and recovers when it is fixed", async () => {
    const file = dtabFile("/svc/users => \n");
    const i = fsInterp(file);
    const a = i.bind(none, readPath("/svc/users"));
    obs.live(a);
    const s = a.sample();
    expect(s.status).toBe("failed");
    expect(stateText(s)).toContain(`${file}:1:`);
    writeFileSync(file, "/svc/users => /$/inet/127.0.0.1/8005\n");
    await waitForState(a, "/$/inet/127.0.0.1/8005");
  });

  it("does not notify a binding when an edit leaves its name's binding unchanged", async () => {
    const dir = dirs.make("lintel-fs-interp-");
    mkdirSync(join(dir, "disco"));
    writeFileSync(join(dir, "disco", "users"), "192.0.2.1 80\n");
    writeFileSync(join(dir, "dtab"), "/svc/users => /#/io.l5d.fs/users;\n/svc/web => /$/nil;\n");
    const yaml = `
namers:
  - kind: io.l5d.fs
    rootDir: disco
    checkIntervalMs: 20
routers:
  - protocol: http
    interpreter:
      kind: io.l5d.fs
      dtabFile: dtab
      checkIntervalMs: 20
    servers:
      - port: 0
`;
    const { naming } = await buildFromYaml(dir, yaml);
    closers.push(() => naming.close());
    const i = naming.routers.get("http")!.interpreter;
    const users = i.bind(none, readPath("/svc/users"));
    const web = i.bind(none, readPath("/svc/web"));
    const usersLive = obs.live(users);
    obs.live(web);
    writeFileSync(join(dir, "dtab"), "/svc/users => /#/io.l5d.fs/users;\n/svc/web => !;\n");
    await waitForState(web, "!");
    expect(usersLive.values).toEqual([]);
  });

  it("does not notify a binding to an IP address when an unrelated dentry changes", async () => {
    const file = dtabFile("/svc/users => /$/inet/127.0.0.1/8001;\n/svc/web => /$/nil;\n");
    const i = fsInterp(file);
    const users = i.bind(none, readPath("/svc/users"));
    const web = i.bind(none, readPath("/svc/web"));
    const usersLive = obs.live(users);
    obs.live(web);
    writeFileSync(file, "/svc/users => /$/inet/127.0.0.1/8001;\n/svc/web => !;\n");
    await waitForState(web, "!");
    // Regression: each rebind of /$/inet/<ip>/<port> yields a new BoundName with a new addr Var
    // (see global.test.ts), so boundStateEquals sees a change and the unchanged binding
    // of /svc/users is re-announced to its observers after an unrelated dtab edit.
    expect(usersLive.values).toEqual([]);
  });

  it("stops watching the file on close()", async () => {
    const file = dtabFile("/svc/users => /$/inet/127.0.0.1/8001");
    const config = decode(fsInterpreter, { dtabFile: file, checkIntervalMs: 20 });
    const i = fsInterpreter.create(config, {
      ...noServices,
      log: silentLogger,
      label: "test",
      routerDtab: none,
      namers: globalLookup(global),
      transformers: [],
    });
    const a = i.bind(none, readPath("/svc/users"));
    obs.live(a);
    i.close();
    writeFileSync(file, "/svc/users => /$/inet/127.0.0.1/8009\n");
    await sleep(200);
    expect(stateText(a.sample())).toBe("/$/inet/127.0.0.1/8001");
  });

  it("builds from a config with a relative dtabFile and binds through configured namers", async () => {
    const dir = dirs.make("lintel-fs-interp-");
    mkdirSync(join(dir, "disco"));
    writeFileSync(join(dir, "disco", "users"), "192.0.2.1 8080\n");
    writeFileSync(join(dir, "dtab"), "/svc => /#/io.l5d.fs;\n");
    const yaml = `
namers:
  - kind: io.l5d.fs
    rootDir: disco
routers:
  - protocol: http
    label: edge
    dtab: /svc/pinned => /$/inet/127.0.0.1/1
    interpreter:
      kind: io.l5d.fs
      dtabFile: dtab
      checkIntervalMs: 20
      transformers:
        - kind: io.l5d.port
          port: 4141
    servers:
      - port: 0
`;
    const { naming }: { naming: NamingSetup } = await buildFromYaml(dir, yaml);
    closers.push(() => naming.close());
    const i = naming.routers.get("edge")!.interpreter;
    const users = i.bind(none, readPath("/svc/users"));
    obs.live(users);
    expect(stateText(users.sample())).toBe("/%/io.l5d.port/4141/#/io.l5d.fs/users");
    expect(addrText(onlyBound(users.sample()).addr.sample())).toBe("192.0.2.1:4141*1");
    expect(stateText(i.bind(none, readPath("/svc/pinned")).sample())).toBe(
      "/%/io.l5d.port/4141/$/inet/127.0.0.1/1",
    );
    writeFileSync(join(dir, "dtab"), "/svc => /$/inet/127.0.0.1/2;\n");
    await waitForState(users, "/%/io.l5d.port/4141/$/inet/127.0.0.1/2 residual=/users");
  });
});

describe("io.l5d.fs interpreter: validation", () => {
  it("validate rejects a missing dtab file, naming it", () => {
    const dir = dirs.make("lintel-fs-interp-");
    const missing = join(dir, "no-such-dtab");
    const problems = fsInterpreter.validate!(decode(fsInterpreter, { dtabFile: missing })).map(
      problemText,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(missing);
    expect(problems[0]).toContain("does not exist");
  });

  it("validate rejects a directory as the dtab file", () => {
    const dir = dirs.make("lintel-fs-interp-");
    const problems = fsInterpreter.validate!(decode(fsInterpreter, { dtabFile: dir })).map(
      problemText,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("is not a file");
  });

  it("validate rejects an unparsable dtab with the file name, line and column", () => {
    const file = dtabFile("/svc/a => /x;\n\n/svc/b => /y /z;\n");
    const problems = fsInterpreter.validate!(decode(fsInterpreter, { dtabFile: file })).map(
      problemText,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:\\d+: invalid dtab`),
    );
  });

  it("validate accepts a good dtab file, comments and an empty file included", () => {
    expect(
      fsInterpreter.validate!(decode(fsInterpreter, { dtabFile: dtabFile("# none\n/a => /b;") })),
    ).toEqual([]);
    expect(fsInterpreter.validate!(decode(fsInterpreter, { dtabFile: dtabFile("") }))).toEqual([]);
  });

  it("reports a bad dtab file through loadConfig with the config line", async () => {
    const dir = dirs.make("lintel-fs-interp-");
    writeFileSync(join(dir, "dtab"), "/svc => \n");
    const file = join(dir, "lintel.yaml");
    writeFileSync(
      file,
      [
        "routers:",
        "  - protocol: http",
        "    interpreter:",
        "      kind: io.l5d.fs",
        "      dtabFile: dtab",
        "    servers:",
        "      - port: 0",
        "",
      ].join("\n"),
    );
    const r = await loadLintelConfig(file, { env: {} });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    const e = r.errors[0]!;
    expect(e.message).toContain(`${join(dir, "dtab")}:1:`);
    expect(e.path).toMatch(/^routers\[0\]\.interpreter/);
    // The interpreter block spans lines 3-5 (kind, dtabFile).
    expect(e.line).toBeGreaterThanOrEqual(3);
    expect(e.line).toBeLessThanOrEqual(5);
  });

  it("requires dtabFile and a checkIntervalMs of at least 10", () => {
    expect(decodeIssues(fsInterpreter, {})).toEqual(["dtabFile: missing (expected a dtab file)"]);
    expect(decodeIssues(fsInterpreter, { dtabFile: "d", checkIntervalMs: 1 })).toEqual([
      "checkIntervalMs: expected an integer of at least 10, got 1",
    ]);
  });

  it("readDtabFile reads a dtab and points at the line and column of an error", () => {
    const good = dtabFile("/a => /b;\n/c => /d | ~;\n");
    expect(readDtabFile(good).show).toBe("/a=>/b;/c=>/d | ~");
    const bad = dtabFile("/a => /b;\n/c => (/d\n");
    expect(() => readDtabFile(bad)).toThrow(/:2:\d+: invalid dtab/);
  });
});

describe("watchDtabFile", () => {
  it("publishes each good edit once and logs the change", async () => {
    const { log, lines } = recordingLogger();
    const file = dtabFile("/a => /b");
    const w = watchDtabFile(file, log, 20);
    closers.push(() => w.stop());
    const seen: string[] = [];
    obs.add(
      w.dtab.observe((s) => seen.push(s.status === "ok" ? s.value.show : `failed ${s.status}`)),
    );
    writeFileSync(file, "/a => /c");
    await waitUntil(() => seen.length >= 1, "the edit");
    // Rewriting the same dentries (only whitespace differs) is not a change.
    writeFileSync(file, "/a   =>   /c\n");
    await sleep(120);
    expect(seen).toEqual(["/a=>/c"]);
    expect(lines.some((l) => l.startsWith("info") && l.includes("dtab file changed"))).toBe(true);
  });
});
