// Loading configs: defaults, environment substitution, JSON, line numbers, and user
// plugin modules loaded from the config's `plugins:` list.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatConfigError } from "../../gateway/config/load.js";
import { substituteEnv } from "../../gateway/config/source.js";
import { didYouMean } from "../../gateway/config/suggest.js";
import { Path } from "../../gateway/naming/index.js";
import { loadLintelConfig } from "../../gateway/setup.js";
import { noServices } from "../support/plugin-services.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "lintel-config-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe("defaults", () => {
  it("fills in Linkerd 1 defaults for a minimal router", async () => {
    const r = await loadLintelConfig(write("c.yaml", "routers:\n- protocol: http\n"));
    if (!r.ok) throw new Error(r.errors.map(formatConfigError).join("\n"));
    const router = r.config.routers[0]!;
    expect(router.label).toBeUndefined();
    expect(router.dstPrefix.show).toBe("/svc");
    expect(router.dtab.dtab.size).toBe(0);
    expect(router.identifier.map((i) => i.kind)).toEqual(["io.l5d.header.token"]);
    expect(router.identifier[0]!.config).toEqual({ header: "Host" });
    expect(router.interpreter.kind).toBe("default");
    expect(router.bindingTimeoutMs).toBe(10_000);
    expect(router.bindingCache).toEqual({
      paths: 1000,
      trees: 1000,
      bounds: 1000,
      clients: 1000,
      idleTtlSecs: 600,
    });
    expect(router.servers).toEqual([
      {
        port: 4140,
        ip: "127.0.0.1",
        engine: "net",
        http2: true,
        clearContext: false,
        maxCallDepth: 1000,
        trustedProxies: [],
        proxyProtocolFrom: [],
        tunnelIdleTimeoutMs: 3_600_000,
      },
    ]);
    expect(router.client.kind).toBe("io.l5d.global");
    expect(router.maxHeadersKB).toBe(8);
    expect(router.maxInitialLineKB).toBe(4);
    expect(r.config.admin).toEqual({
      ip: "127.0.0.1",
      port: 9990,
      shutdownGraceMs: 10_000,
      drainDelayMs: 0,
    });
  });

  it("mounts namers at /<kind> unless a prefix is given", async () => {
    mkdirSync(join(dir, "disco"));
    const r = await loadLintelConfig(
      write(
        "c.yaml",
        "namers:\n- kind: io.l5d.fs\n  rootDir: disco\n- kind: io.l5d.fs\n  prefix: /other\n  rootDir: disco\nrouters:\n- protocol: http\n",
      ),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.namers.map((n) => n.prefix?.show)).toEqual(["/io.l5d.fs", "/other"]);
    expect(r.config.namers[0]!.config).toMatchObject({ rootDir: join(dir, "disco") });
  });

  it("reads a single identifier or a list of them", async () => {
    const r = await loadLintelConfig(
      write(
        "c.yaml",
        "routers:\n- protocol: http\n  identifier:\n  - kind: io.l5d.path\n    segments: 2\n  - kind: io.l5d.header.token\n",
      ),
    );
    expect(r.ok && r.config.routers[0]!.identifier.map((i) => [i.kind, i.config])).toEqual([
      ["io.l5d.path", { segments: 2, consume: false }],
      ["io.l5d.header.token", { header: "Host" }],
    ]);
  });

  it("reads the telemeters with their defaults; a telemeter's own prefix is not a namer's", async () => {
    const r = await loadLintelConfig(
      write(
        "c.yaml",
        "telemetry:\n- kind: io.l5d.prometheus\n- {kind: io.l5d.prometheus, path: /metrics, prefix: l5d_}\n- {kind: io.l5d.recentRequests, sampleRate: 0.1}\nrouters:\n- protocol: http\n",
      ),
    );
    expect(r.ok && r.config.telemetry.map((t) => [t.kind, t.config, t.prefix])).toEqual([
      ["io.l5d.prometheus", { path: "/admin/metrics/prometheus", prefix: "" }, undefined],
      ["io.l5d.prometheus", { path: "/metrics", prefix: "l5d_" }, undefined],
      ["io.l5d.recentRequests", { sampleRate: 0.1, capacity: 10 }, undefined],
    ]);
  });

  it("reads JSON configs the same as YAML", async () => {
    const yaml = await loadLintelConfig(
      write("c.yaml", "routers:\n- protocol: http\n  dtab: /svc => /$/inet/127.1/80\n"),
    );
    const json = await loadLintelConfig(
      write("c.json", '{"routers":[{"protocol":"http","dtab":"/svc => /$/inet/127.1/80"}]}'),
    );
    expect(yaml.ok && json.ok).toBe(true);
    if (yaml.ok && json.ok) {
      expect(json.config.routers[0]!.dtab.dtab.show).toBe(yaml.config.routers[0]!.dtab.dtab.show);
    }
  });
});

