// What the protection row's authentication targets need: an ES256 key whose public half
// a jwt layer reads from a file, a token it accepts (sent in its own field, so that the
// same requests carry Basic credentials too), and an htpasswd file with one bcrypt user.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";

export interface AuthFixtures {
  /** The public key file (PEM) and the htpasswd file, in `dir`. */
  readonly keyFile: string;
  readonly htpasswd: string;
  /** The request fields every target of the row gets: the token and the Basic credentials. */
  readonly headers: Record<string, string>;
}

export const JWT_FIELD = "x-bench-token";

export async function makeAuthFixtures(dir: string): Promise<AuthFixtures> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const keyFile = join(dir, "jwt-public.pem");
  writeFileSync(keyFile, await exportSPKI(publicKey));
  const token = await new SignJWT({ sub: "bench" })
    .setProtectedHeader({ alg: "ES256" })
    .setIssuer("bench")
    .setAudience("lintel")
    .setExpirationTime("2h")
    .sign(privateKey);
  const htpasswd = join(dir, "users.htpasswd");
  writeFileSync(htpasswd, `bench:${bcrypt.hashSync("bench-password", 10)}\n`);
  return {
    keyFile,
    htpasswd,
    headers: {
      [JWT_FIELD]: token,
      authorization: `Basic ${Buffer.from("bench:bench-password").toString("base64")}`,
    },
  };
}
