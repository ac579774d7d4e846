import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DecodeContext } from "../../gateway/config/schema.js";
import { DtabInterpreter, defaultInterpreter } from "../../gateway/interpreters/default.js";
import { silentLogger } from "../../gateway/log.js";
import { FsNamer } from "../../gateway/namers/fs.js";
import { createGlobalNamer } from "../../gateway/namers/global.js";
import { globalLookup, namerLookup } from "../../gateway/namers/mount.js";
import {
  Cell,
  type Dtab,
  Dtab as DtabClass,
  failed,
  ok,
  Path,
  PENDING,
  readDtab,
  readPath,
  type State,
  settle,
  type Transformer,
} from "../../gateway/naming/index.js";
import type { NamingSetup } from "../../gateway/routing/naming-setup.js";
import { portTransformer } from "../../gateway/transformers/port.js";
import {
  addrText,
  decode,
  fakeDns,
  fakeResolver,
  Observations,
  onlyBound,
  stateText,
  TempDirs,
  waitForState,
} from "../namers/helpers.js";
import { noServices } from "../support/plugin-services.js";
import { buildFromYaml, delegatedLeaves } from "./helpers.js";

const dirs = new TempDirs();
const obs = new Observations();
const setups: NamingSetup[] = [];

afterEach(() => {
  obs.stopAll();
  for (const s of setups.splice(0)) s.close();
  dirs.cleanup();
});

/** A temp dir with disco/users and disco/web address files. */
function workspace(): string {
  const dir = dirs.make("lintel-interp-");
  mkdirSync(join(dir, "disco"));
  writeFileSync(join(dir, "disco", "users"), "192.0.2.1 8080\n192.0.2.2 8080\n");
  writeFileSync(join(dir, "disco", "web"), "192.0.2.10 80\n");
  return dir;
}

async function build(dir: string, yaml: string, answers = {}) {
  const built = await buildFromYaml(dir, yaml, answers);
  setups.push(built.naming);
  return built;
}

const NODE_YAML = `
namers:
  - kind: io.l5d.fs
    rootDir: disco
    checkIntervalMs: 20
routers:
  - protocol: http
    label: outgoing
    dtab: |
      /srv => /#/io.l5d.fs;
      /svc => /srv;
    servers:
      - port: 0
`;

const none = DtabClass.empty;