describe("environment substitution", () => {
  it("replaces ${VAR}, uses ${VAR:-default}, and keeps $${VAR} literal", () => {
    const { text, issues } = substituteEnv("a: ${A}\nb: ${B:-7}\nc: $${A}\n", { A: "x" });
    expect(text).toBe("a: x\nb: 7\nc: ${A}\n");
    expect(issues).toEqual([]);
  });

  it("takes the default for an empty variable too, as the shell does", () => {
    expect(substituteEnv("a: ${A:-d}\n", { A: "" }).text).toBe("a: d\n");
    expect(substituteEnv("a: ${A}\n", { A: "" }).text).toBe("a: \n");
  });

  it("reports an unset variable with its line, but not inside a comment line", () => {
    const { issues } = substituteEnv("a: 1\n# ${NOPE}\nb: ${NOPE}\n", {});
    expect(issues).toHaveLength(1);
    expect(issues[0]!.line).toBe(3);
    expect(issues[0]!.message).toContain("NOPE is not set");
  });

  it("substitutes numbers that the schema then reads as numbers", async () => {
    const r = await loadLintelConfig(
      write("c.yaml", "routers:\n- protocol: http\n  servers:\n  - port: ${P}\n"),
      {
        env: { P: "4242" },
      },
    );
    expect(r.ok && r.config.routers[0]!.servers[0]!.port).toBe(4242);
  });
});

describe("error positions", () => {
  it("points a dtab error at the line inside a block dtab", async () => {
    const r = await loadLintelConfig(
      write(
        "c.yaml",
        "routers:\n- protocol: http\n  dtab: |\n    /a => /b;\n    /c => /d;\n    /e => ;\n",
      ),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.path).toBe("routers[0].dtab");
    expect(r.errors[0]!.line).toBe(6);
    expect(formatConfigError(r.errors[0]!)).toContain("/e => ;\n");
  });

  it("points a missing key at its enclosing block", async () => {
    const r = await loadLintelConfig(
      write("c.yaml", "routers:\n- protocol: http\n  identifier:\n    segments: 1\n"),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => [e.path, e.line])).toEqual([["routers[0].identifier.kind", 4]]);
  });

  it("says so when the file does not exist", async () => {
    const r = await loadLintelConfig(join(dir, "nope.yaml"));
    expect(!r.ok && r.errors[0]!.message).toMatch(/cannot read .*nope\.yaml: no such file/);
  });

  it("rejects a config that is not a mapping", async () => {
    const r = await loadLintelConfig(write("c.yaml", "- just\n- a list\n"));
    expect(!r.ok && formatConfigError(r.errors[0]!)).toMatch(
      /^expected a lintel \(Linkerd 1\) config mapping, got a list/,
    );
  });
});

describe("did you mean", () => {
  it("suggests the closest key within a small distance, and nothing for far-off words", () => {
    expect(didYouMean("lable", ["label", "servers"])).toBe(' (did you mean "label"?)');
    expect(didYouMean("io.l5d.Path", ["io.l5d.path"])).toBe(' (did you mean "io.l5d.path"?)');
    expect(didYouMean("zzzzzz", ["label", "servers"])).toBe("");
  });
});

