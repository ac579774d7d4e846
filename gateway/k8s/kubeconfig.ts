// Reading a kubeconfig file the way kubectl does, for one context: the server, how to
// trust it and how to authenticate. Every problem is a KubeConfigError naming the file
// and the key at fault (`~/.kube/config: users[0].user.client-key: no such file /x/y`).

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, resolve, sep } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { parsePemCertificates } from "../../tls/certificate.js";
import { CertificateError } from "../../tls/errors.js";

/** A kubeconfig (or in-cluster setup) that lintel cannot use; the message says why and where. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeConfigError";
  }
}

/** The exec credential plugin API versions lintel speaks (v1alpha1 was removed in Kubernetes 1.24). */
export const EXEC_API_VERSIONS = [
  "client.authentication.k8s.io/v1",
  "client.authentication.k8s.io/v1beta1",
] as const;

/** A user's `exec` block: the command that prints an ExecCredential. */
export interface ExecConfig {
  readonly apiVersion: (typeof EXEC_API_VERSIONS)[number];
  /** As written, or resolved against the kubeconfig's folder when it is a relative path. */
  readonly command: string;
  readonly args: readonly string[];
  /** Added to lintel's environment for the command. */
  readonly env: readonly { readonly name: string; readonly value: string }[];
  /** What the kubeconfig says to do when the command is missing. */
  readonly installHint?: string;
  /** `spec.cluster` of the request when the kubeconfig sets provideClusterInfo. */
  readonly cluster?: Readonly<Record<string, unknown>>;
  /** Where errors point: `<file>: users[0].user.exec`. */
  readonly where: string;
}

export interface KubeconfigUser {
  /** A TLS client certificate and its key (PEM). */
  readonly clientCertificate?: { readonly cert: string; readonly key: string };
  readonly token?: string;
  /** A token file, read again when it changes (it wins over `token`, as in client-go). */
  readonly tokenFile?: { readonly path: string; readonly where: string };
  readonly basic?: { readonly username: string; readonly password: string };
  readonly exec?: ExecConfig;
}

/** What one context of a kubeconfig says: where the API is, how to trust it, who lintel is. */
export interface Kubeconfig {
  readonly contextName: string;
  /** The server's URL; its path, if any, prefixes every request (e.g. behind Rancher). */
  readonly server: URL;
  /** The context's namespace: where namespaced lookups default to. */
  readonly defaultNamespace: string | undefined;
  /** CA certificates (PEM) to trust instead of the system's roots. */
  readonly ca: string | undefined;
  readonly insecureSkipTlsVerify: boolean;
  /** The name to check the server's certificate against, when not the URL's host. */
  readonly tlsServerName: string | undefined;
  readonly user: KubeconfigUser;
}

type Mapping = Record<string, unknown>;

const isMapping = (v: unknown): v is Mapping =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** `~/x` → the home folder's x; other paths unchanged. */
export function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? homedir() + path.slice(1) : path;
}

/** Why a file could not be read, naming it (no content). */
export function fileProblem(path: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return `no such file ${path}`;
  if (code === "EACCES" || code === "EPERM") return `no permission to read ${path}`;
  if (code === "EISDIR") return `${path} is a folder, not a file`;
  return `cannot read ${path} (${code ?? (e as Error).message})`;
}

/** The certificates in PEM `text`, checked; `where` names where they came from. */
export function checkCertificatePem(text: string, where: string): string {
  try {
    return parsePemCertificates(where, text).pems.join("\n");
  } catch (e) {
    if (e instanceof CertificateError) throw new KubeConfigError(`${where}: ${e.reason}`);
    throw e;
  }
}

function checkPrivateKeyPem(text: string, where: string): string {
  try {
    createPrivateKey(text);
  } catch {
    // Not Node's reason: it can quote the key.
    throw new KubeConfigError(
      `${where}: not a PEM private key (an encrypted key is not supported)`,
    );
  }
  return text;
}

/** A cluster entry as read, with its extensions for exec plugins that ask for them. */
type ClusterSettings = Pick<
  Kubeconfig,
  "server" | "ca" | "insecureSkipTlsVerify" | "tlsServerName"
> & { readonly extensions: unknown };