describe("default interpreter built from a config", () => {
  it("binds through the router dtab and the configured namers", async () => {
    const { naming } = await build(workspace(), NODE_YAML);
    const interp = naming.routers.get("outgoing")!.interpreter;
    const s = await settle(interp.bind(none, readPath("/svc/users/v1")));
    expect(stateText(s)).toBe("/#/io.l5d.fs/users residual=/v1");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.1:8080*1,192.0.2.2:8080*1");
  });

  it("answers neg for a service no dentry or namer knows", async () => {
    const { naming } = await build(workspace(), NODE_YAML);
    const interp = naming.routers.get("outgoing")!.interpreter;
    expect(stateText(await settle(interp.bind(none, readPath("/svc/nobody"))))).toBe("~");
    expect(stateText(await settle(interp.bind(none, readPath("/other/users"))))).toBe("~");
  });

  it("lets local dentries win over the router dtab because they come later", async () => {
    const { naming } = await build(workspace(), NODE_YAML);
    const interp = naming.routers.get("outgoing")!.interpreter;
    const local = readDtab("/svc/users => /$/inet/127.0.0.1/9999");
    expect(stateText(await settle(interp.bind(local, readPath("/svc/users/x"))))).toBe(
      "/$/inet/127.0.0.1/9999 residual=/x",
    );
    // Names the local dtab does not match still use the router dtab.
    expect(stateText(await settle(interp.bind(local, readPath("/svc/web"))))).toBe(
      "/#/io.l5d.fs/web",
    );
  });

  it("falls back to the router dtab when a local dentry binds to neg", async () => {
    const { naming } = await build(workspace(), NODE_YAML);
    const interp = naming.routers.get("outgoing")!.interpreter;
    const local = readDtab("/svc => /#/io.l5d.fs/nothing-here");
    expect(stateText(await settle(interp.bind(local, readPath("/svc/users"))))).toBe(
      "/#/io.l5d.fs/users",
    );
  });

  it("applies the interpreter's transformers", async () => {
    const yaml = `
namers:
  - kind: io.l5d.fs
    rootDir: disco
routers:
  - protocol: http
    label: outgoing
    dtab: /svc => /#/io.l5d.fs
    interpreter:
      kind: default
      transformers:
        - kind: io.l5d.port
          port: 4141
    servers:
      - port: 0
`;
    const { naming } = await build(workspace(), yaml);
    const interp = naming.routers.get("outgoing")!.interpreter;
    const s = await settle(interp.bind(none, readPath("/svc/users")));
    expect(stateText(s)).toBe("/%/io.l5d.port/4141/#/io.l5d.fs/users");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.1:4141*1,192.0.2.2:4141*1");
    // The transformer also applies to names bound by the local dtab.
    const local = readDtab("/svc/x => /$/inet/192.0.2.9/80");
    expect(stateText(await settle(interp.bind(local, readPath("/svc/x"))))).toBe(
      "/%/io.l5d.port/4141/$/inet/192.0.2.9/80",
    );
  });

  it("applies a namer's own transformers and its custom prefix", async () => {
    const yaml = `
namers:
  - kind: io.l5d.fs
    prefix: /disco
    rootDir: disco
    transformers:
      - kind: io.l5d.port
        port: 7777
routers:
  - protocol: http
    dtab: /svc => /#/disco
    servers:
      - port: 0
`;
    const { naming } = await build(workspace(), yaml);
    const interp = naming.routers.get("http")!.interpreter;
    const s = await settle(interp.bind(none, readPath("/svc/web/r")));
    expect(stateText(s)).toBe("/%/io.l5d.port/7777/#/disco/web residual=/r");
    expect(addrText(onlyBound(s).addr.sample())).toBe("192.0.2.10:7777*1");
  });

  it("resolves host names in the dtab through the given resolver", async () => {
    const yaml = `
routers:
  - protocol: http
    dtab: /svc/api => /$/inet/api.example/443
    servers:
      - port: 0
`;
    const { naming, dns } = await build(workspace(), yaml, { "api.example": ["192.0.2.77"] });
    const a = naming.routers.get("http")!.interpreter.bind(none, readPath("/svc/api"));
    obs.live(a);
    await waitForState(a, "/$/inet/api.example/443");
    expect(dns.calls).toContain("api.example");
  });

  it("follows the namer while observed: a new file binds without a restart", async () => {
    const dir = workspace();
    const { naming } = await build(dir, NODE_YAML);
    const a = naming.routers.get("outgoing")!.interpreter.bind(none, readPath("/svc/billing"));
    const live = obs.live(a);
    expect(stateText(a.sample())).toBe("~");
    writeFileSync(join(dir, "disco", "billing"), "192.0.2.30 80\n");
    await waitForState(a, "/#/io.l5d.fs/billing");
    rmSync(join(dir, "disco", "billing"));
    await waitForState(a, "~");
    expect(live.values.map(stateText)).toEqual(["/#/io.l5d.fs/billing", "~"]);
  });

  it("explains a binding with delegate()", async () => {
    const { naming } = await build(workspace(), NODE_YAML);
    const d = naming.routers.get("outgoing")!.interpreter.delegate(none, readPath("/svc/users"));
    const v = d.sample();
    if ("error" in v) throw v.error;
    expect(v.pending).toBe(false);
    expect(delegatedLeaves(v.tree)).toEqual(["/#/io.l5d.fs/users"]);
  });

  it("builds the identifier chain and the defaults of each router", async () => {
    const yaml = `
routers:
  - protocol: http
    label: a
    identifier:
      - kind: io.l5d.header
      - kind: io.l5d.path
        segments: 2
    servers:
      - port: 0
  - protocol: http
    label: b
    dstPrefix: /http
    servers:
      - port: 0
`;
    const { naming } = await build(workspace(), yaml);
    const a = naming.routers.get("a")!;
    const b = naming.routers.get("b")!;
    expect([...naming.routers.keys()]).toEqual(["a", "b"]);
    expect(a.bindingTimeoutMs).toBe(10_000);
    expect(b.dstPrefix.show).toBe("/http");
    const req = (url: string, headers: Record<string, string>) => ({
      method: "GET",
      url,
      httpVersion: "1.1",
      header: (n: string) => headers[n],
    });
    const r = a.identifier.identify(req("/users/v2/x", {}));
    expect(r.ok && r.dst.show).toBe("/svc/users/v2");
    const h = b.identifier.identify(req("/", { host: "web" }));
    expect(h.ok && h.dst.show).toBe("/http/web");
  });

  it("stops the namers' watches on close()", async () => {
    const dir = workspace();
    const { naming } = await build(dir, NODE_YAML);
    const a = naming.routers.get("outgoing")!.interpreter.bind(none, readPath("/svc/late"));
    obs.live(a);
    naming.close();
    writeFileSync(join(dir, "disco", "late"), "192.0.2.31 80\n");
    await new Promise((r) => setTimeout(r, 200));
    expect(stateText(a.sample())).toBe("~");
  });
});