describe("tls.certs entries", () => {
  it("reads an entry without kind as the kind its field names, and the generic form alike", async () => {
    const yaml = `routers:
- protocol: http
  servers:
  - tls:
      certs:
      - {certPath: a.crt, keyPath: a.key}
      - {kind: files, certPath: a.crt, keyPath: a.key}
      - {dir: live}
      - {secret: shop/site-tls}
      - {ingressSecrets: {namespace: shop}}
      - {kind: ingressSecrets}
`;
    const r = await loadLintelConfig(
      write("c.yaml", yaml),
      { checks: [] }, // the files are not there: only the decoding is looked at
    );
    if (!r.ok) throw new Error(r.errors.map(formatConfigError).join("\n"));
    const entries = r.config.routers[0]!.servers[0]!.tls!.certs;
    expect(entries.map((c) => c.kind)).toEqual([
      "files",
      "files",
      "dir",
      "secret",
      "ingressSecrets",
      "ingressSecrets",
    ]);
    expect(entries[0]!.config).toEqual(entries[1]!.config);
    expect(entries[0]!.config).toMatchObject({ certPath: join(dir, "a.crt") });
    expect(entries[3]!.config).toEqual({ secret: "shop/site-tls" });
    expect(entries[4]!.config).toEqual({ ingressSecrets: { namespace: "shop" } });
    expect(entries[5]!.config).toEqual({ ingressSecrets: {} });
  });
});

describe("user plugins", () => {
  const identifierModule = `
export default (lintel) => lintel.definePlugin({
  category: "identifier",
  kind: "com.example.tenant",
  schema: lintel.schema.object({ header: lintel.schema.def(lintel.schema.nonEmptyString(), "x-tenant") }),
  create(config, ctx) {
    return {
      identify(req) {
        const v = req.header(config.header);
        return v ? lintel.identified(ctx.dstPrefix.concat(lintel.naming.Path.of("tenant", v)))
                 : lintel.unidentified(config.header + " header is absent");
      },
    };
  },
});
`;

  it("loads a plugin module and uses its kind and schema", async () => {
    write("tenant.mjs", identifierModule);
    const r = await loadLintelConfig(
      write(
        "c.yaml",
        "plugins: [tenant.mjs]\nrouters:\n- protocol: http\n  identifier:\n    kind: com.example.tenant\n    header: x-org\n",
      ),
    );
    if (!r.ok) throw new Error(r.errors.map(formatConfigError).join("\n"));
    const pc = r.config.routers[0]!.identifier[0]!;
    expect(pc.config).toEqual({ header: "x-org" });
    const id = pc.plugin.create(pc.config, {
      ...noServices,
      log: (await import("../../gateway/log.js")).silentLogger,
      dstPrefix: Path.of("svc"),
    });
    const result = id.identify({
      method: "GET",
      url: "/",
      httpVersion: "1.1",
      header: (n) => (n === "x-org" ? "acme" : undefined),
    });
    expect(result.ok && result.dst.show).toBe("/svc/tenant/acme");
  });

  it("validates the plugin's own fields like built-in ones", async () => {
    write("tenant.mjs", identifierModule);
    const r = await loadLintelConfig(
      write(
        "c.yaml",
        "plugins: [tenant.mjs]\nrouters:\n- protocol: http\n  identifier:\n    kind: com.example.tenant\n    hedaer: x\n",
      ),
    );
    expect(!r.ok && r.errors.map(formatConfigError)).toEqual([
      'routers[0].identifier.hedaer: unknown key (did you mean "header"?) (line 6)',
    ]);
  });

  it("reports a plugin module that cannot be loaded or is not a plugin", async () => {
    write("bad.mjs", "export default { kind: 'x' };\n");
    const r = await loadLintelConfig(
      write("c.yaml", "plugins: [missing.mjs, bad.mjs]\nrouters:\n- protocol: http\n"),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.path)).toEqual(["plugins[0]", "plugins[1]"]);
    expect(r.errors[0]!.message).toContain("cannot load plugin missing.mjs");
    expect(r.errors[1]!.message).toMatch(/category must be one of .*create must be a function/);
  });

  it("refuses a plugin that registers a kind lintel already has", async () => {
    write(
      "dup.mjs",
      "export default (l) => ({ category: 'namer', kind: 'io.l5d.fs', schema: l.schema.object({}), create: () => ({}) });\n",
    );
    const r = await loadLintelConfig(
      write("c.yaml", "plugins: [dup.mjs]\nrouters:\n- protocol: http\n"),
    );
    expect(!r.ok && r.errors[0]!.message).toContain(
      'a namer of kind "io.l5d.fs" is already registered',
    );
  });
});