/** `spec.cluster` of an ExecCredential request (provideClusterInfo), as client-go sends it. */
function execClusterInfo(c: ClusterSettings): Record<string, unknown> {
  const ext = Array.isArray(c.extensions)
    ? c.extensions.find((e) => isMapping(e) && e.name === "client.authentication.k8s.io/exec")
    : undefined;
  return {
    server: c.server.href.replace(/\/$/, ""),
    ...(c.tlsServerName ? { "tls-server-name": c.tlsServerName } : {}),
    ...(c.insecureSkipTlsVerify ? { "insecure-skip-tls-verify": true } : {}),
    ...(c.ca ? { "certificate-authority-data": Buffer.from(c.ca).toString("base64") } : {}),
    ...(isMapping(ext) && ext.extension !== undefined ? { config: ext.extension } : {}),
  };
}

/**
 * Reads `path` (as configured: `~/` is the home folder) and returns what `context` says,
 * or the file's current-context when `context` is undefined.
 */
export function loadKubeconfig(path: string, context?: string): Kubeconfig {
  const file = resolve(expandHome(path));
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new KubeConfigError(`kubeconfig ${path}: ${fileProblem(file, e)}`);
  }
  return parseKubeconfig(text, { path, folder: dirname(file) }, context);
}

/** Parses kubeconfig text; `source.path` names it in errors, relative paths resolve against `source.folder`. */
export function parseKubeconfig(
  text: string,
  source: { readonly path: string; readonly folder: string },
  context?: string,
): Kubeconfig {
  return new KubeconfigReader(text, source).read(context);
}

class KubeconfigReader {
  private readonly root: Mapping;

