// Golden tests for `lintel check`: each broken config in test/fixtures/broken has the
// exact output expected beside it (<name>.expected, with the checkout shown as <root>).

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { checkCommand } from "../../gateway/cli/check.js";
import { loadLintelConfig } from "../../gateway/setup.js";

const root = resolve(import.meta.dirname, "../..");
const dir = "test/fixtures/broken";
const fixtures = readdirSync(join(root, dir)).filter((f) => /\.(ya?ml|json)$/.test(f));

async function check(files: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const code = await checkCommand(files, (s) => lines.push(s));
    return { code, out: `${lines.join("\n")}\n`.split(root).join("<root>") };
  } finally {
    process.chdir(cwd);
  }
}

describe("lintel check on broken configs", () => {
  it("has broken configs to check", () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(10);
  });

  for (const f of fixtures) {
    it(`reports the expected errors for ${f}`, async () => {
      const { code, out } = await check([`${dir}/${f}`]);
      expect(code).toBe(1);
      const expected = readFileSync(join(root, dir, f.replace(/\.[^.]+$/, ".expected")), "utf8");
      expect(out).toBe(expected);
    });
  }
});

describe("lintel check on the shipped configs", () => {
  const configs = readdirSync(join(root, "configs")).filter((f) => /\.ya?ml$/.test(f));

  it("ships configs", () => {
    expect(configs.length).toBeGreaterThan(0);
  });

  for (const f of configs) {
    it(`accepts configs/${f}`, async () => {
      const { code, out } = await check([`configs/${f}`]);
      expect(out).toBe(`configs/${f}: ok\n`);
      expect(code).toBe(0);
    });
  }

  it("applies every setting it accepts: telemeters and router settings check with nothing more to say", async () => {
    const { code, out } = await check(["test/fixtures/applied-settings.yaml"]);
    expect(code).toBe(0);
    expect(out).toBe("test/fixtures/applied-settings.yaml: ok\n");
  });

  it("exits 1 when any of several configs is broken, and reports each", async () => {
    const { code, out } = await check([`configs/${configs[0]}`, `${dir}/bad-port.yaml`]);
    expect(code).toBe(1);
    expect(out).toContain(`configs/${configs[0]}: ok`);
    expect(out).toContain("bad-port.yaml: 2 errors");
  });
});

describe("lintel check on acme blocks that are right", () => {
  /** Checks `yaml` (written to a temp dir with `files`): the output, and the loaded config. */
  async function checkText(yaml: string, files: Record<string, string> = {}) {
    const dir = mkdtempSync(join(tmpdir(), "lintel-check-acme-"));
    try {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
      const file = join(dir, "lintel.yaml");
      writeFileSync(file, yaml);
      const lines: string[] = [];
      const code = await checkCommand([file], (x) => lines.push(x));
      const loaded = await loadLintelConfig(file);
      return { code, out: lines.join("\n").split(dir).join("<dir>"), loaded };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const server = (port: number, acme: string) => `
  - port: ${port}
    tls:
      acme:
        names: [a.example.com]
        storage: {kind: dir, path: /tmp}
${acme
  .trim()
  .split("\n")
  .map((l) => `        ${l}`)
  .join("\n")}`;

  it("resolves the directory names letsencrypt, letsencrypt-staging and zerossl to their URLs", async () => {
    const { code, out, loaded } = await checkText(
      `routers:
- protocol: http
  servers:${server(9443, "directory: letsencrypt")}${server(9444, "directory: letsencrypt-staging")}${server(
    9445,
    "directory: zerossl\nexternalAccountBinding: {kid: kid-1, hmacKeyFile: ./eab.key}",
  )}${server(9446, "email: ops@example.com")}${server(9447, "directory: https://ca.internal/acme/directory")}
`,
      { "eab.key": "c2VjcmV0LWhtYWMta2V5\n" },
    );
    expect(out).toBe("<dir>/lintel.yaml: ok");
    expect(code).toBe(0);
    if (!loaded.ok) throw new Error("the config did not load");
    expect(loaded.config.routers[0]!.servers.map((s) => s.tls?.acme?.directory)).toEqual([
      "https://acme-v02.api.letsencrypt.org/directory",
      "https://acme-staging-v02.api.letsencrypt.org/directory",
      "https://acme.zerossl.com/v2/DV90",
      // The default is Let's Encrypt's production directory.
      "https://acme-v02.api.letsencrypt.org/directory",
      "https://ca.internal/acme/directory",
    ]);
  });

  it("accepts an EAB HMAC key from a set environment variable", async () => {
    process.env.LINTEL_TEST_EAB_HMAC = "c2VjcmV0LWhtYWMta2V5";
    try {
      const { code, out } = await checkText(
        `routers:
- protocol: http
  servers:${server(9443, "directory: zerossl\nexternalAccountBinding: {kid: kid-1, hmacKeyEnv: LINTEL_TEST_EAB_HMAC}")}
`,
      );
      expect(out).toBe("<dir>/lintel.yaml: ok");
      expect(code).toBe(0);
    } finally {
      delete process.env.LINTEL_TEST_EAB_HMAC;
    }
  });

  it("says that a set environment variable or a file holding the EAB HMAC key is empty", async () => {
    process.env.LINTEL_TEST_EAB_HMAC = " ";
    try {
      const { code, out } = await checkText(
        `routers:
- protocol: http
  servers:${server(9443, "directory: zerossl\nexternalAccountBinding: {kid: kid-1, hmacKeyEnv: LINTEL_TEST_EAB_HMAC}")}${server(9444, "directory: zerossl\nexternalAccountBinding: {kid: kid-1, hmacKeyFile: ./eab.key}")}
`,
        { "eab.key": "\n" },
      );
      expect(code).toBe(1);
      expect(out).toBe(
        [
          "<dir>/lintel.yaml: 2 errors",
          "  routers[0].servers[0].tls.acme.externalAccountBinding.hmacKeyEnv: the environment variable LINTEL_TEST_EAB_HMAC is empty (line 10)",
          "  routers[0].servers[1].tls.acme.externalAccountBinding.hmacKeyFile: <dir>/eab.key is empty (line 17)",
        ].join("\n"),
      );
    } finally {
      delete process.env.LINTEL_TEST_EAB_HMAC;
    }
  });
});
