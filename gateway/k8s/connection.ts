// How lintel reaches the Kubernetes API: through a kubectl proxy, as the pod's service
// account, or as a kubeconfig says. A connection keeps its sockets alive and gives every
// request fresh credentials (rotated tokens and CAs, exec plugins) without client-node.

import { readFileSync, statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { resolve } from "node:path";
import { type Logger, silentLogger } from "../log.js";
import { ExecCredentialSource } from "./exec-credential.js";
import {
  checkCertificatePem,
  expandHome,
  fileProblem,
  KubeConfigError,
  type Kubeconfig,
  loadKubeconfig,
} from "./kubeconfig.js";

export { KubeConfigError } from "./kubeconfig.js";

export type ApiEndpoint =
  /** A `kubectl proxy` (plain HTTP, no auth): Linkerd 1's host/port, default localhost:8001. */
  | { readonly mode: "proxy"; readonly host: string; readonly port: number }
  /** In a pod: the service account token (re-read when the kubelet rotates it), the cluster CA,
   *  and KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT. */
  | { readonly mode: "inCluster"; readonly tokenFile: string; readonly caFile: string }
  /** Outside the cluster: a kubeconfig file and optionally a context (else its current-context). */
  | { readonly mode: "kubeconfig"; readonly path: string; readonly context?: string };

/** The default paths of in-cluster mode. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Identifies an endpoint: two kinds configured with the same one share one connection. */
export function endpointKey(e: ApiEndpoint): string {
  switch (e.mode) {
    case "proxy":
      return JSON.stringify([e.mode, e.host.toLowerCase(), e.port]);
    case "inCluster":
      return JSON.stringify([e.mode, resolve(e.tokenFile), resolve(e.caFile)]);
    case "kubeconfig":
      return JSON.stringify([e.mode, resolve(expandHome(e.path)), e.context ?? null]);
  }
}

export interface ApiRequest {
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path and query, e.g. /api/v1/namespaces/default/services?watch=1 */
  readonly path: string;
  readonly body?: string;
  readonly contentType?: string;
  /** Rejects (KubeRequestError code "timeout") when the response head has not arrived by then. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ApiConnection {
  /** The server's URL, for logs and the admin server. */
  readonly server: string;
  /** How lintel authenticates, in words (no secrets): "none", "service account token /var/run/...", "client certificate", "bearer token", "exec: aws", ... */
  readonly auth: string;
  /** Sends a request; resolves with the response once its head arrives (any status), for the caller to read (a watch streams it). */
  request(req: ApiRequest): Promise<IncomingMessage>;
  /** Destroys pooled sockets. */
  close(): void;
}

/** A request that got no response: a timeout, an abort, or a network or TLS error. */
export class KubeRequestError extends Error {
  constructor(
    /** "timeout", "aborted", or Node's code (ECONNREFUSED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...). */
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "KubeRequestError";
  }
}

/**
 * Opens a connection to the API (no socket until the first request). Reads and checks the
 * kubeconfig or the service account files now, throwing KubeConfigError, so a bad setup
 * fails at startup.
 */
export function openConnection(
  endpoint: ApiEndpoint,
  opts: { env?: NodeJS.ProcessEnv; log?: Logger; now?: () => number } = {},
): ApiConnection {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLogger;
  const now = opts.now ?? Date.now;
  switch (endpoint.mode) {
    case "proxy":
      return new Connection(new URL(`http://${hostPort(endpoint.host, endpoint.port)}`), {
        tls: undefined,
        auth: NO_AUTH,
        log,
      });
    case "inCluster":
      return inClusterConnection(endpoint, env, log, now);
    case "kubeconfig":
      return kubeconfigConnection(loadKubeconfig(endpoint.path, endpoint.context), env, log, now);
  }
}

/** How lintel proves who it is on one request. */
interface RequestCredentials {
  readonly authorization?: string;
  /** A client certificate (PEM) and its key, for the TLS handshake. */
  readonly cert?: string;
  readonly key?: string;
  /** The server answered 401: the next request fetches credentials again. */
  readonly refused?: () => void;
}

interface Authenticator {
  /** In words, no secrets (ApiConnection.auth). */
  readonly description: string;
  current(): Promise<RequestCredentials>;
}

const NO_AUTH: Authenticator = { description: "none", current: async () => ({}) };

/** How an https connection checks the server. */
interface TlsSettings {
  /** PEM CA certificates; undefined trusts the system's roots. */
  ca(): Promise<string | undefined>;
  readonly rejectUnauthorized: boolean;
  /** The name the certificate must carry, when not the URL's host. */
  readonly servername: string | undefined;
  /** Where the trusted CAs come from, for the error when the server's certificate is refused. */
  readonly trustSource: string;
}

/** A token or CA file is read again at least this often, changed or not (as client-go does). */
const FILE_MAX_AGE_MS = 60_000;

function inClusterConnection(
  endpoint: { readonly tokenFile: string; readonly caFile: string },
  env: NodeJS.ProcessEnv,
  log: Logger,
  now: () => number,
): ApiConnection {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new KubeConfigError(
      "in-cluster mode: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, so lintel is not running in a pod; set kubernetes.mode to kubeconfig or proxy",
    );
  if (!/^\d+$/.test(port) || Number(port) > 65535)
    throw new KubeConfigError(
      `in-cluster mode: KUBERNETES_SERVICE_PORT ${JSON.stringify(port)} is not a port`,
    );
  const token = new WatchedFile(
    endpoint.tokenFile,
    "in-cluster mode: service account token",
    parseToken,
    now,
  );
  const ca = new WatchedFile(
    endpoint.caFile,
    "in-cluster mode: cluster CA",
    checkCertificatePem,
    now,
  );
  return new Connection(new URL(`https://${hostPort(host, Number(port))}`), {
    tls: {
      ca: () => ca.current(),
      rejectUnauthorized: true,
      servername: undefined,
      trustSource: `the CA in ${endpoint.caFile}`,
    },
    auth: {
      description: `service account token ${endpoint.tokenFile}`,
      current: async () => {
        const t = await token.current();
        return { authorization: `Bearer ${t}`, refused: () => token.forget(t) };
      },
    },
    log,
  });
}

function kubeconfigConnection(
  config: Kubeconfig,
  env: NodeJS.ProcessEnv,
  log: Logger,
  now: () => number,
): ApiConnection {
  const { user } = config;
  /** Each part of the user's credentials, in words and as what a request carries. */
  const parts: string[] = [];
  const credentialParts: (() => Promise<RequestCredentials>)[] = [];
  if (user.clientCertificate) {
    const { cert, key } = user.clientCertificate;
    parts.push("client certificate");
    credentialParts.push(async () => ({ cert, key }));
  }
  if (user.tokenFile) {
    const file = new WatchedFile(user.tokenFile.path, user.tokenFile.where, parseToken, now);
    parts.push(`bearer token file ${user.tokenFile.path}`);
    credentialParts.push(async () => {
      const t = await file.current();
      return { authorization: `Bearer ${t}`, refused: () => file.forget(t) };
    });
  } else if (user.token !== undefined) {
    const authorization = `Bearer ${user.token}`;
    parts.push("bearer token");
    credentialParts.push(async () => ({ authorization }));
  }
  if (user.basic) {
    const { username, password } = user.basic;
    const authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
    parts.push("basic auth");
    credentialParts.push(async () => ({ authorization }));
  }
  if (user.exec) {
    const source = new ExecCredentialSource(user.exec, { env, now, log });
    parts.push(source.description);
    credentialParts.push(async () => {
      const c = await source.get();
      return {
        ...(c.token !== undefined ? { authorization: `Bearer ${c.token}` } : {}),
        ...(c.clientCertificateData !== undefined
          ? { cert: c.clientCertificateData, key: c.clientKeyData }
          : {}),
        refused: () => source.refused(c),
      };
    });
  }
  const auth: Authenticator =
    credentialParts.length === 0
      ? NO_AUTH
      : {
          description: parts.join(" + "),
          // One header at most, and at most one part that can be fetched again (a token
          // file or an exec plugin): the kubeconfig reader refuses other mixes.
          current: async () =>
            Object.assign({}, ...(await Promise.all(credentialParts.map((s) => s())))),
        };

  const ca = config.ca;
  const tls: TlsSettings | undefined =
    config.server.protocol === "https:"
      ? {
          ca: async () => ca,
          rejectUnauthorized: !config.insecureSkipTlsVerify,
          servername: config.tlsServerName,
          trustSource:
            ca === undefined
              ? "the system's CAs (the kubeconfig has no certificate-authority)"
              : "the kubeconfig's certificate-authority",
        }
      : undefined;
  if (config.insecureSkipTlsVerify)
    log.warn("kubeconfig turns off TLS verification (insecure-skip-tls-verify)", {
      context: config.contextName,
      server: config.server.origin,
    });
  return new Connection(config.server, { tls, auth, log });
}

/** The token in a token file (trimmed); throws KubeConfigError naming `where` when it is empty. */
function parseToken(text: string, where: string): string {
  const token = text.trim();
  if (token === "") throw new KubeConfigError(`${where}: the file is empty`);
  return token;
}

const TLS_TRUST_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
]);