  constructor(
    text: string,
    private readonly source: { readonly path: string; readonly folder: string },
  ) {
    const lineCounter = new LineCounter();
    // A kubeconfig holds secrets, so no quoting: no pretty errors (they show the lines),
    // and no text after the reason (some reasons end with the offending source).
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const { line, col } = lineCounter.linePos(err.pos[0]);
      const reason = err.message.split(": ")[0];
      this.fail("", `not valid YAML: ${reason} at line ${line}, column ${col}`);
    }
    const root: unknown = doc.toJS();
    if (!isMapping(root))
      this.fail("", "not a kubeconfig (expected a mapping with clusters, contexts and users)");
    this.root = root;
  }

  read(contextName: string | undefined): Kubeconfig {
    const current = this.optionalString(this.root, "current-context", "current-context");
    const name = contextName ?? (current === "" ? undefined : current);
    if (name === undefined)
      this.fail(
        "",
        "no current-context: name a context in lintel's kubernetes.context, or set one with `kubectl config use-context`",
      );
    const ctx = this.named("contexts", "context", name);
    const clusterName = this.optionalString(ctx.body, "cluster", `${ctx.at}.cluster`);
    if (clusterName === undefined || clusterName === "") this.fail(`${ctx.at}.cluster`, "missing");
    const cluster = this.cluster(
      this.named("clusters", "cluster", clusterName, `${ctx.at}.cluster`),
    );
    const userName = this.optionalString(ctx.body, "user", `${ctx.at}.user`);
    const user =
      userName === undefined || userName === ""
        ? {}
        : this.user(this.named("users", "user", userName, `${ctx.at}.user`), cluster);
    const namespace = this.optionalString(ctx.body, "namespace", `${ctx.at}.namespace`);
    const { extensions: _, ...settings } = cluster;
    return {
      contextName: name,
      defaultNamespace: namespace === "" ? undefined : namespace,
      ...settings,
      user,
    };
  }

  private cluster(c: { body: Mapping; at: string }): ClusterSettings {
    const { body, at } = c;
    if (body["proxy-url"] !== undefined)
      this.fail(`${at}.proxy-url`, "not supported: lintel connects to the API server directly");
    const serverText = this.optionalString(body, "server", `${at}.server`);
    if (serverText === undefined || serverText === "") this.fail(`${at}.server`, "missing");
    let server: URL;
    try {
      server = new URL(serverText);
    } catch {
      this.fail(
        `${at}.server`,
        `${JSON.stringify(serverText)} is not a URL (expected https://host:port)`,
      );
    }
    if (server.protocol !== "https:" && server.protocol !== "http:")
      this.fail(`${at}.server`, `${server.protocol} is not http: or https:`);
    const ca = this.pemSource(body, "certificate-authority", at, checkCertificatePem);
    const insecure = body["insecure-skip-tls-verify"] ?? false;
    if (typeof insecure !== "boolean")
      this.fail(`${at}.insecure-skip-tls-verify`, "expected true or false");
    if (insecure && ca !== undefined)
      this.fail(
        `${at}.insecure-skip-tls-verify`,
        "set together with a certificate-authority: keep one (kubectl refuses both too)",
      );
    const tlsServerName = this.optionalString(body, "tls-server-name", `${at}.tls-server-name`);
    return {
      server,
      ca,
      insecureSkipTlsVerify: insecure,
      tlsServerName: tlsServerName === "" ? undefined : tlsServerName,
      extensions: body.extensions,
    };
  }

  private user(u: { body: Mapping; at: string }, cluster: ClusterSettings): KubeconfigUser {
    const { body, at } = u;
    if (body["auth-provider"] !== undefined)
      this.fail(
        `${at}.auth-provider`,
        "legacy auth providers are not supported; use an exec credential plugin (e.g. gke-gcloud-auth-plugin, kubelogin)",
      );
    for (const key of ["as", "as-uid", "as-groups", "as-user-extra"])
      if (body[key] !== undefined) this.fail(`${at}.${key}`, "impersonation is not supported");

    const certPem = this.pemSource(body, "client-certificate", at, checkCertificatePem);
    const keyPem = this.pemSource(body, "client-key", at, checkPrivateKeyPem);
    if ((certPem === undefined) !== (keyPem === undefined))
      this.fail(
        `${at}.${certPem === undefined ? "client-certificate" : "client-key"}`,
        `missing: ${certPem === undefined ? "client-key" : "client-certificate"} needs it`,
      );
    if (certPem !== undefined && keyPem !== undefined) {
      const leaf = new X509Certificate(certPem);
      if (!leaf.checkPrivateKey(createPrivateKey(keyPem)))
        this.fail(`${at}.client-key`, "does not match the client certificate");
    }

    const token = this.optionalString(body, "token", `${at}.token`) || undefined;
    const tokenFile = this.optionalString(body, "tokenFile", `${at}.tokenFile`) || undefined;
    const username = this.optionalString(body, "username", `${at}.username`) || undefined;
    const password = this.optionalString(body, "password", `${at}.password`) || undefined;
    if ((username === undefined) !== (password === undefined))
      this.fail(
        `${at}.${username === undefined ? "username" : "password"}`,
        "missing: basic auth needs both a username and a password",
      );
    const bearer = token !== undefined || tokenFile !== undefined;
    if (bearer && username !== undefined)
      this.fail(
        at,
        "has both a token and a username/password: keep one (kubectl refuses both too)",
      );
    const exec = body.exec === undefined ? undefined : this.exec(body.exec, `${at}.exec`, cluster);
    if (exec && (bearer || username !== undefined || certPem !== undefined))
      this.fail(
        `${at}.exec`,
        "set together with a token, password or client certificate: keep one",
      );

    return {
      ...(certPem !== undefined && keyPem !== undefined
        ? { clientCertificate: { cert: certPem, key: keyPem } }
        : {}),
      ...(tokenFile !== undefined
        ? { tokenFile: { path: this.resolvePath(tokenFile), where: this.where(`${at}.tokenFile`) } }
        : token !== undefined
          ? { token }
          : {}),
      ...(username !== undefined && password !== undefined
        ? { basic: { username, password } }
        : {}),
      ...(exec ? { exec } : {}),
    };
  }

  private exec(e: unknown, at: string, cluster: ClusterSettings): ExecConfig {
    if (!isMapping(e)) this.fail(at, "expected a mapping with apiVersion and command");
    const apiVersion = this.optionalString(e, "apiVersion", `${at}.apiVersion`);
    if (apiVersion === undefined)
      this.fail(`${at}.apiVersion`, `missing (use ${EXEC_API_VERSIONS[0]})`);
    if (!(EXEC_API_VERSIONS as readonly string[]).includes(apiVersion))
      this.fail(
        `${at}.apiVersion`,
        `${JSON.stringify(apiVersion)} is not supported (use ${EXEC_API_VERSIONS.join(" or ")})`,
      );
    const command = this.optionalString(e, "command", `${at}.command`);
    if (command === undefined || command === "") this.fail(`${at}.command`, "missing");
    const args = e.args ?? [];
    if (!Array.isArray(args) || !args.every((a) => typeof a === "string"))
      this.fail(`${at}.args`, "expected a list of strings");
    const envList = e.env ?? [];
    if (!Array.isArray(envList)) this.fail(`${at}.env`, "expected a list of {name, value}");
    const env = envList.map((v: unknown, i) => {
      if (
        !isMapping(v) ||
        typeof v.name !== "string" ||
        v.name === "" ||
        typeof v.value !== "string"
      )
        this.fail(`${at}.env[${i}]`, "expected {name, value} strings");
      return { name: v.name, value: v.value };
    });
    if (e.interactiveMode === "Always")
      this.fail(`${at}.interactiveMode`, "Always needs a terminal; lintel runs without one");
    const installHint = this.optionalString(e, "installHint", `${at}.installHint`);
    return {
      apiVersion: apiVersion as ExecConfig["apiVersion"],
      // A command with a folder in it is a path relative to the kubeconfig; a bare name is looked up in PATH.
      command: command.includes(sep) ? this.resolvePath(command) : command,
      args,
      env,
      ...(installHint ? { installHint } : {}),
      ...(e.provideClusterInfo === true ? { cluster: execClusterInfo(cluster) } : {}),
      where: this.where(at),
    };
  }

  /**
   * A PEM value given as a file (`key`) or inline base64 (`key-data`), checked by `check`
   * (which throws naming `where`); undefined when neither is set.
   */
  private pemSource(
    body: Mapping,
    key: string,
    at: string,
    check: (pem: string, where: string) => string,
  ): string | undefined {
    const path = this.optionalString(body, key, `${at}.${key}`) || undefined;
    const data = this.optionalString(body, `${key}-data`, `${at}.${key}-data`) || undefined;
    if (path !== undefined && data !== undefined)
      this.fail(at, `has both ${key} and ${key}-data: keep one`);
    if (data !== undefined) {
      const pem = Buffer.from(data, "base64").toString("utf8");
      if (!pem.includes("-----BEGIN "))
        this.fail(`${at}.${key}-data`, "not base64 of PEM (expected -----BEGIN ... once decoded)");
      return check(pem, this.where(`${at}.${key}-data`));
    }
    if (path === undefined) return undefined;
    const file = this.resolvePath(path);
    let pem: string;
    try {
      pem = readFileSync(file, "utf8");
    } catch (e) {
      this.fail(`${at}.${key}`, fileProblem(file, e));
    }
    return check(pem, `${this.where(`${at}.${key}`)}: ${file}`);
  }

  /** The entry of `list` (clusters, contexts, users) called `name`, and its key path. */
  private named(
    list: "clusters" | "contexts" | "users",
    bodyKey: string,
    name: string,
    referredFrom?: string,
  ): { body: Mapping; at: string } {
    const entries = this.root[list] ?? [];
    if (!Array.isArray(entries)) this.fail(list, "expected a list");
    const i = entries.findIndex((e) => isMapping(e) && e.name === name);
    if (i < 0) {
      const names = entries.flatMap((e) =>
        isMapping(e) && typeof e.name === "string" ? [e.name] : [],
      );
      const known = names.length === 0 ? `it has no ${list}` : `it has: ${names.join(", ")}`;
      const what = `no ${bodyKey} named ${JSON.stringify(name)} (${known})`;
      this.fail(referredFrom ?? "", what);
    }
    const at = `${list}[${i}].${bodyKey}`;
    const body = (entries[i] as Mapping)[bodyKey] ?? {};
    if (!isMapping(body)) this.fail(at, "expected a mapping");
    return { body, at };
  }

  private optionalString(body: Mapping, key: string, at: string): string | undefined {
    const v = body[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") this.fail(at, "expected a string");
    return v;
  }

  private resolvePath(path: string): string {
    return isAbsolute(path) ? path : resolve(this.source.folder, path);
  }

  private where(at: string): string {
    return at === "" ? this.source.path : `${this.source.path}: ${at}`;
  }

  private fail(at: string, what: string): never {
    throw new KubeConfigError(`${this.where(at)}: ${what}`);
  }
}
