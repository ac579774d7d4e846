// A throwaway self-signed ECDSA P-256 certificate for the TLS rows, made with the openssl
// CLI. Self-signed, it is also the CA that clients verifying it trust.

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface BenchCert {
  /** The name the certificate is for (what TLS clients verify and send as SNI). */
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Certificate and key in one file, as HAProxy's `crt` wants. */
  readonly combinedPath: string;
}

export function makeBenchCert(dir: string): BenchCert {
  const keyPath = join(dir, "bench.key");
  const certPath = join(dir, "bench.crt");
  const combinedPath = join(dir, "bench.pem");
  execFileSync(
    "openssl",
    ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyPath],
    { stdio: "ignore" },
  );
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-new",
      "-key",
      keyPath,
      "-subj",
      "/CN=bench.local",
      "-addext",
      "subjectAltName=DNS:bench.local",
      "-days",
      "2",
      "-out",
      certPath,
    ],
    { stdio: "ignore" },
  );
  writeFileSync(combinedPath, `${readFileSync(certPath, "utf8")}${readFileSync(keyPath, "utf8")}`);
  return { name: "bench.local", certPath, keyPath, combinedPath };
}
