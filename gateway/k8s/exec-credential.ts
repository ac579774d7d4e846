// Exec credential plugins (aws eks get-token, gke-gcloud-auth-plugin, kubelogin, ...): runs
// a kubeconfig's `exec` command the way kubectl does and keeps what it prints until it
// expires or the API server refuses it.

import { spawn } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { basename } from "node:path";
import type { Logger } from "../log.js";
import { type ExecConfig, KubeConfigError } from "./kubeconfig.js";

/** What a plugin printed (its `status`). */
export interface ExecCredential {
  readonly token?: string;
  /** A client certificate (PEM) and its key, for the TLS handshake. */
  readonly clientCertificateData?: string;
  readonly clientKeyData?: string;
  /** Milliseconds since the epoch; undefined when it does not expire. */
  readonly expiresAt?: number;
}

/** How long a plugin may run: long enough for a cloud CLI's cold start, short enough to notice. */
export const EXEC_TIMEOUT_MS = 30_000;
/** More output than any credential; a plugin printing more is broken. */
const OUTPUT_LIMIT = 1 << 20;
/** How much of the plugin's stderr an error quotes (its end, where the reason usually is). */
const STDERR_QUOTED = 2000;

/**
 * Runs the plugin once and returns its credential. Rejects with a KubeConfigError naming
 * the kubeconfig's exec block when the command is missing, fails, times out or prints
 * something that is not an ExecCredential (its stdout is never quoted: it holds secrets).
 */
export function runExecPlugin(
  config: ExecConfig,
  env: NodeJS.ProcessEnv,
  timeoutMs = EXEC_TIMEOUT_MS,
): Promise<ExecCredential> {
  const request = {
    apiVersion: config.apiVersion,
    kind: "ExecCredential",
    spec: { interactive: false, ...(config.cluster ? { cluster: config.cluster } : {}) },
  };
  const childEnv: NodeJS.ProcessEnv = { ...env, KUBERNETES_EXEC_INFO: JSON.stringify(request) };
  for (const { name, value } of config.env) childEnv[name] = value;
  const command = `\`${config.command}\``;
  const fail = (what: string) => new KubeConfigError(`${config.where}: ${what}`);

  return new Promise((resolve, reject) => {
    // stdin is closed: a plugin that prompts gets EOF instead of waiting for the timeout.
    const child = spawn(config.command, config.args, {
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = "";
    let done = false;
    const finish = (err: Error | undefined, credential?: ExecCredential) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(credential!);
    };
    const stderrTail = () => {
      const text = stderr.trim();
      return text === "" ? "" : `; stderr: ${text}`;
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(fail(`${command} did not finish in ${timeoutMs / 1000} s${stderrTail()}`));
    }, timeoutMs);

    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > OUTPUT_LIMIT) {
        child.kill("SIGKILL");
        finish(fail(`${command} printed more than ${OUTPUT_LIMIT} bytes`));
      } else stdout.push(chunk);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_QUOTED);
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT")
        finish(
          fail(
            `command not found: ${config.command}${config.installHint ? ` (${config.installHint.trim()})` : ""}`,
          ),
        );
      else if (e.code === "EACCES") finish(fail(`${command} is not executable`));
      else finish(fail(`cannot run ${command}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      if (code !== 0) {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        finish(fail(`${command} ${how}${stderrTail()}`));
        return;
      }
      try {
        finish(undefined, parseExecCredential(Buffer.concat(stdout).toString("utf8"), config));
      } catch (e) {
        finish(e as Error);
      }
    });
  });
}

/** The credential in a plugin's output; throws KubeConfigError saying what is wrong with it. */
function parseExecCredential(output: string, config: ExecConfig): ExecCredential {
  function fail(what: string): never {
    throw new KubeConfigError(`${config.where}: \`${config.command}\` ${what}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch {
    fail("did not print JSON (expected an ExecCredential)");
  }
  if (!isRecord(parsed) || parsed.kind !== "ExecCredential")
    fail("printed JSON that is not an ExecCredential");
  if (parsed.apiVersion !== config.apiVersion)
    fail(
      `answered in ${JSON.stringify(parsed.apiVersion)}, but the kubeconfig asks for ${config.apiVersion}`,
    );
  const { status } = parsed;
  if (!isRecord(status)) fail("printed an ExecCredential without a status");
  const { token, clientCertificateData: cert, clientKeyData: key, expirationTimestamp } = status;
  if (token !== undefined && (typeof token !== "string" || token === ""))
    fail("printed an empty or non-string status.token");
  if (cert === undefined && key === undefined) {
    if (token === undefined) fail("printed neither status.token nor status.clientCertificateData");
  } else {
    if (typeof cert !== "string" || !isPemCertificate(cert))
      fail("printed a status.clientCertificateData that is not a PEM certificate");
    if (typeof key !== "string" || !isPemPrivateKey(key))
      fail("printed a status.clientKeyData that is not a PEM private key");
  }
  let expiresAt: number | undefined;
  if (expirationTimestamp !== undefined) {
    expiresAt = typeof expirationTimestamp === "string" ? Date.parse(expirationTimestamp) : NaN;
    if (Number.isNaN(expiresAt))
      fail("printed a status.expirationTimestamp that is not an RFC 3339 time");
  }
  return {
    ...(token !== undefined ? { token } : {}),
    ...(cert !== undefined ? { clientCertificateData: cert, clientKeyData: key as string } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function isPemCertificate(text: string): boolean {
  try {
    new X509Certificate(text);
    return true;
  } catch {
    return false;
  }
}

function isPemPrivateKey(text: string): boolean {
  try {
    createPrivateKey(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * One plugin's credential, shared by every request of a connection: the plugin runs on the
 * first request, again shortly before the credential expires, and after the server
 * refuses it (401). Concurrent requests wait for the same run.
 */
export class ExecCredentialSource {
  /** "exec: aws", for ApiConnection.auth. */
  readonly description: string;
  private cached: { credential: ExecCredential; refreshAt: number } | undefined;
  private running: Promise<ExecCredential> | undefined;

  constructor(
    private readonly config: ExecConfig,
    private readonly opts: {
      readonly env: NodeJS.ProcessEnv;
      readonly now: () => number;
      readonly log: Logger;
      readonly timeoutMs?: number;
    },
  ) {
    this.description = `exec: ${basename(config.command)}`;
  }

  /** The current credential, running the plugin when there is none or it is about to expire. */
  get(): Promise<ExecCredential> {
    if (this.cached && this.opts.now() < this.cached.refreshAt)
      return Promise.resolve(this.cached.credential);
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The server refused `credential` (401): the next get runs the plugin again, unless it already has. */
  refused(credential: ExecCredential): void {
    if (this.cached?.credential === credential) this.cached = undefined;
  }

  private async run(): Promise<ExecCredential> {
    const startedAt = this.opts.now();
    const credential = await runExecPlugin(this.config, this.opts.env, this.opts.timeoutMs);
    const { expiresAt } = credential;
    // Refresh a little before expiry (30 s, or half the lifetime of a short-lived one) so a
    // request is not sent with a credential that expires on the way.
    const refreshAt =
      expiresAt === undefined
        ? Number.POSITIVE_INFINITY
        : expiresAt - Math.min(30_000, Math.max(0, expiresAt - startedAt) / 2);
    this.cached = { credential, refreshAt };
    this.opts.log.info("exec credential plugin ran", {
      command: this.config.command,
      expires: expiresAt === undefined ? "never" : new Date(expiresAt).toISOString(),
    });
    return credential;
  }
}