describe("DtabInterpreter used directly", () => {
  const resolver = fakeResolver(fakeDns().lookup);
  const global = createGlobalNamer(resolver);

  function interpreter(
    routerDtab: string,
    transformers: Transformer[] = [],
    source?: Cell<State<Dtab>>,
  ) {
    return new DtabInterpreter(
      {
        ...noServices,
        log: silentLogger,
        label: "test",
        routerDtab: readDtab(routerDtab),
        namers: globalLookup(global),
        transformers,
      },
      source,
    );
  }

  it("is what the `default` plugin creates", () => {
    const i = defaultInterpreter.create(decode(defaultInterpreter, {}), {
      ...noServices,
      log: silentLogger,
      label: "x",
      routerDtab: readDtab("/svc => /$/inet/127.0.0.1"),
      namers: globalLookup(global),
      transformers: [],
    });
    expect(i).toBeInstanceOf(DtabInterpreter);
    expect(stateText(i.bind(none, readPath("/svc/8080")).sample())).toBe("/$/inet/127.0.0.1/8080");
  });

  it("binds with the router dtab and then the local one (later dentries win)", () => {
    const i = interpreter("/svc => /$/inet/127.0.0.1/1; /svc/b => /$/inet/127.0.0.1/2");
    expect(stateText(i.bind(none, readPath("/svc/a")).sample())).toBe(
      "/$/inet/127.0.0.1/1 residual=/a",
    );
    expect(stateText(i.bind(none, readPath("/svc/b")).sample())).toBe("/$/inet/127.0.0.1/2");
    const local = readDtab("/svc/a => /$/inet/127.0.0.1/3; /svc/b => /$/inet/127.0.0.1/4");
    expect(stateText(i.bind(local, readPath("/svc/a")).sample())).toBe("/$/inet/127.0.0.1/3");
    expect(stateText(i.bind(local, readPath("/svc/b")).sample())).toBe("/$/inet/127.0.0.1/4");
  });

  it("applies its transformers in order", () => {
    const port = (p: number) =>
      portTransformer.create(decode(portTransformer, { port: p }), {
        ...noServices,
        log: silentLogger,
        prefix: Path.of("%", "io.l5d.port", String(p)),
        globalNamers: globalLookup(global),
        resolver,
      });
    const i = interpreter("/svc/a => /$/inet/127.0.0.1/1", [port(10), port(20)]);
    const s = i.bind(none, readPath("/svc/a")).sample();
    expect(stateText(s)).toBe("/%/io.l5d.port/20/%/io.l5d.port/10/$/inet/127.0.0.1/1");
    expect(addrText(onlyBound(s).addr.sample())).toBe("127.0.0.1:20*1");
  });

  it("puts a dtab source before the router dtab and follows it while observed", () => {
    const source = new Cell<State<Dtab>>(ok(readDtab("/svc/a => /$/inet/127.0.0.1/1")));
    const i = interpreter("/svc/b => /$/inet/127.0.0.1/2", [], source);
    const a = i.bind(none, readPath("/svc/a"));
    const live = obs.live(a);
    expect(stateText(a.sample())).toBe("/$/inet/127.0.0.1/1");
    source.set(ok(readDtab("/svc/a => /$/inet/127.0.0.1/5")));
    expect(stateText(a.sample())).toBe("/$/inet/127.0.0.1/5");
    expect(live.values.map(stateText)).toEqual(["/$/inet/127.0.0.1/5"]);
    // The router dtab comes after the source, so it wins for the names it matches.
    source.set(ok(readDtab("/svc/b => /$/inet/127.0.0.1/6")));
    expect(stateText(i.bind(none, readPath("/svc/b")).sample())).toBe("/$/inet/127.0.0.1/2");
  });

  it("is pending or failed while its dtab source is", () => {
    const source = new Cell<State<Dtab>>(PENDING);
    const i = interpreter("/svc => /$/inet/127.0.0.1/1", [], source);
    expect(stateText(i.bind(none, readPath("/svc/a")).sample())).toBe("pending");
    source.set(failed("no dtab"));
    expect(stateText(i.bind(none, readPath("/svc/a")).sample())).toBe("failed: no dtab");
    const d = i.delegate(none, readPath("/svc/a")).sample();
    expect("error" in d && d.error.message).toBe("no dtab");
    source.set(PENDING);
    const p = i.delegate(none, readPath("/svc/a")).sample();
    expect("error" in p && p.error.message).toBe("the dtab has not loaded yet");
  });

  it("runs its close hook on close()", () => {
    let closed = 0;
    const i = new DtabInterpreter(
      {
        ...noServices,
        log: silentLogger,
        label: "x",
        routerDtab: none,
        namers: globalLookup(global),
        transformers: [],
      },
      undefined,
      () => closed++,
    );
    i.close();
    expect(closed).toBe(1);
  });

  it("binds through mounted fs namers and reports changes to observers", async () => {
    const dir = workspace();
    const fs = new FsNamer(join(dir, "disco"), readPath("/#/io.l5d.fs"), silentLogger, 20);
    try {
      const i = new DtabInterpreter({
        ...noServices,
        log: silentLogger,
        label: "x",
        routerDtab: readDtab("/svc => /#/io.l5d.fs | /$/inet/127.0.0.1/9000"),
        namers: namerLookup([{ prefix: readPath("/#/io.l5d.fs"), namer: fs }], global),
        transformers: [],
      });
      const a = i.bind(none, readPath("/svc/new"));
      obs.live(a);
      expect(stateText(a.sample())).toBe("/$/inet/127.0.0.1/9000 residual=/new");
      writeFileSync(join(dir, "disco", "new"), "192.0.2.40 80\n");
      await waitForState(a, "/#/io.l5d.fs/new");
    } finally {
      obs.stopAll();
      fs.close();
    }
  });

  it("decodes the `default` kind with no options", () => {
    const cx = new DecodeContext(process.cwd());
    defaultInterpreter.schema.decode({ extra: 1 }, "", cx);
    expect(cx.issues.map((i) => i.path)).toEqual(["extra"]);
  });
});
