// Throwaway self-signed certificates for the TLS rows, made with the openssl CLI: ECDSA
// P-256 (the TLS rows) or RSA 4096 (the scaling test's handshakes, where the proxy's
// signature dominates and the client's verification is cheap). Self-signed, each is also
// the CA that clients verifying it trust.

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The name every bench certificate is for. */
export const BENCH_NAME = "bench.local";

export interface BenchCert {
  /** The name the certificate is for (what TLS clients verify and send as SNI). */
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Certificate and key in one file, as HAProxy's `crt` wants. */
  readonly combinedPath: string;
}

export function makeBenchCert(dir: string, key: "ecdsa" | "rsa4096" = "ecdsa"): BenchCert {
  const base = key === "ecdsa" ? "bench" : "bench-rsa4096";
  const keyPath = join(dir, `${base}.key`);
  const certPath = join(dir, `${base}.crt`);
  const combinedPath = join(dir, `${base}.pem`);
  execFileSync(
    "openssl",
    key === "ecdsa"
      ? ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyPath]
      : ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", keyPath],
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
      `/CN=${BENCH_NAME}`,
      "-addext",
      `subjectAltName=DNS:${BENCH_NAME}`,
      "-days",
      "2",
      "-out",
      certPath,
    ],
    { stdio: "ignore" },
  );
  writeFileSync(combinedPath, `${readFileSync(certPath, "utf8")}${readFileSync(keyPath, "utf8")}`);
  return { name: BENCH_NAME, certPath, keyPath, combinedPath };
}
