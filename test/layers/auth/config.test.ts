// `lintel check` on configs with auth layers: a bad htpasswd line, a missing key file, a
// bad URL or a refused algorithm is reported at its YAML path (a server's `layers` or a
// service entry's), with its line; a good config checks clean.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkCommand } from "../../../gateway/cli/check.js";
import { tempDir, testKey, write } from "./support.js";

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

async function check(yaml: string): Promise<string[]> {
  const f = write(tmp.dir, "lintel.yaml", yaml);
  const out: string[] = [];
  await checkCommand([f], (s) => out.push(s));
  return out.slice(1).map((l) => l.trim().replace(`${tmp.dir}/`, ""));
}

describe("lintel check with auth layers", () => {
  it("names the YAML path of each bad auth layer setting", async () => {
    write(tmp.dir, "users", "alice:$apr1$x$y\n");
    const lines = await check(`
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1
  servers:
  - port: 0
    layers:
    - {kind: basicAuth, htpasswd: users}
    - {kind: jwt, keyFiles: [missing.pem], algorithms: [RS256, none]}
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc/api
      layers:
      - {kind: extAuth, url: "ftp://auth.test/check"}
      - {kind: jwt}
`);
    expect(lines).toEqual([
      'routers[0].servers[0].layers[0].htpasswd: users line 1: user "alice" has an Apache MD5 ($apr1$) hash; only bcrypt ($2y$, $2a$, $2b$) is supported (make one with htpasswd -B) (line 8)',
      "routers[0].servers[0].layers[1].algorithms[1]: unsigned tokens (alg none) are never accepted (line 9)",
      "routers[0].service.configs[0].layers[0].url: expected an http:// or https:// URL, got the scheme ftp: (line 15)",
      "routers[0].service.configs[0].layers[1]: give jwksUrl or keyFiles: the keys tokens are verified with (line 16)",
    ]);
  });

  it("names a missing key file at its index", async () => {
    const lines = await check(`
routers:
- protocol: http
  servers:
  - port: 0
    layers:
    - kind: jwt
      keyFiles: [missing.pem]
`);
    expect(lines).toEqual([
      "routers[0].servers[0].layers[0].keyFiles[0]: cannot read missing.pem: ENOENT (line 8)",
    ]);
  });

  it("passes a good config", async () => {
    const key = await testKey("k1");
    write(tmp.dir, "k1.pem", key.pem);
    write(tmp.dir, "users", "alice:$2y$04$kAPGiY1g.CxN5KkVd.7lOuWQ9/y.6De5axr6SGKZ60W/XZw4TvMya\n");
    const f = write(
      tmp.dir,
      "lintel.yaml",
      `
routers:
- protocol: http
  servers:
  - port: 0
    layers:
    - {kind: jwt, keyFiles: [k1.pem], audiences: [api], claimsToHeaders: {sub: x-user}}
    - {kind: basicAuth, htpasswd: users, userHeader: x-user}
    - {kind: extAuth, url: "http://127.0.0.1:9/check", cacheKey: [authorization], cacheTtlMs: 1000}
`,
    );
    const out: string[] = [];
    expect(await checkCommand([f], (s) => out.push(s))).toBe(0);
    expect(out).toEqual([`${f}: ok`]);
  });
});
