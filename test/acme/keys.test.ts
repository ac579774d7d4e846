// The private keys ACME certificates get: ECDSA P-256 by default (the schema's default
// keyType), P-384, RSA 2048 and RSA 4096, as PKCS#8 PEM.

import { createPrivateKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { acmeBlock } from "../../gateway/config/acme-schema.js";
import { DecodeContext } from "../../gateway/config/schema.js";
import { builtinRegistry } from "../../gateway/plugins/builtins.js";
import { KEY_TYPES, newPrivateKey } from "../../tls/acme/keys.js";

describe("newPrivateKey", () => {
  it("makes ECDSA P-256 keys for ec256, the default key type", async () => {
    const decoded = acmeBlock(builtinRegistry()).decode(
      { names: ["a.test"], storage: { kind: "dir", path: "/tmp" } },
      "acme",
      new DecodeContext("/"),
    ) as { keyType: string };
    expect(decoded.keyType).toBe("ec256");
    const pem = await newPrivateKey("ec256");
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(pem);
    expect(key.asymmetricKeyType).toBe("ec");
    expect(key.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });

  it("makes ECDSA P-384 keys for ec384", async () => {
    const key = createPrivateKey(await newPrivateKey("ec384"));
    expect(key.asymmetricKeyType).toBe("ec");
    expect(key.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
  });

  it("makes RSA 2048 and RSA 4096 keys", async () => {
    for (const [type, bits] of [
      ["rsa2048", 2048],
      ["rsa4096", 4096],
    ] as const) {
      const key = createPrivateKey(await newPrivateKey(type));
      expect(key.asymmetricKeyType).toBe("rsa");
      expect(key.asymmetricKeyDetails?.modulusLength).toBe(bits);
    }
  }, 30_000);

  it("covers every key type the config accepts", () => {
    expect([...KEY_TYPES].sort()).toEqual(["ec256", "ec384", "rsa2048", "rsa4096"]);
  });
});
