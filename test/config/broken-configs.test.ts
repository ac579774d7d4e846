// Golden tests for `lintel check`: each broken config in test/fixtures/broken has the
// exact output expected beside it (<name>.expected, with the checkout shown as <root>).

import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { checkCommand } from "../../gateway/cli/check.js";

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
