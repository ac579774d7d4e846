// Private keys for ACME certificates and accounts, made with Node's crypto: ECDSA P-256
// (the default, as Caddy and Let's Encrypt's clients use) or P-384, RSA 2048 or 4096.

import { generateKeyPair, type KeyObject } from "node:crypto";

export type KeyType = "ec256" | "ec384" | "rsa2048" | "rsa4096";

export const KEY_TYPES: readonly KeyType[] = ["ec256", "ec384", "rsa2048", "rsa4096"];

/** A new private key as PKCS#8 PEM (off the event loop: RSA 4096 takes a while). */
export function newPrivateKey(type: KeyType): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (e: Error | null, _pub: KeyObject, priv: KeyObject) => {
      if (e) reject(e);
      else resolve(priv.export({ type: "pkcs8", format: "pem" }) as string);
    };
    if (type === "ec256" || type === "ec384") {
      generateKeyPair("ec", { namedCurve: type === "ec256" ? "P-256" : "P-384" }, done);
    } else {
      generateKeyPair("rsa", { modulusLength: type === "rsa2048" ? 2048 : 4096 }, done);
    }
  });
}