class Connection implements ApiConnection {
  readonly server: string;
  readonly auth: string;
  private readonly agent: http.Agent;
  /** The server URL's path without its trailing slash; prefixes every request path. */
  private readonly pathPrefix: string;

  constructor(
    private readonly url: URL,
    private readonly setup: {
      readonly tls: TlsSettings | undefined;
      readonly auth: Authenticator;
      readonly log: Logger;
    },
  ) {
    this.server = url.href.replace(/\/$/, "");
    this.auth = setup.auth.description;
    this.pathPrefix = url.pathname.replace(/\/$/, "");
    // Keep-alive so lists and patches reuse sockets; no socket cap, since each watch holds
    // one for as long as it runs.
    this.agent = setup.tls
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
  }

  request(req: ApiRequest): Promise<IncomingMessage> {
    const what = `${req.method} ${this.url.origin}${this.pathPrefix}${req.path}`;
    const { signal } = req;
    return new Promise((resolvePromise, reject) => {
      let sent: http.ClientRequest | undefined;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        sent?.destroy();
        reject(err);
      };
      const onAbort = () => fail(new KubeRequestError("aborted", `${what}: aborted`));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      // The deadline covers fetching credentials too (an exec plugin can be slow).
      if (req.timeoutMs !== undefined)
        timer = setTimeout(
          () =>
            fail(new KubeRequestError("timeout", `${what}: no response in ${req.timeoutMs} ms`)),
          req.timeoutMs,
        );

      this.prepare(req).then(({ options, credentials }) => {
        if (settled) return;
        const send = this.setup.tls ? https.request : http.request;
        const onResponse = (res: IncomingMessage) => {
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (res.statusCode === 401 && credentials.refused) {
            this.setup.log.warn("API server answered 401; fetching credentials again", {
              server: this.server,
              auth: this.auth,
            });
            credentials.refused();
          }
          if (signal) {
            const abortResponse = () =>
              res.destroy(new KubeRequestError("aborted", `${what}: aborted`));
            signal.addEventListener("abort", abortResponse, { once: true });
            res.once("close", () => signal.removeEventListener("abort", abortResponse));
          }
          resolvePromise(res);
        };
        try {
          sent = send(options, onResponse);
        } catch (e) {
          // Thrown before any I/O, e.g. a client certificate Node cannot load.
          fail(this.requestError(what, e as Error));
          return;
        }
        sent.on("error", (e) => fail(this.requestError(what, e)));
        sent.end(req.body);
      }, fail);
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private async prepare(
    req: ApiRequest,
  ): Promise<{ options: https.RequestOptions; credentials: RequestCredentials }> {
    const { tls } = this.setup;
    const [credentials, ca] = await Promise.all([this.setup.auth.current(), tls?.ca()]);
    const headers: http.OutgoingHttpHeaders = {
      accept: "application/json",
      "user-agent": USER_AGENT,
    };
    if (credentials.authorization !== undefined) headers.authorization = credentials.authorization;
    if (req.body !== undefined) {
      headers["content-type"] = req.contentType ?? "application/json";
      headers["content-length"] = Buffer.byteLength(req.body);
    }
    const options: https.RequestOptions = {
      method: req.method,
      // URL.hostname keeps an IPv6 literal's brackets; the socket wants the bare address.
      hostname: this.url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: this.url.port || (tls ? 443 : 80),
      path: this.pathPrefix + req.path,
      headers,
      agent: this.agent,
    };
    if (tls) {
      options.rejectUnauthorized = tls.rejectUnauthorized;
      if (ca !== undefined) options.ca = ca;
      if (tls.servername !== undefined) options.servername = tls.servername;
      if (credentials.cert !== undefined) {
        options.cert = credentials.cert;
        options.key = credentials.key;
      }
    }
    return { options, credentials };
  }

  private requestError(what: string, e: Error): KubeRequestError {
    const code = (e as NodeJS.ErrnoException).code ?? "EUNKNOWN";
    let hint = "";
    if (TLS_TRUST_CODES.has(code))
      hint = ` (the server's certificate is not signed by ${this.setup.tls?.trustSource})`;
    else if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
      hint = " (the server's certificate does not carry the name lintel connects to)";
    return new KubeRequestError(code, `${what}: ${e.message}${hint}`, { cause: e });
  }
}

/** host:port for a URL, with an IPv6 literal in brackets. */
function hostPort(host: string, port: number): string {
  return `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}

/** A file's identity and version: the kubelet rotates secrets by swapping a symlink (a new inode). */
function fileVersion(s: { ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): string {
  return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/**
 * A small file (a token, a CA) kept parsed in memory and read again when it changes (one
 * stat per use), when it is older than a minute, or after `forget`. The first read is at
 * construction, synchronous, so a missing file fails at startup.
 */
class WatchedFile {
  private value: string;
  private version: string;
  private readAt: number;
  private stale = false;
  private reading: Promise<string> | undefined;

  constructor(
    private readonly path: string,
    /** What the file is, for errors: `in-cluster mode: service account token`. */
    private readonly where: string,
    /** The value in the file's text; throws KubeConfigError naming `where` (and the path) when it has none. */
    private readonly parse: (text: string, where: string) => string,
    private readonly now: () => number,
  ) {
    try {
      this.version = fileVersion(statSync(path, { bigint: true }));
      this.value = parse(readFileSync(path, "utf8"), `${where}: ${path}`);
    } catch (e) {
      throw this.problem(e);
    }
    this.readAt = now();
  }

  current(): Promise<string> {
    this.reading ??= this.refresh().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  /** The server refused `value`: read the file again on the next use. */
  forget(value: string): void {
    if (value === this.value) this.stale = true;
  }

  private async refresh(): Promise<string> {
    try {
      const version = fileVersion(await stat(this.path, { bigint: true }));
      if (!this.stale && version === this.version && this.now() - this.readAt < FILE_MAX_AGE_MS)
        return this.value;
      this.value = this.parse(await readFile(this.path, "utf8"), `${this.where}: ${this.path}`);
      this.version = version;
      this.readAt = this.now();
      this.stale = false;
      return this.value;
    } catch (e) {
      throw this.problem(e);
    }
  }

  private problem(e: unknown): KubeConfigError {
    return e instanceof KubeConfigError
      ? e
      : new KubeConfigError(`${this.where}: ${fileProblem(this.path, e)}`);
  }
}

/** `lintel/<version>`, from package.json found upwards from this file (source or dist). */
function userAgent(): string {
  for (const up of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "lintel" && pkg.version) return `lintel/${pkg.version}`;
    } catch {
      // not here; look one level further up
    }
  }
  return "lintel";
}

const USER_AGENT = userAgent();
